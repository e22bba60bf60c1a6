//! The aggregates and queues of the [`Machine`](super::Machine), kept in step with every
//! change of a file's record (so that no event walks every tracked file).
//!
//! Each file's [`Share`] (what it adds to the counts, which queue it waits in and until when)
//! is a function of its record; [`Machine::update`] takes the old share out and puts the new
//! one in. Queues: `timers` (not due yet, by due time), `due_slots` and `due_checks` (due, in
//! the order they are served), `oldest` (the backlog by age), `graces` (incomplete files by
//! the end of their grace period), `by_key` (paths by device and inode).

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use super::{FileKey, FileState, Machine, Quarantine, Tracked, key_of};

/// Aggregates kept up to date on every transition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Files not shipped nor reported (queued, validating, uploading, recording, incomplete
    /// within the grace period).
    pub backlog_files: u64,
    pub backlog_bytes: u64,
    /// Backlog files whose last upload failed.
    pub failing: u64,
    /// Incomplete within the grace period.
    pub incomplete: u64,
    /// Damaged (incomplete past the grace period).
    pub damaged: u64,
    /// Not redo logs.
    pub not_redo: u64,
    /// Validated logs waiting for an upload slot.
    pub ready: u64,
    pub shipped: u64,
    pub replaced: u64,
}

/// What one file adds to the aggregates and where it is queued (a function of its record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Share {
    backlog: Option<(SystemTime, u64)>,
    failing: bool,
    incomplete: bool,
    damaged: bool,
    not_redo: bool,
    ready: bool,
    shipped: bool,
    replaced: bool,
    /// Queue, due time, order within the queue.
    queue: Option<(Lane, Instant, Rank)>,
    /// When its grace period ends (incomplete, not alarmed).
    grace_ends: Option<Instant>,
    key: FileKey,
}

/// The queues: upload slots (uploads before quarantine copies), and validations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Lane {
    Upload,
    Quarantine,
    Validate,
}

/// Order within a lane: (already read while written first, oldest detection first).
pub(super) type Rank = (bool, Instant);

impl Machine {
    /// What `t` adds to the aggregates and where it waits.
    pub(super) fn share(&self, t: &Tracked) -> Share {
        let backlog = match &t.state {
            FileState::Incomplete { alarmed, .. } => !alarmed,
            s => matches!(s, FileState::Queued { .. }) || s.busy(),
        };
        let queue = match &t.state {
            FileState::Queued {
                due,
                ready: Some(_),
            } => Some((Lane::Upload, *due, (false, t.detected))),
            FileState::Queued { due, ready: None }
                if !self.following.contains(&key_of(&t.ident)) =>
            {
                let read = self.followed.contains_key(&t.ident);
                Some((Lane::Validate, *due, (!read, t.detected)))
            }
            FileState::Incomplete {
                quarantine: Quarantine::Due(d),
                ..
            } => Some((Lane::Quarantine, *d, (false, t.detected))),
            _ => None,
        };
        Share {
            backlog: backlog.then(|| (t.first_seen.min(t.mtime), t.ident.size)),
            failing: backlog && t.failing && !matches!(t.state, FileState::Incomplete { .. }),
            incomplete: matches!(t.state, FileState::Incomplete { alarmed: false, .. }),
            damaged: matches!(t.state, FileState::Incomplete { alarmed: true, .. }),
            not_redo: matches!(t.state, FileState::NotRedo { .. }),
            ready: matches!(t.state, FileState::Queued { ready: Some(_), .. }),
            shipped: matches!(t.state, FileState::Shipped),
            replaced: matches!(t.state, FileState::Replaced { .. }),
            queue,
            grace_ends: match &t.state {
                FileState::Incomplete { alarmed: false, .. } => {
                    Some(t.detected + self.limits.grace_period)
                }
                _ => None,
            },
            key: key_of(&t.ident),
        }
    }

