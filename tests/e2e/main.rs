//! The one end-to-end test binary of the workspace.
//!
//! Each module covers one part of the system through its public interface.

mod atrest;
mod attack_drill;
mod check_config;
mod crash;
mod deploy;
mod fake_s3;
mod inspect;
mod link;
mod netkit;
mod outage;
mod pipeline;
mod policies;
mod refusals;
mod report_html;
mod retention;
mod s3err;
mod simulate;
mod store;
mod tcp_proxy;
mod verify;
mod version;
mod watcher;
mod worm;
mod worm_crash;
mod worm_stream;
