//! The messages of the link and their binary encoding.
//!
//! ```text
//! extractor                                     collector
//!   Hello (stream, from position, [Capabilities]) ──►
//!                    ◄── Welcome (resume at its durable end, [Capabilities]) | Reject
//!   Data (chunks, in stream order) ──►
//!                    ◄── Ack (what is durable)
//!   Heartbeat ◄──► Heartbeat (when idle);  Failure (kind Error) ◄──► before closing
//! ```
//!
//! Encoding: one message is the payload of one frame whose kind ([`FrameKind`]) says which
//! message it is; fields follow in struct order, little-endian. Strings are a `u16` length
//! and UTF-8; options a `0`/`1` byte and the value; [`Data::bytes`] come last and take the
//! rest of the payload, so decoding them copies nothing (unless they travel compressed).
//!
//! Invariants:
//! - Every length and field is checked on decode, with an error that names the field.
//! - Compression (issue 19) only once negotiated per link: [`Capabilities`] is the optional
//!   last field of [`Hello`] (offered) and [`Welcome`] (accepted), absent when either side
//!   predates it, so an old peer keeps working uncompressed (an old collector refuses a
//!   Hello with the field, as trailing bytes, in an Error: the extractor then says Hello
//!   again without it). A compressed Data is one zstd frame (flag bit 1, its original
//!   length first); [`Message::decode`] gives back the original bytes, bounded by that
//!   declared length.
//! - Positions, commit marks and Acks always count original (uncompressed) bytes.
//!
//! Why hand-written: the wire stays stable and documented here, with no serde format whose
//! layout could change with a crate version.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn, ThreadId, Xid};

use super::frame::{FrameKind, MAX_FRAME_LEN};
use super::{CommitMark, StreamId, StreamPos};
use crate::compress::{self, Level};

/// Version of the message protocol that [`Hello::protocol_version`] announces.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest original length a compressed Data may declare: what an uncompressed Data could
/// carry in one frame. A frame declaring more is refused before anything is allocated.
pub const MAX_DATA_ORIGINAL: usize = MAX_FRAME_LEN;

/// Data flags byte: bit 0, the log ends (its length follows).
const DATA_LOG_END: u8 = 1;
/// Data flags byte: bit 1, the bytes are one zstd frame (their original length precedes them).
const DATA_ZSTD: u8 = 2;

/// Longest database name or extractor id, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Longest reject or error reason, in bytes.
pub const MAX_REASON_LEN: usize = 4096;

/// One message of the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Extractor → collector, first message.
    Hello(Hello),
    /// Collector → extractor, answer to an accepted Hello.
    Welcome(Welcome),
    /// Extractor → collector: a chunk of the stream.
    Data(Data),
    /// Collector → extractor: what is durable.
    Ack(Ack),
    /// Either way, when idle: "still here".
    Heartbeat(Heartbeat),
    /// Collector → extractor, answer to a refused Hello; the collector then closes.
    Reject(Reject),
    /// Either way: a fatal error, then the sender closes.
    Error(Failure),
}

/// What a side of the link can do beyond protocol version 1: a bit set, sent as one byte.
/// In a Hello, what the extractor offers (bits this collector does not know are ignored);
/// in a Welcome, what the collector accepted (only bits that were offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u8);

impl Capabilities {
    /// Data bytes may travel zstd-compressed (extractor → collector).
    pub const ZSTD: u8 = 1;

    /// Capabilities with zstd, or none.
    pub fn zstd(on: bool) -> Capabilities {
        Capabilities(if on { Self::ZSTD } else { 0 })
    }

    /// True when zstd is in the set.
    pub fn has_zstd(self) -> bool {
        self.0 & Self::ZSTD != 0
    }
}

/// Extractor → collector, first message: who is speaking and what it will send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Message protocol version ([`PROTOCOL_VERSION`]).
    pub protocol_version: u16,
    /// The stream the extractor ships.
    pub stream: StreamId,
    /// Database name (`v$database.name`), for humans.
    pub db_name: String,
    /// Extractor instance id (its certificate names it too, under TLS).
    pub extractor_id: String,
    /// The extractor's durable checkpoint: where it would start if the collector agrees.
    pub from: StreamPos,
    /// What the extractor offers (compression); `None`: the field is not sent, as an
    /// extractor before issue 19 did (and as one must to a collector that predates it).
    pub capabilities: Option<Capabilities>,
}

/// Collector → extractor, answer to an accepted Hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The collector's durable end of this stream: the extractor sends from here.
    pub resume: StreamPos,
    /// The last commit the collector holds durably for this stream.
    pub last_commit: Option<CommitMark>,
    /// What the collector accepted of the Hello's offer; sent exactly when the Hello had
    /// capabilities (an extractor that predates them would refuse the field).
    pub capabilities: Option<Capabilities>,
}

