//! Starting an extractor's tailers: one per redo thread to follow, each resuming exactly at
//! its checkpoint or, on a first start, at the start of its CURRENT online log.
//!
//! - The threads are the configured ones (`[online] threads`), or every thread whose logs
//!   the online groups hold.
//! - For a thread, the checkpoint of the incarnation currently online is used. A checkpoint
//!   of an older incarnation only (after `OPEN RESETLOGS`) is left alone with a warning and
//!   the new incarnation starts at its CURRENT log. With no online log of the thread, the
//!   newest checkpoint of the thread is resumed (its logs may still be in the archives).

use redovault::wire::StreamPos;
use redovault_redo::ThreadId;
use tracing::{info, warn};

use crate::checkpoint::{self, CheckpointError, CheckpointStore};
use crate::config::ExtractorConfig;
use crate::online::{self, OnlineLogs};
use crate::tail::{TailError, Tailer};

/// One stream ready to run.
#[derive(Debug)]
pub struct StreamStart {
    /// The tailer, positioned.
    pub tailer: Tailer,
    /// The stream's checkpoint (advance it on the collector's acknowledgements).
    pub checkpoint: CheckpointStore,
    /// Where the tailer starts.
    pub from: StreamPos,
    /// True when resuming from a checkpoint, false on a first start.
    pub resumed: bool,
}

/// Why the tailers cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A checkpoint cannot be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A tailer cannot be made (no online log of a thread, bad settings).
    #[error(transparent)]
    Tail(#[from] TailError),
}

/// The tailers of `cfg` (see the module documentation), sorted by thread.
pub fn start_streams(cfg: &ExtractorConfig) -> Result<Vec<StreamStart>, StartError> {
    let sources = cfg.sources();
    let views = OnlineLogs::new(&sources.groups).scan();
    let current = online::find_current(&views);
    let saved = checkpoint::list(&cfg.state.dir)?;
    let mut threads: Vec<ThreadId> = if cfg.online.threads.is_empty() {
        current.iter().map(|c| c.stream.thread).collect()
    } else {
        cfg.online.threads.iter().map(|&t| ThreadId(t)).collect()
    };
    threads.sort();
    threads.dedup();
    let mut out = Vec::with_capacity(threads.len());
    for thread in threads {
        let online_now = current.iter().find(|c| c.stream.thread == thread);
        let mine: Vec<_> = saved.iter().filter(|c| c.stream.thread == thread).collect();
        let resume = match online_now {
            Some(c) => {
                let same = mine.iter().find(|cp| cp.stream == c.stream).copied();
                for old in mine.iter().filter(|cp| cp.stream != c.stream) {
                    warn!(stream = %old.stream, pos = %old.pos, online = %c.stream,
                        "checkpoint of another incarnation left as it is");
                }
                same
            }
            None => mine.iter().max_by_key(|cp| cp.stream.resetlogs_id).copied(),
        };
        let start = match resume {
            Some(cp) => {
                let tailer = Tailer::new(&sources, cfg.tail, cp.stream, cp.pos)?;
                let checkpoint = CheckpointStore::open(&cfg.state.dir, cp.stream)?;
                info!(stream = %cp.stream, pos = %cp.pos, "resuming from the checkpoint");
                StreamStart {
                    tailer,
                    checkpoint,
                    from: cp.pos,
                    resumed: true,
                }
            }
            None => {
                let tailer = Tailer::at_current(&sources, cfg.tail, thread)?;
                let checkpoint = CheckpointStore::open(&cfg.state.dir, tailer.stream())?;
                StreamStart {
                    from: tailer.position(),
                    tailer,
                    checkpoint,
                    resumed: false,
                }
            }
        };
        out.push(start);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ArchiveConfig, GroupConfig, OnlineConfig, StateConfig, TailConfig};
    use redovault_drill::simulate::{SimConfig, Simulator};
    use redovault_redo::LogSeq;
    use std::path::Path;

    fn config(dir: &Path, threads: u16, only: Vec<u16>) -> ExtractorConfig {
        let mut groups = Vec::new();
        for t in 1..=threads {
            for g in 1..=3 {
                groups.push(GroupConfig {
                    members: vec![dir.join(format!("online/redo_t{t}_g{g}.log"))],
                });
            }
        }
        ExtractorConfig {
            online: OnlineConfig {
                groups,
                threads: only,
            },
            archive: ArchiveConfig {
                dirs: vec![dir.join("archive")],
            },
            tail: TailConfig::default(),
            state: StateConfig {
                dir: dir.join("state"),
            },
        }
    }

    #[test]
    fn first_start_then_resume_per_thread() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut c = SimConfig::new(dir);
        c.threads = 2;
        c.log_size = 64 * 1024;
        let mut sim = Simulator::start(c).unwrap();
        for _ in 0..50 {
            sim.step().unwrap();
        }
        sim.switch_logfile().unwrap();
        let cfg = config(dir, 2, Vec::new());
        let s = start_streams(&cfg).unwrap();
        assert_eq!(s.len(), 2);
        for (i, st) in s.iter().enumerate() {
            assert!(!st.resumed);
            assert_eq!(st.tailer.stream().thread, ThreadId(i as u16 + 1));
            assert_eq!(
                st.from,
                StreamPos {
                    seq: LogSeq(2),
                    offset: 0
                }
            );
        }
        // Thread 2 acknowledged up to 2:1536; thread 1 never acknowledged anything.
        let mut cp = CheckpointStore::open(&cfg.state.dir, s[1].tailer.stream()).unwrap();
        let at = StreamPos {
            seq: LogSeq(2),
            offset: 1536,
        };
        cp.advance(at, None).unwrap();
        drop(s);
        let s = start_streams(&cfg).unwrap();
        assert!(!s[0].resumed && s[1].resumed);
        assert_eq!(s[1].from, at);
        assert_eq!(s[1].tailer.position(), at);
        assert_eq!(s[1].checkpoint.get().unwrap().pos, at);
        // Only the configured threads.
        let s = start_streams(&config(dir, 2, vec![2])).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].tailer.stream().thread, ThreadId(2));
        // A configured thread with no log online and no checkpoint.
        let e = start_streams(&config(dir, 2, vec![3])).unwrap_err();
        assert!(e.to_string().contains("thread 3"), "{e}");
        drop(sim);
    }
}