    /// Takes a file's share out of (`sign` false) or into the aggregates and queues.
    pub(super) fn account(&mut self, path: &Path, s: &Share, add: bool) {
        let count = |n: &mut u64, yes: bool| {
            if yes {
                *n = if add { *n + 1 } else { n.saturating_sub(1) };
            }
        };
        let t = &mut self.tally;
        count(&mut t.backlog_files, s.backlog.is_some());
        if let Some((_, size)) = s.backlog {
            t.backlog_bytes = if add {
                t.backlog_bytes + size
            } else {
                t.backlog_bytes.saturating_sub(size)
            };
        }
        count(&mut t.failing, s.failing);
        count(&mut t.incomplete, s.incomplete);
        count(&mut t.damaged, s.damaged);
        count(&mut t.not_redo, s.not_redo);
        count(&mut t.ready, s.ready);
        count(&mut t.shipped, s.shipped);
        count(&mut t.replaced, s.replaced);
        let p = path.to_path_buf();
        if add {
            if let Some((since, _)) = s.backlog {
                self.oldest.insert((since, p.clone()));
            }
            if let Some((lane, due, rank)) = s.queue {
                if due <= self.clock {
                    self.file_due(lane, rank, p.clone());
                } else {
                    self.timers.insert((due, p.clone()));
                }
            }
            if let Some(g) = s.grace_ends {
                self.graces.insert((g, p.clone()));
            }
            self.by_key.insert((s.key, p));
        } else {
            if let Some((since, _)) = s.backlog {
                self.oldest.remove(&(since, p.clone()));
            }
            if let Some((lane, due, rank)) = s.queue {
                match lane {
                    Lane::Validate => self.due_checks.remove(&(rank, p.clone())),
                    _ => self.due_slots.remove(&(lane, rank, p.clone())),
                };
                self.timers.remove(&(due, p.clone()));
            }
            if let Some(g) = s.grace_ends {
                self.graces.remove(&(g, p.clone()));
            }
            self.by_key.remove(&(s.key, p));
        }
    }

    pub(super) fn file_due(&mut self, lane: Lane, rank: Rank, p: PathBuf) {
        match lane {
            Lane::Validate => self.due_checks.insert((rank, p)),
            _ => self.due_slots.insert((lane, rank, p)),
        };
    }

    /// Changes the record of `path` with `f`, keeping aggregates and queues in step.
    pub(super) fn update<R>(
        &mut self,
        path: &Path,
        f: impl FnOnce(&mut Tracked) -> R,
    ) -> Option<R> {
        let mut t = self.files.remove(path)?;
        if let Some(before) = t.filed.take() {
            self.account(path, &before, false);
        }
        let r = f(&mut t);
        let after = self.share(&t);
        self.account(path, &after, true);
        t.filed = Some(after);
        self.files.insert(path.to_path_buf(), t);
        Some(r)
    }

    pub(super) fn set_state(&mut self, path: &Path, state: FileState) {
        self.update(path, |t| t.state = state);
    }

    pub(super) fn insert(&mut self, path: PathBuf, mut t: Tracked) {
        let s = self.share(&t);
        self.account(&path, &s, true);
        t.filed = Some(s);
        self.files.insert(path, t);
    }

    pub(super) fn remove(&mut self, path: &Path) -> Option<Tracked> {
        let mut t = self.files.remove(path)?;
        if let Some(s) = t.filed.take() {
            self.account(path, &s, false);
        }
        Some(t)
    }

    /// Re-files the files with `key` (their queue depends on following and followed).
    pub(super) fn refile(&mut self, key: FileKey) {
        let paths: Vec<PathBuf> = self
            .by_key
            .range((key, PathBuf::new())..)
            .take_while(|(k, _)| *k == key)
            .map(|(_, p)| p.clone())
            .collect();
        for p in paths {
            self.update(&p, |_| ());
        }
    }

    /// Moves the files that came due by `now` into their lanes.
    pub(super) fn advance(&mut self, now: Instant) {
        if now <= self.clock {
            return;
        }
        self.clock = now;
        while let Some((due, p)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, p.clone()));
            let queue = self
                .files
                .get(&p)
                .and_then(|t| t.filed.as_ref())
                .and_then(|s| s.queue);
            if let Some((lane, _, rank)) = queue {
                self.file_due(lane, rank, p);
            }
        }
    }
}