/// Extractor → collector: the stream's bytes from `pos`, and the commits that end in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// Where `bytes` start in the stream.
    pub pos: StreamPos,
    /// The bytes (whole validated blocks of the log `pos.seq`).
    pub bytes: Bytes,
    /// Commits whose end lies in this chunk, in stream order.
    pub commits: Vec<CommitMark>,
    /// Set when this chunk completes the log of sequence `pos.seq`, which is then `N` bytes
    /// long (`N = pos.offset + bytes.len()`); the next Data starts at `(seq + 1, 0)`.
    pub log_end: Option<u64>,
}

impl Data {
    /// The position right after this chunk: `(seq, offset + len)`, or `(seq + 1, 0)` when
    /// the chunk completes its log. This is the position an [`Ack`] of it carries.
    pub fn end(&self) -> StreamPos {
        self.pos
            .after(self.bytes.len() as u64, self.log_end.is_some())
    }

    /// Checks the chunk's own consistency (what decoding checks too): no offset overflow,
    /// `log_end` equal to the chunk's end, empty only when it ends a log, every commit's
    /// end inside the chunk (`pos.offset < end.offset <= pos.offset + len`, same sequence)
    /// and commits in stream order.
    pub fn validate(&self) -> Result<(), MessageError> {
        let err = |field: &'static str, problem: String| MessageError {
            message: "Data",
            field,
            problem,
        };
        let len = self.bytes.len() as u64;
        let Some(chunk_end) = self.pos.offset.checked_add(len) else {
            return Err(err(
                "bytes",
                format!("{} bytes from offset {} overflow", len, self.pos.offset),
            ));
        };
        if let Some(n) = self.log_end
            && n != chunk_end
        {
            return Err(err(
                "log_end",
                format!("{n} is not the chunk's end {chunk_end}"),
            ));
        }
        if len == 0 && self.log_end.is_none() {
            return Err(err(
                "bytes",
                "empty chunk that does not end a log".to_string(),
            ));
        }
        if self.pos.seq.0 == u32::MAX && self.log_end.is_some() {
            return Err(err(
                "log_end",
                "log sequence u32::MAX cannot end (no next sequence)".to_string(),
            ));
        }
        let mut prev = self.pos.offset;
        for (i, c) in self.commits.iter().enumerate() {
            let inside = c.end.seq == self.pos.seq
                && c.end.offset > self.pos.offset
                && c.end.offset <= chunk_end;
            if !inside {
                return Err(MessageError {
                    message: "Data",
                    field: "commits[].end",
                    problem: format!(
                        "commit {i} ({}) ends at {}, outside the chunk {}..{}:{chunk_end}",
                        c.xid, c.end, self.pos, self.pos.seq.0
                    ),
                });
            }
            if c.end.offset < prev {
                return Err(MessageError {
                    message: "Data",
                    field: "commits[].end",
                    problem: format!(
                        "commit {i} ({}) ends at {}, before the previous commit's end",
                        c.xid, c.end
                    ),
                });
            }
            prev = c.end.offset;
        }
        Ok(())
    }
}

/// Collector → extractor: everything before `durable` is stored durably.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// End of the durable prefix: the [`Data::end`] of the last durable chunk.
    pub durable: StreamPos,
    /// The last commit inside the durable prefix: the recovery point.
    pub last_commit: Option<CommitMark>,
}

/// Either way, when nothing else was sent for a heartbeat interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The sender's wall clock, Unix milliseconds (for lag estimates only).
    pub sent_at_ms: u64,
}

/// Why a collector refuses a Hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// The Hello's protocol version is not spoken here.
    UnsupportedVersion,
    /// The stream is not configured on this collector.
    UnknownStream,
    /// Another extractor is already connected for this stream.
    StreamBusy,
    /// The extractor's certificate does not match its claimed id or database.
    NotAuthorized,
    /// The extractor's checkpoint and the collector's state cannot be reconciled (for
    /// example the extractor is ahead of what the collector holds).
    PositionMismatch,
    /// The collector cannot accept data now (disk full, I/O error); retry later.
    Unavailable,
    /// A code this version does not know (kept as received).
    Other(u8),
}

impl RejectCode {
    fn to_u8(self) -> u8 {
        match self {
            Self::UnsupportedVersion => 1,
            Self::UnknownStream => 2,
            Self::StreamBusy => 3,
            Self::NotAuthorized => 4,
            Self::PositionMismatch => 5,
            Self::Unavailable => 6,
            Self::Other(c) => c,
        }
    }

    fn from_u8(c: u8) -> Self {
        match c {
            1 => Self::UnsupportedVersion,
            2 => Self::UnknownStream,
            3 => Self::StreamBusy,
            4 => Self::NotAuthorized,
            5 => Self::PositionMismatch,
            6 => Self::Unavailable,
            c => Self::Other(c),
        }
    }
}

