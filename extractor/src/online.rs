//! The online redo log groups, read from their headers alone (no database connection).
//!
//! ```text
//! every member of every configured group ─► opened once, descriptor kept (retried at the
//!   next scan if it cannot be opened)
//! OnlineLogs::scan: block 0 + block 1 of each member ─►
//!   valid header         ─► the log it holds: stream (db id, resetlogs id, thread), sequence,
//!                           state (CURRENT: next SCN none, nab 0xFFFFFFFF; complete: nab set)
//!   block 1 all zero or compatibility version 0 ─► never-used group
//!   bad checksum (header being rewritten, or damage), not redo, I/O error ─► member unusable
//!                           for this scan (another member of the group may serve)
//! per group: highest sequence among healthy members; GroupView::in_sync = members naming it
//! ```
//!
//! Invariants:
//! - A kept descriptor follows the file: an online log an attacker unlinks stays readable
//!   through it (§14.4 of the format notes), and LGWR reuses a group in place.
//! - Multiplexed members are written together; one that lags or is damaged is left out of
//!   [`GroupView::in_sync`].
//! - [`find_current`] picks, per stream, the group with the highest sequence: the CURRENT
//!   log (next SCN unset) or, during a log switch before LGWR has written the next group's
//!   header, the log just completed, from which a tailer then follows the switch.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use redovault::wire::StreamId;
use redovault_redo::block::classify;
use redovault_redo::checksum::block_checksum_ok;
use redovault_redo::{BlockState, FileHeader, LogSeq, LogState, NotRedo, RedoHeader, ThreadId};

/// Bytes read to learn a header: two blocks of the largest block size.
const HEADER_READ: usize = 2 * 4096;

/// The header (block 0 and block 1) of one redo log file, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHeader {
    /// Block 0.
    pub file: FileHeader,
    /// Block 1.
    pub redo: RedoHeader,
    /// The stream the log belongs to.
    pub stream: StreamId,
    /// CURRENT or complete.
    pub state: LogState,
    /// The bytes of blocks 0 and 1 as read.
    pub raw: Vec<u8>,
}

impl LogHeader {
    /// Parses and validates the first two blocks of a redo file (`bytes` may be longer).
    ///
    /// Block 0 must parse and hold its checksum; block 1 must be a valid block (checksum,
    /// format, number 1) whose header parses. A block 1 that was never written (zero, or
    /// compatibility version 0) is [`HeaderError::Unused`].
    pub fn parse(bytes: &[u8]) -> Result<LogHeader, HeaderError> {
        let file = FileHeader::parse(bytes).map_err(HeaderError::NotRedo)?;
        let bs = file.bs();
        let (Some(b0), Some(b1)) = (bytes.get(..bs), bytes.get(bs..2 * bs)) else {
            return Err(HeaderError::Short { len: bytes.len() });
        };
        if !block_checksum_ok(b0) {
            return Err(HeaderError::Bad("block 0 checksum does not hold".into()));
        }
        if b1.iter().all(|&b| b == 0) {
            return Err(HeaderError::Unused);
        }
        let redo = match RedoHeader::parse(b1, file.endian, bs as u64) {
            Ok(h) => h,
            Err(_) if file.endian.u32(b1, 20) == Some(0) && block_checksum_ok(b1) => {
                return Err(HeaderError::Unused);
            }
            Err(e) => {
                if !block_checksum_ok(b1) {
                    return Err(HeaderError::Bad("block 1 checksum does not hold".into()));
                }
                return Err(HeaderError::NotRedo(e));
            }
        };
        match classify(b1, file.endian, file.block_size, 1, redo.sequence) {
            BlockState::Valid => {}
            other => return Err(HeaderError::Bad(format!("block 1 is {other}"))),
        }
        if redo.header_block_size != 0 && redo.header_block_size != file.block_size {
            return Err(HeaderError::Bad(format!(
                "block 1 says block size {}, block 0 says {}",
                redo.header_block_size, file.block_size
            )));
        }
        let stream = StreamId {
            db_id: redo.db_id,
            resetlogs_id: redo.resetlogs_id,
            thread: redo.thread,
        };
        Ok(LogHeader {
            file,
            stream,
            state: redo.log_state(),
            redo,
            raw: bytes[..2 * bs].to_vec(),
        })
    }

    /// Reads and validates the header of an open file.
    pub fn read(file: &File) -> Result<LogHeader, HeaderError> {
        let mut buf = vec![0u8; HEADER_READ];
        let n = read_full_at(file, &mut buf, 0).map_err(HeaderError::Io)?;
        buf.truncate(n);
        LogHeader::parse(&buf)
    }

