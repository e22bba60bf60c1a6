//! Filesystem events (inotify through `notify`) as hints: a file created, renamed, removed or
//! closed after writing under an archive directory wakes the coordinator for a rescan. Nothing is decided from an event itself; a lost or
//! coalesced event only delays detection until the periodic rescan.

use std::path::PathBuf;
use std::sync::Arc;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::Notify;

/// Events worth a rescan: files created, renamed, removed, closed after writing. Writes in
/// progress (data modified, opened, read) are not: the close that ends them is.
fn is_hint(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Data(_)) => false,
        _ => true,
    }
}

/// Keeps the OS watches alive; dropping it stops them.
pub struct EventHints {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for EventHints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHints")
    }
}

/// Filesystem events cannot be started (the periodic rescan still finds every file).
#[derive(Debug, thiserror::Error)]
#[error("cannot start filesystem events: {0}")]
pub struct EventsError(notify::Error);

/// Watches `dirs` recursively and calls `hint.notify_one()` on every event. Directories that
/// cannot be watched are returned as warnings (the rescan still covers them).
pub fn start(
    dirs: &[PathBuf],
    hint: Arc<Notify>,
) -> Result<(EventHints, Vec<String>), EventsError> {
    let h = Arc::clone(&hint);
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if ev.as_ref().map_or(true, |e| is_hint(&e.kind)) {
            h.notify_one();
        }
    })
    .map_err(EventsError)?;
    let mut warnings = Vec::new();
    for d in dirs {
        if let Err(e) = watcher.watch(d, RecursiveMode::Recursive) {
            warnings.push(format!("cannot watch {} for events: {e}", d.display()));
        }
    }
    Ok((EventHints { _watcher: watcher }, warnings))
}