/// Collector → extractor: the Hello is refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Machine-readable reason.
    pub code: RejectCode,
    /// Human-readable reason (at most [`MAX_REASON_LEN`] bytes).
    pub reason: String,
}

/// Either way: a fatal error; the sender closes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong (at most [`MAX_REASON_LEN`] bytes).
    pub reason: String,
}

/// A message that cannot be encoded or decoded, naming the message and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}.{field}: {problem}")]
pub struct MessageError {
    /// Which message (`Hello`, `Data`...), or `frame` for the frame kind.
    pub message: &'static str,
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl Message {
    /// The frame kind that carries this message.
    pub fn kind(&self) -> FrameKind {
        match self {
            Message::Hello(_) => FrameKind::HELLO,
            Message::Welcome(_) => FrameKind::WELCOME,
            Message::Data(_) => FrameKind::DATA,
            Message::Ack(_) => FrameKind::ACK,
            Message::Heartbeat(_) => FrameKind::HEARTBEAT,
            Message::Reject(_) => FrameKind::REJECT,
            Message::Error(_) => FrameKind::ERROR,
        }
    }

    /// The message's name, for logs.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Appends the encoded message (the frame payload) to `out`, after checking it as
    /// decoding would: an invalid message is never sent. Data bytes go uncompressed.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), MessageError> {
        self.encode_with(out, None)
    }

    /// [`Message::encode`], with a Data's bytes compressed at `compress` when the link
    /// negotiated it and they shrink (else raw, flag clear).
    pub fn encode_with(
        &self,
        out: &mut BytesMut,
        compress: Option<Level>,
    ) -> Result<(), MessageError> {
        let mut w = Writer {
            out,
            message: self.name(),
        };
        match self {
            Message::Hello(h) => {
                w.out.put_u16_le(h.protocol_version);
                w.out.put_u32_le(h.stream.db_id.0);
                w.out.put_u32_le(h.stream.resetlogs_id.0);
                w.out.put_u16_le(h.stream.thread.0);
                w.name("db_name", &h.db_name)?;
                w.name("extractor_id", &h.extractor_id)?;
                w.pos(h.from);
                if let Some(c) = h.capabilities {
                    w.out.put_u8(c.0);
                }
            }
            Message::Welcome(m) => {
                w.pos(m.resume);
                w.commit_opt(m.last_commit.as_ref());
                if let Some(c) = m.capabilities {
                    w.out.put_u8(c.0);
                }
            }
            Message::Data(d) => {
                d.validate()?;
                w.pos(d.pos);
                let packed = compress.and_then(|level| compress::compress(&d.bytes, level));
                let flags = if d.log_end.is_some() { DATA_LOG_END } else { 0 }
                    | if packed.is_some() { DATA_ZSTD } else { 0 };
                w.out.put_u8(flags);
                if let Some(n) = d.log_end {
                    w.out.put_u64_le(n);
                }
                let n = u32::try_from(d.commits.len()).map_err(|_| MessageError {
                    message: "Data",
                    field: "commits",
                    problem: format!("{} commits in one chunk", d.commits.len()),
                })?;
                w.out.put_u32_le(n);
                for c in &d.commits {
                    w.commit(c);
                }
                match packed {
                    Some(z) => {
                        // validate() and the frame limit keep the length far below u32::MAX.
                        w.out.put_u32_le(d.bytes.len() as u32);
                        w.out.extend_from_slice(&z);
                    }
                    None => w.out.extend_from_slice(&d.bytes),
                }
            }
            Message::Ack(a) => {
                w.pos(a.durable);
                w.commit_opt(a.last_commit.as_ref());
            }
            Message::Heartbeat(h) => w.out.put_u64_le(h.sent_at_ms),
            Message::Reject(r) => {
                w.out.put_u8(r.code.to_u8());
                w.reason(&r.reason)?;
            }
            Message::Error(f) => w.reason(&f.reason)?,
        }
        Ok(())
    }