    pub fn seq(&self) -> LogSeq {
        self.redo.sequence
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.file.block_size
    }

    /// For a complete log, its end: nab, the number of blocks including block 0.
    pub fn end_block(&self) -> Option<u32> {
        match self.state {
            LogState::Current => None,
            LogState::Archived => Some(self.redo.nab),
        }
    }
}

/// Why a member's header is not usable.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The group was never used: block 1 never written.
    #[error("never used (block 1 not written)")]
    Unused,
    /// The file is shorter than two blocks.
    #[error("file is {len} bytes, shorter than the two header blocks")]
    Short {
        /// Bytes present.
        len: usize,
    },
    /// The header does not hold (torn or damaged).
    #[error("bad header: {0}")]
    Bad(String),
    #[error("{0}")]
    NotRedo(NotRedo),
    /// The file cannot be opened or read.
    #[error("{0}")]
    Io(io::Error),
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
pub fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let at = offset.saturating_add(done as u64);
        match file.read_at(&mut buf[done..], at) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// One member file, with its descriptor kept open once opened.
#[derive(Debug)]
pub struct Member {
    /// The configured path.
    pub path: PathBuf,
    file: Option<File>,
}

impl Member {
    fn new(path: PathBuf) -> Member {
        Member { path, file: None }
    }

    /// The open descriptor, opening the file (read-only) on first use.
    pub fn file(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().read(true).open(&self.path)?);
        }
        match &self.file {
            Some(f) => Ok(f),
            None => Err(io::Error::other("member not open")),
        }
    }
}

/// The configured online log groups with their open members.
#[derive(Debug)]
pub struct OnlineLogs {
    groups: Vec<Vec<Member>>,
}

/// What one member's header says.
#[derive(Debug)]
pub struct MemberView {
    /// Index of the member in its group.
    pub member: usize,
    pub path: PathBuf,
    /// Its header, or why it cannot be used.
    pub header: Result<LogHeader, HeaderError>,
}

/// What one group's members say.
#[derive(Debug)]
pub struct GroupView {
    /// Index of the group in the configuration.
    pub group: usize,
    /// Every member.
    pub members: Vec<MemberView>,
}

impl GroupView {
    /// The log the group holds: the highest sequence among the healthy members' headers.
    pub fn log(&self) -> Option<&LogHeader> {
        self.members
            .iter()
            .filter_map(|m| m.header.as_ref().ok())
            .max_by_key(|h| (h.stream.resetlogs_id, h.seq()))
    }

    /// The members whose header names the log the group holds (same stream and sequence).
    pub fn in_sync(&self) -> Vec<usize> {
        let Some(log) = self.log() else {
            return Vec::new();
        };
        self.members
            .iter()
            .filter(|m| {
                m.header
                    .as_ref()
                    .is_ok_and(|h| h.stream == log.stream && h.seq() == log.seq())
            })
            .map(|m| m.member)
            .collect()
    }

    /// True when no member holds a log and at least one says the group was never used.
    pub fn is_unused(&self) -> bool {
        self.log().is_none()
            && self
                .members
                .iter()
                .any(|m| matches!(m.header, Err(HeaderError::Unused)))
    }
}

impl OnlineLogs {
    /// The groups of `groups` (each a list of member paths); nothing is opened yet.
    pub fn new(groups: &[Vec<PathBuf>]) -> OnlineLogs {
        OnlineLogs {
            groups: groups
                .iter()
                .map(|g| g.iter().cloned().map(Member::new).collect())
                .collect(),
        }
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when no group is configured.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// A member of a group.
    pub fn member(&mut self, group: usize, member: usize) -> Option<&mut Member> {
        self.groups.get_mut(group)?.get_mut(member)
    }

    /// The members of a group.
    pub fn members(&self, group: usize) -> &[Member] {
        self.groups.get(group).map_or(&[], Vec::as_slice)
    }

    /// Reads the header of one member.
    pub fn read_header(&mut self, group: usize, member: usize) -> Result<LogHeader, HeaderError> {
        let m = self
            .member(group, member)
            .ok_or_else(|| HeaderError::Io(io::Error::other("no such member")))?;
        let f = m.file().map_err(HeaderError::Io)?;
        LogHeader::read(f)
    }

    /// Reads the headers of every member of every group.
    pub fn scan(&mut self) -> Vec<GroupView> {
        let mut out = Vec::with_capacity(self.groups.len());
        for (g, members) in self.groups.iter_mut().enumerate() {
            let mut views = Vec::with_capacity(members.len());
            for (i, m) in members.iter_mut().enumerate() {
                let header = match m.file() {
                    Ok(f) => LogHeader::read(f),
                    Err(e) => Err(HeaderError::Io(e)),
                };
                views.push(MemberView {
                    member: i,
                    path: m.path.clone(),
                    header,
                });
            }
            out.push(GroupView {
                group: g,
                members: views,
            });
        }
        out
    }
}

/// The log a tailer should start from for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentLog {
    /// The stream (database, incarnation, thread).
    pub stream: StreamId,
    /// Its highest sequence found online.
    pub seq: LogSeq,
    /// The group holding it.
    pub group: usize,
    /// The members holding it, in configuration order.
    pub members: Vec<PathBuf>,
    /// CURRENT, or complete when a switch is in progress.
    pub state: LogState,
}