    /// Decodes the payload of a frame of kind `kind`, checking every field.
    pub fn decode(kind: FrameKind, payload: Bytes) -> Result<Message, MessageError> {
        let mut r = Reader {
            buf: payload,
            at: 0,
            message: kind.name(),
        };
        let msg = match kind {
            FrameKind::HELLO => Message::Hello(Hello {
                protocol_version: r.u16("protocol_version")?,
                stream: StreamId {
                    db_id: DbId(r.u32("stream.db_id")?),
                    resetlogs_id: ResetlogsId(r.u32("stream.resetlogs_id")?),
                    thread: ThreadId(r.u16("stream.thread")?),
                },
                db_name: r.name("db_name")?,
                extractor_id: r.name("extractor_id")?,
                from: r.pos("from")?,
                capabilities: r.capabilities()?,
            }),
            FrameKind::WELCOME => Message::Welcome(Welcome {
                resume: r.pos("resume")?,
                last_commit: r.commit_opt("last_commit")?,
                capabilities: r.capabilities()?,
            }),
            FrameKind::DATA => {
                let pos = r.pos("pos")?;
                let flags = r.u8("flags")?;
                if flags & !(DATA_LOG_END | DATA_ZSTD) != 0 {
                    return Err(r.err("flags", format!("unknown flags 0x{flags:02x}")));
                }
                let log_end = match flags & DATA_LOG_END != 0 {
                    false => None,
                    true => Some(r.u64("log_end")?),
                };
                let n = r.u32("commits")?;
                // Each commit takes at least 33 bytes: a hostile count cannot make us
                // reserve more than the payload could hold.
                let mut commits = Vec::with_capacity((n as usize).min(r.remaining() / 33));
                for _ in 0..n {
                    commits.push(r.commit("commits[]")?);
                }
                let bytes = if flags & DATA_ZSTD != 0 {
                    let declared = r.u32("original_len")? as usize;
                    let at = r.at;
                    let frame = r.rest();
                    compress::decompress(&frame, declared, MAX_DATA_ORIGINAL)
                        .map(Bytes::from)
                        .map_err(|e| r.err("bytes", format!("at payload byte {at}: {e}")))?
                } else {
                    r.rest()
                };
                let d = Data {
                    pos,
                    bytes,
                    commits,
                    log_end,
                };
                d.validate()?;
                return Ok(Message::Data(d));
            }
            FrameKind::ACK => Message::Ack(Ack {
                durable: r.pos("durable")?,
                last_commit: r.commit_opt("last_commit")?,
            }),
            FrameKind::HEARTBEAT => Message::Heartbeat(Heartbeat {
                sent_at_ms: r.u64("sent_at_ms")?,
            }),
            FrameKind::REJECT => Message::Reject(Reject {
                code: RejectCode::from_u8(r.u8("code")?),
                reason: r.reason("reason")?,
            }),
            FrameKind::ERROR => Message::Error(Failure {
                reason: r.reason("reason")?,
            }),
            other => {
                return Err(MessageError {
                    message: "frame",
                    field: "kind",
                    problem: format!("{other} is not a message"),
                });
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Hello(h) => write!(
                f,
                "Hello(v{} stream {} db {:?} extractor {:?} from {})",
                h.protocol_version, h.stream, h.db_name, h.extractor_id, h.from
            ),
            Message::Welcome(w) => write!(f, "Welcome(resume {})", w.resume),
            Message::Data(d) => write!(
                f,
                "Data({} +{} bytes, {} commits{})",
                d.pos,
                d.bytes.len(),
                d.commits.len(),
                if d.log_end.is_some() { ", log end" } else { "" }
            ),
            Message::Ack(a) => write!(f, "Ack(durable {})", a.durable),
            Message::Heartbeat(h) => write!(f, "Heartbeat({} ms)", h.sent_at_ms),
            Message::Reject(r) => write!(f, "Reject({:?}: {:?})", r.code, r.reason),
            Message::Error(e) => write!(f, "Error({:?})", e.reason),
        }
    }
}

struct Writer<'a> {
    out: &'a mut BytesMut,
    message: &'static str,
}

impl Writer<'_> {
    fn pos(&mut self, p: StreamPos) {
        self.out.put_u32_le(p.seq.0);
        self.out.put_u64_le(p.offset);
    }

    fn commit(&mut self, c: &CommitMark) {
        self.out.put_u16_le(c.xid.usn);
        self.out.put_u16_le(c.xid.slot);
        self.out.put_u32_le(c.xid.sqn);
        self.out.put_u64_le(c.scn.0);
        match c.time {
            None => self.out.put_u8(0),
            Some(t) => {
                self.out.put_u8(1);
                self.out.put_i64_le(t);
            }
        }
        self.pos(c.end);
    }

    fn commit_opt(&mut self, c: Option<&CommitMark>) {
        match c {
            None => self.out.put_u8(0),
            Some(c) => {
                self.out.put_u8(1);
                self.commit(c);
            }
        }
    }

    fn string(&mut self, field: &'static str, s: &str, max: usize) -> Result<(), MessageError> {
        let len = u16::try_from(s.len())
            .ok()
            .filter(|&n| usize::from(n) <= max)
            .ok_or_else(|| MessageError {
                message: self.message,
                field,
                problem: format!("{} bytes, at most {max}", s.len()),
            })?;
        self.out.put_u16_le(len);
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn name(&mut self, field: &'static str, s: &str) -> Result<(), MessageError> {
        check_name(self.message, field, s)?;
        self.string(field, s, MAX_NAME_LEN)
    }

    fn reason(&mut self, s: &str) -> Result<(), MessageError> {
        self.string("reason", s, MAX_REASON_LEN)
    }
}