/// For each stream found in the groups, the log holding its highest sequence (see the module
/// documentation); when one thread shows several incarnations, only the newest (highest
/// resetlogs id) is kept. Sorted by thread.
pub fn find_current(views: &[GroupView]) -> Vec<CurrentLog> {
    let mut best: Vec<CurrentLog> = Vec::new();
    for v in views {
        let Some(log) = v.log() else { continue };
        let members: Vec<PathBuf> = v
            .in_sync()
            .into_iter()
            .filter_map(|i| v.members.get(i).map(|m| m.path.clone()))
            .collect();
        let cand = CurrentLog {
            stream: log.stream,
            seq: log.seq(),
            group: v.group,
            members,
            state: log.state,
        };
        let thread = log.stream.thread;
        match best.iter_mut().find(|c| c.stream.thread == thread) {
            Some(c) => {
                let newer = (cand.stream.resetlogs_id, cand.seq) > (c.stream.resetlogs_id, c.seq);
                if newer {
                    *c = cand;
                }
            }
            None => best.push(cand),
        }
    }
    best.sort_by_key(|c| c.stream.thread);
    best
}

/// Where the log of one sequence is online: the group and its in-sync members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Group index.
    pub group: usize,
    /// In-sync member indexes, in configuration order.
    pub members: Vec<usize>,
    /// The header as read from the first in-sync member.
    pub header: LogHeader,
}

/// The group holding `seq` of `stream`, if any.
pub fn locate(views: &[GroupView], stream: StreamId, seq: LogSeq) -> Option<Located> {
    views.iter().find_map(|v| {
        let log = v.log()?;
        if log.stream != stream || log.seq() != seq {
            return None;
        }
        Some(Located {
            group: v.group,
            members: v.in_sync(),
            header: log.clone(),
        })
    })
}

/// The highest sequence of `stream` found online.
pub fn highest_seq(views: &[GroupView], stream: StreamId) -> Option<LogSeq> {
    views
        .iter()
        .filter_map(GroupView::log)
        .filter(|h| h.stream == stream)
        .map(LogHeader::seq)
        .max()
}

/// Threads found in the groups' headers.
pub fn threads(views: &[GroupView]) -> Vec<ThreadId> {
    let mut t: Vec<ThreadId> = find_current(views)
        .iter()
        .map(|c| c.stream.thread)
        .collect();
    t.dedup();
    t
}

/// A short description of what a member header says, for logs and errors.
pub fn describe(path: &Path, header: &Result<LogHeader, HeaderError>) -> String {
    match header {
        Ok(h) => format!(
            "{}: {} sequence {} ({})",
            path.display(),
            h.stream,
            h.seq(),
            h.state.as_str()
        ),
        Err(e) => format!("{}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_drill::simulate::{SimConfig, Simulator};
    use redovault_redo::position::{DbId, ResetlogsId};

    mod oracle_real {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/support/oracle_real.rs"
        ));
    }

    fn sim(dir: &Path, groups: u32) -> SimConfig {
        let mut c = SimConfig::new(dir);
        c.log_size = 64 * 1024;
        c.groups = groups;
        c.seed = 5;
        c
    }

    fn group_paths(dir: &Path, groups: u32) -> Vec<Vec<PathBuf>> {
        (1..=groups)
            .map(|g| vec![dir.join(format!("online/redo_t1_g{g}.log"))])
            .collect()
    }

    #[test]
    fn unused_groups_and_the_current_log() {
        let tmp = tempfile::tempdir().unwrap();
        let sim = Simulator::start(sim(tmp.path(), 3)).unwrap();
        let mut logs = OnlineLogs::new(&group_paths(tmp.path(), 3));
        let views = logs.scan();
        // Group 1 holds sequence 1 (CURRENT); groups 2 and 3 were never used.
        assert!(views[1].is_unused() && views[2].is_unused());
        let cur = find_current(&views);
        assert_eq!(cur.len(), 1);
        assert_eq!(
            (cur[0].seq, cur[0].group, cur[0].state),
            (LogSeq(1), 0, LogState::Current)
        );
        assert_eq!(cur[0].stream.thread, ThreadId(1));
        drop(sim);
    }

    #[test]
    fn after_reuse_the_highest_sequence_is_current() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Simulator::start(sim(tmp.path(), 3)).unwrap();
        for _ in 0..4 {
            for _ in 0..5 {
                s.step().unwrap();
            }
            s.switch_logfile().unwrap();
        }
        // Sequences 1..5: group 1 held 1 then 4, group 2 holds 5 (CURRENT), group 3 holds 3.
        let mut logs = OnlineLogs::new(&group_paths(tmp.path(), 3));
        let views = logs.scan();
        let seqs: Vec<u32> = views.iter().map(|v| v.log().unwrap().seq().0).collect();
        assert_eq!(seqs, [4, 5, 3]);
        let cur = find_current(&views);
        assert_eq!((cur[0].seq, cur[0].group), (LogSeq(5), 1));
        assert_eq!(cur[0].state, LogState::Current);
        let stream = cur[0].stream;
        assert_eq!(highest_seq(&views, stream), Some(LogSeq(5)));
        let l = locate(&views, stream, LogSeq(3)).unwrap();
        assert_eq!((l.group, l.members.clone()), (2, vec![0]));
        assert_eq!(l.header.state, LogState::Archived);
        assert!(l.header.end_block().unwrap() > 2);
        assert!(locate(&views, stream, LogSeq(1)).is_none());
        assert_eq!(threads(&views), [ThreadId(1)]);
    }

    #[test]
    fn a_bad_member_is_left_out_and_another_serves() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Simulator::start(sim(tmp.path(), 2)).unwrap();
        for _ in 0..5 {
            s.step().unwrap();
        }
        // A second member of group 1 with a torn block 1, and a third lagging one (a copy of
        // group 2, never used).
        let g1 = tmp.path().join("online/redo_t1_g1.log");
        let torn = tmp.path().join("g1_b.log");
        let mut bytes = std::fs::read(&g1).unwrap();
        bytes[512 + 100] ^= 0x40;
        std::fs::write(&torn, &bytes).unwrap();
        let lag = tmp.path().join("g1_c.log");
        std::fs::copy(tmp.path().join("online/redo_t1_g2.log"), &lag).unwrap();
        let missing = tmp.path().join("g1_d.log");
        let groups = vec![vec![torn.clone(), lag, missing, g1.clone()]];
        let mut logs = OnlineLogs::new(&groups);
        let views = logs.scan();
        let v = &views[0];
        assert!(matches!(v.members[0].header, Err(HeaderError::Bad(_))));
        assert!(matches!(v.members[1].header, Err(HeaderError::Unused)));
        assert!(matches!(v.members[2].header, Err(HeaderError::Io(_))));
        assert_eq!(v.in_sync(), [3]);
        assert!(!v.is_unused());
        let cur = find_current(&views);
        assert_eq!(cur[0].members, [g1]);
        let d = describe(&v.members[0].path, &v.members[0].header);
        assert!(d.contains("g1_b.log") && d.contains("checksum"), "{d}");
        drop(s);
    }

    #[test]
    fn garbage_is_not_redo() {
        let mut junk = vec![0x42u8; 8192];
        assert!(matches!(
            LogHeader::parse(&junk),
            Err(HeaderError::NotRedo(_))
        ));
        junk.truncate(10);
        assert!(LogHeader::parse(&junk).is_err());
        assert!(LogHeader::parse(&[]).is_err());
    }

    #[test]
    fn real_fixture_headers() {
        let Some(dir) = oracle_real::free23() else {
            return;
        };
        let f = File::open(dir.join("arch1_15_1224959854.dbf")).unwrap();
        let h = LogHeader::read(&f).unwrap();
        assert_eq!(h.seq(), LogSeq(15));
        assert_eq!(h.state, LogState::Archived);
        assert_eq!(h.end_block(), Some(598));
        assert_eq!(
            h.stream,
            StreamId {
                db_id: DbId(1_497_016_494),
                resetlogs_id: ResetlogsId(1_224_959_854),
                thread: ThreadId(1)
            }
        );
        assert_eq!(h.raw.len(), 1024);
    }
}