/// Names are non-empty and printable: they end up in logs, metrics and file names.
fn check_name(message: &'static str, field: &'static str, s: &str) -> Result<(), MessageError> {
    if s.is_empty() {
        return Err(MessageError {
            message,
            field,
            problem: "empty".to_string(),
        });
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(MessageError {
            message,
            field,
            problem: format!("control character {c:?}"),
        });
    }
    Ok(())
}

/// A bounds-checked cursor over a payload.
struct Reader {
    buf: Bytes,
    at: usize,
    message: &'static str,
}

impl Reader {
    fn err(&self, field: &'static str, problem: String) -> MessageError {
        MessageError {
            message: self.message,
            field,
            problem,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.at)
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], MessageError> {
        let end = self.at.saturating_add(N);
        let bytes = self.buf.get(self.at..end).ok_or_else(|| {
            self.err(
                field,
                format!(
                    "truncated at payload byte {}: {N} bytes needed, {} left",
                    self.at,
                    self.remaining()
                ),
            )
        })?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, MessageError> {
        Ok(self.take::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, MessageError> {
        Ok(u16::from_le_bytes(self.take(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, MessageError> {
        Ok(u32::from_le_bytes(self.take(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, MessageError> {
        Ok(u64::from_le_bytes(self.take(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, MessageError> {
        Ok(i64::from_le_bytes(self.take(field)?))
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, MessageError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.err(field, format!("presence byte {b}, expected 0 or 1"))),
        }
    }

    fn pos(&mut self, field: &'static str) -> Result<StreamPos, MessageError> {
        Ok(StreamPos {
            seq: LogSeq(self.u32(field)?),
            offset: self.u64(field)?,
        })
    }

    fn commit(&mut self, field: &'static str) -> Result<CommitMark, MessageError> {
        let xid = Xid {
            usn: self.u16(field)?,
            slot: self.u16(field)?,
            sqn: self.u32(field)?,
        };
        let scn = Scn(self.u64(field)?);
        let time = match self.flag(field)? {
            false => None,
            true => Some(self.i64(field)?),
        };
        Ok(CommitMark {
            xid,
            scn,
            time,
            end: self.pos(field)?,
        })
    }

    fn commit_opt(&mut self, field: &'static str) -> Result<Option<CommitMark>, MessageError> {
        match self.flag(field)? {
            false => Ok(None),
            true => Ok(Some(self.commit(field)?)),
        }
    }

    fn string(&mut self, field: &'static str, max: usize) -> Result<String, MessageError> {
        let len = usize::from(self.u16(field)?);
        if len > max {
            return Err(self.err(field, format!("{len} bytes, at most {max}")));
        }
        let end = self.at.saturating_add(len);
        let Some(bytes) = self.buf.get(self.at..end) else {
            return Err(self.err(
                field,
                format!(
                    "truncated at payload byte {}: {len} bytes needed, {} left",
                    self.at,
                    self.remaining()
                ),
            ));
        };
        let s = std::str::from_utf8(bytes)
            .map_err(|e| self.err(field, format!("not UTF-8: {e}")))?
            .to_string();
        self.at = end;
        Ok(s)
    }

    fn name(&mut self, field: &'static str) -> Result<String, MessageError> {
        let s = self.string(field, MAX_NAME_LEN)?;
        check_name(self.message, field, &s)?;
        Ok(s)
    }

    fn reason(&mut self, field: &'static str) -> Result<String, MessageError> {
        self.string(field, MAX_REASON_LEN)
    }

    /// The optional last field of Hello and Welcome: absent (a peer before issue 19) or
    /// one byte.
    fn capabilities(&mut self) -> Result<Option<Capabilities>, MessageError> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        Ok(Some(Capabilities(self.u8("capabilities")?)))
    }

    fn rest(&mut self) -> Bytes {
        let rest = self.buf.slice(self.at.min(self.buf.len())..);
        self.at = self.buf.len();
        rest
    }

    fn finish(&self) -> Result<(), MessageError> {
        if self.remaining() != 0 {
            return Err(self.err(
                "(end)",
                format!("{} trailing bytes after the last field", self.remaining()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn commit(seq: u32, end: u64, n: u32) -> CommitMark {
        CommitMark {
            xid: Xid {
                usn: 3,
                slot: 7,
                sqn: n,
            },
            scn: Scn(1000 + u64::from(n)),
            time: if n.is_multiple_of(2) {
                Some(1_700_000_000)
            } else {
                None
            },
            end: StreamPos {
                seq: LogSeq(seq),
                offset: end,
            },
        }
    }

    fn samples() -> Vec<Message> {
        let pos = StreamPos {
            seq: LogSeq(15),
            offset: 1024,
        };
        vec![
            Message::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                stream: StreamId {
                    db_id: DbId(0xdead_beef),
                    resetlogs_id: ResetlogsId(1_224_959_854),
                    thread: ThreadId(2),
                },
                db_name: "FREE".into(),
                extractor_id: "db1-extractor".into(),
                from: pos,
                capabilities: None,
            }),
            Message::Welcome(Welcome {
                resume: pos,
                last_commit: Some(commit(15, 1024, 4)),
                capabilities: None,
            }),
            Message::Welcome(Welcome {
                resume: StreamPos::default(),
                last_commit: None,
                capabilities: None,
            }),
            Message::Data(Data {
                pos,
                bytes: Bytes::from(vec![0x5a; 1536]),
                commits: vec![
                    commit(15, 1536, 1),
                    commit(15, 1536, 2),
                    commit(15, 2560, 3),
                ],
                log_end: None,
            }),
            Message::Data(Data {
                pos,
                bytes: Bytes::from(vec![1; 512]),
                commits: vec![],
                log_end: Some(1536),
            }),
            Message::Data(Data {
                pos,
                bytes: Bytes::new(),
                commits: vec![],
                log_end: Some(1024),
            }),
            Message::Ack(Ack {
                durable: pos,
                last_commit: Some(commit(15, 1000, 9)),
            }),
            Message::Heartbeat(Heartbeat {
                sent_at_ms: 1_763_000_000_123,
            }),
            Message::Reject(Reject {
                code: RejectCode::StreamBusy,
                reason: "stream db1-rl2-t1 already has an extractor".into(),
            }),
            Message::Reject(Reject {
                code: RejectCode::Other(200),
                reason: String::new(),
            }),
            Message::Error(Failure {
                reason: "frame #3: replayed".into(),
            }),
        ]
    }

    fn encode(m: &Message) -> Bytes {
        let mut out = BytesMut::new();
        m.encode(&mut out).unwrap();
        out.freeze()
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            let back = Message::decode(m.kind(), encode(&m)).unwrap();
            assert_eq!(back, m, "{m}");
        }
    }

    #[test]
    fn every_truncation_and_extension_is_a_named_error() {
        for m in samples() {
            let bytes = encode(&m);
            // Data takes the rest as its bytes: truncations that cut only bytes are other
            // valid chunks, or fail validation (log_end); other messages must fail.
            let fixed = match &m {
                Message::Data(d) => bytes.len() - d.bytes.len(),
                _ => bytes.len(),
            };
            for cut in 0..fixed {
                let e = Message::decode(m.kind(), bytes.slice(..cut)).unwrap_err();
                assert_eq!(e.message, m.name(), "{m} cut at {cut}: {e}");
            }
            if !matches!(m, Message::Data(_)) {
                let mut longer = BytesMut::from(&bytes[..]);
                longer.put_u8(0);
                // Hello and Welcome take one more byte (their capabilities), not two.
                if matches!(m, Message::Hello(_) | Message::Welcome(_)) {
                    longer.put_u8(0);
                }
                let e = Message::decode(m.kind(), longer.freeze()).unwrap_err();
                assert!(e.to_string().contains("trailing"), "{e}");
            }
        }
    }

    #[test]
    fn data_validation_names_the_field() {
        let pos = StreamPos {
            seq: LogSeq(5),
            offset: 512,
        };
        let ok = Data {
            pos,
            bytes: Bytes::from(vec![0; 1024]),
            commits: vec![commit(5, 1536, 1)],
            log_end: None,
        };
        ok.validate().unwrap();
        assert_eq!(
            ok.end(),
            StreamPos {
                seq: LogSeq(5),
                offset: 1536
            }
        );
        let ended = Data {
            log_end: Some(1536),
            ..ok.clone()
        };
        assert_eq!(
            ended.end(),
            StreamPos {
                seq: LogSeq(6),
                offset: 0
            }
        );
        let cases: Vec<(Data, &str)> = vec![
            (
                Data {
                    commits: vec![commit(5, 1537, 1)],
                    ..ok.clone()
                },
                "commits[].end",
            ),
            (
                Data {
                    commits: vec![commit(5, 512, 1)],
                    ..ok.clone()
                },
                "commits[].end",
            ),
            (
                Data {
                    commits: vec![commit(6, 1024, 1)],
                    ..ok.clone()
                },
                "commits[].end",
            ),
            (
                Data {
                    commits: vec![commit(5, 1536, 1), commit(5, 1024, 2)],
                    ..ok.clone()
                },
                "commits[].end",
            ),
            (
                Data {
                    log_end: Some(1535),
                    ..ok.clone()
                },
                "log_end",
            ),
            (
                Data {
                    bytes: Bytes::new(),
                    commits: vec![],
                    ..ok.clone()
                },
                "bytes",
            ),
            (
                Data {
                    pos: StreamPos {
                        seq: LogSeq(5),
                        offset: u64::MAX,
                    },
                    commits: vec![],
                    ..ok.clone()
                },
                "bytes",
            ),
        ];
        for (d, field) in cases {
            let e = d.validate().unwrap_err();
            assert_eq!(e.field, field, "{e}");
            // The encoder refuses it too.
            let mut out = BytesMut::new();
            assert!(Message::Data(d).encode(&mut out).is_err());
        }
    }

    #[test]
    fn decoding_checks_fields() {
        // Hello with an empty extractor id.
        let mut out = BytesMut::new();
        out.put_u16_le(1);
        out.put_u32_le(1);
        out.put_u32_le(2);
        out.put_u16_le(1);
        out.put_u16_le(4);
        out.extend_from_slice(b"FREE");
        out.put_u16_le(0);
        out.put_u32_le(1);
        out.put_u64_le(0);
        let e = Message::decode(FrameKind::HELLO, out.freeze()).unwrap_err();
        assert_eq!((e.message, e.field), ("Hello", "extractor_id"), "{e}");
        // A presence byte that is neither 0 nor 1.
        let mut out = BytesMut::new();
        out.put_u32_le(1);
        out.put_u64_le(0);
        out.put_u8(2);
        let e = Message::decode(FrameKind::ACK, out.freeze()).unwrap_err();
        assert_eq!(e.field, "last_commit", "{e}");
        // A name longer than allowed and invalid UTF-8.
        let mut out = BytesMut::new();
        out.put_u16_le(1);
        out.put_u32_le(1);
        out.put_u32_le(2);
        out.put_u16_le(1);
        out.put_u16_le(2);
        out.extend_from_slice(&[0xff, 0xfe]);
        let e = Message::decode(FrameKind::HELLO, out.freeze()).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
        // A huge commit count allocates nothing and fails on the first missing commit.
        let mut out = BytesMut::new();
        out.put_u32_le(1);
        out.put_u64_le(0);
        out.put_u8(0);
        out.put_u32_le(u32::MAX);
        let e = Message::decode(FrameKind::DATA, out.freeze()).unwrap_err();
        assert_eq!(e.field, "commits[]", "{e}");
        // Not a message kind.
        let e = Message::decode(FrameKind::SEALED, Bytes::new()).unwrap_err();
        assert_eq!(e.field, "kind");
        // The encoder refuses what the decoder would.
        let bad = Message::Hello(Hello {
            protocol_version: 1,
            stream: StreamId {
                db_id: DbId(1),
                resetlogs_id: ResetlogsId(1),
                thread: ThreadId(1),
            },
            db_name: "x".repeat(MAX_NAME_LEN + 1),
            extractor_id: "e".into(),
            from: StreamPos::default(),
            capabilities: None,
        });
        let e = bad.encode(&mut BytesMut::new()).unwrap_err();
        assert_eq!(e.field, "db_name");
    }

    #[test]
    fn capabilities_are_an_optional_last_field() {
        let [Message::Hello(h), Message::Welcome(w), ..] = &samples()[..3] else {
            panic!("samples start with a Hello and a Welcome");
        };
        for caps in [
            Capabilities::zstd(true),
            Capabilities::zstd(false),
            Capabilities(0x81),
        ] {
            let hello = Message::Hello(Hello {
                capabilities: Some(caps),
                ..h.clone()
            });
            let welcome = Message::Welcome(Welcome {
                capabilities: Some(caps),
                ..w.clone()
            });
            for m in [hello, welcome] {
                let bytes = encode(&m);
                assert_eq!(Message::decode(m.kind(), bytes.clone()).unwrap(), m);
                // Without its last byte it is the same message as an old peer sends it.
                let old = Message::decode(m.kind(), bytes.slice(..bytes.len() - 1)).unwrap();
                match old {
                    Message::Hello(h) => assert_eq!(h.capabilities, None),
                    Message::Welcome(w) => assert_eq!(w.capabilities, None),
                    other => panic!("{other}"),
                }
                // A second byte is trailing garbage.
                let mut longer = BytesMut::from(&bytes[..]);
                longer.put_u8(0);
                assert!(Message::decode(m.kind(), longer.freeze()).is_err());
            }
        }
        assert!(Capabilities(0x81).has_zstd() && !Capabilities(0x80).has_zstd());
    }

    fn redo_like(n: usize) -> Bytes {
        Bytes::from((0..n).map(|i| ((i / 5) % 17) as u8).collect::<Vec<_>>())
    }

    fn encode_z(m: &Message, level: i32) -> Bytes {
        let mut out = BytesMut::new();
        m.encode_with(&mut out, Level::new(level)).unwrap();
        out.freeze()
    }

    #[test]
    fn compressed_data_carries_the_original_bytes() {
        let pos = StreamPos {
            seq: LogSeq(15),
            offset: 1024,
        };
        let d = Data {
            pos,
            bytes: redo_like(64 << 10),
            commits: vec![commit(15, 2048, 1), commit(15, 1024 + (64 << 10), 2)],
            log_end: Some(1024 + (64 << 10)),
        };
        let m = Message::Data(d.clone());
        let z = encode_z(&m, 3);
        let raw = encode(&m);
        assert!(z.len() < raw.len() / 4, "{} of {}", z.len(), raw.len());
        let back = Message::decode(FrameKind::DATA, z.clone()).unwrap();
        assert_eq!(back, m);
        // Every truncation is a named error (the frame no longer decompresses to its
        // declared length), never a shorter chunk.
        for cut in 0..z.len() {
            let e = Message::decode(FrameKind::DATA, z.slice(..cut)).unwrap_err();
            assert_eq!(e.message, "Data", "cut {cut}: {e}");
        }
        // Bytes that do not shrink travel raw: the encoding is the uncompressed one.
        let noise: Vec<u8> = {
            use rand::{RngCore as _, SeedableRng as _};
            let mut b = vec![0u8; 4096];
            rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut b);
            b
        };
        let m = Message::Data(Data {
            bytes: Bytes::from(noise),
            commits: vec![],
            log_end: None,
            ..d
        });
        assert_eq!(encode_z(&m, 19), encode(&m));
    }

    /// A compressed Data payload: pos (5:0), flags, no commits, declared length, frame.
    fn zstd_payload(declared: u32, frame: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u32_le(5);
        out.put_u64_le(0);
        out.put_u8(DATA_ZSTD);
        out.put_u32_le(0);
        out.put_u32_le(declared);
        out.extend_from_slice(frame);
        out.freeze()
    }

    #[test]
    fn compressed_data_is_bounded_by_its_declared_length() {
        // 64 MiB of zeros in a few kilobytes: declared as 1 KiB, or as the whole 64 MiB
        // (above the maximum), it is refused without producing more than declared.
        let bomb = compress::compress(&vec![0u8; 64 << 20], Level::DEFAULT).unwrap();
        for declared in [1024, 64 << 20, u32::MAX] {
            let e = Message::decode(FrameKind::DATA, zstd_payload(declared, &bomb)).unwrap_err();
            assert_eq!((e.message, e.field), ("Data", "bytes"), "{e}");
            assert!(e.to_string().contains("payload byte 21"), "{e}");
        }
        // Garbage after the flag, and a declared length that is missing.
        let e = Message::decode(FrameKind::DATA, zstd_payload(10, b"garbage!")).unwrap_err();
        assert_eq!(e.field, "bytes", "{e}");
        let mut cut = BytesMut::from(&zstd_payload(0, b"")[..]);
        cut.truncate(cut.len() - 4);
        let e = Message::decode(FrameKind::DATA, cut.freeze()).unwrap_err();
        assert_eq!(e.field, "original_len", "{e}");
        // Unknown flag bits.
        let mut p = BytesMut::from(&zstd_payload(0, b"")[..]);
        p[12] = 0x04;
        let e = Message::decode(FrameKind::DATA, p.freeze()).unwrap_err();
        assert_eq!(e.field, "flags", "{e}");
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(kind in 0u8..9, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::decode(FrameKind(kind), Bytes::from(bytes));
        }

        #[test]
        fn data_round_trips(
            seq in 0u32..1000,
            offset in 0u64..(1 << 40),
            len in 1usize..2000,
            ends in proptest::collection::vec(1u64..2000, 0..5),
            last in any::<bool>(),
        ) {
            let mut ends: Vec<u64> = ends.into_iter().map(|e| offset + e.min(len as u64)).collect();
            ends.sort();
            let d = Data {
                pos: StreamPos { seq: LogSeq(seq), offset },
                bytes: Bytes::from(vec![7u8; len]),
                commits: ends.iter().enumerate().map(|(i, &e)| commit(seq, e, i as u32)).collect(),
                log_end: last.then_some(offset + len as u64),
            };
            let m = Message::Data(d);
            prop_assert_eq!(Message::decode(FrameKind::DATA, encode(&m)).unwrap(), m.clone());
            prop_assert_eq!(Message::decode(FrameKind::DATA, encode_z(&m, 1)).unwrap(), m);
        }
    }
}
