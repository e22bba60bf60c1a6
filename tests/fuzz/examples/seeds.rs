//! Writes the seed corpora of the fuzz targets (`seeds/<target>/`) with the project's own
//! encoders and writers: frames and messages as the link sends them, legacy handshake frames,
//! segments written by `SegmentWriter`, chunk encodings, key files as documented, recovery
//! keys from `RecoveryPrivateKey::generate`, a manifest segment written by `ManifestDir`, and
//! the S3 bodies the store tests use. `seed.sh` adds what is made at run time (the real
//! Oracle logs, the example configurations).
//!
//! `cargo run --example seeds [OUT_DIR]` (default `seeds`, next to this crate's Cargo.toml).

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use redovault::compress::Level;
use redovault::crypto::keys::{KeyId, KeyRing};
use redovault::crypto::legacy::{Handshake, NONCE_LEN, Psk, Role};
use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::manifest::{ManifestDir, ManifestEntry, Sha256Digest, segment_key};
use redovault::wire::frame::{FrameEncoder, FrameKind, MAX_FRAME_LEN};
use redovault::wire::message::{
    Ack, Data, Failure, Heartbeat, Hello, Message, PROTOCOL_VERSION, Reject, RejectCode, Welcome,
};
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_collector::fs::RealFs;
use redovault_collector::segment::{StoredChunk, SegmentWriter};
use redovault_redo::position::{LogSeq, Scn, ThreadId, Xid};

fn stream() -> StreamId {
    StreamId {
        db_id: redovault_redo::position::DbId(42),
        resetlogs_id: redovault_redo::position::ResetlogsId(7),
        thread: ThreadId(1),
    }
}

fn pos(seq: u32, offset: u64) -> StreamPos {
    StreamPos {
        seq: LogSeq(seq),
        offset,
    }
}

fn commit(sqn: u32, end: StreamPos) -> CommitMark {
    CommitMark {
        xid: Xid {
            usn: 3,
            slot: 4,
            sqn,
        },
        scn: Scn(1000 + u64::from(sqn)),
        time: sqn.is_multiple_of(2).then_some(1_772_841_600),
        end,
    }
}

fn messages() -> Vec<Message> {
    vec![
        Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            stream: stream(),
            db_name: "ORCL".into(),
            extractor_id: "dbhost-1".into(),
            from: pos(16, 0),
            capabilities: None,
        }),
        Message::Welcome(Welcome {
            resume: pos(16, 1024),
            last_commit: Some(commit(2, pos(16, 1024))),
            capabilities: None,
        }),
        Message::Data(Data {
            pos: pos(16, 1024),
            bytes: Bytes::from(vec![0x22; 512]),
            commits: vec![commit(3, pos(16, 1536))],
            log_end: Some(1536),
        }),
        Message::Ack(Ack {
            durable: pos(17, 0),
            last_commit: None,
        }),
        Message::Heartbeat(Heartbeat {
            sent_at_ms: 1_772_841_600_000,
        }),
        Message::Reject(Reject {
            code: RejectCode::PositionMismatch,
            reason: "resume at 16:1024".into(),
        }),
        Message::Error(Failure {
            reason: "shutting down".into(),
        }),
    ]
}

fn frame(enc: &mut FrameEncoder, kind: FrameKind, payload: &[u8], out: &mut BytesMut) {
    enc.encode(kind, 0, payload, out).expect("a seed frame");
}

fn keys() -> KeyRing {
    let id = KeyId::parse("fuzz").expect("a key id");
    KeyRing::from_keys(id.clone(), [(id, [0x5a; 32])]).expect("a key ring")
}

struct Out(PathBuf);

impl Out {
    fn put(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.0.join(target);
        std::fs::create_dir_all(&dir).expect("a seed directory");
        std::fs::write(dir.join(name), bytes).expect("a seed file");
    }
}

fn wire(out: &Out) {
    let mut stream_bytes = BytesMut::new();
    let mut enc = FrameEncoder::new(MAX_FRAME_LEN);
    for m in messages() {
        let mut payload = BytesMut::new();
        m.encode(&mut payload).expect("a seed message");
        let mut one = vec![m.kind().0];
        one.extend_from_slice(&payload);
        out.put("wire_message", &m.name().to_lowercase(), &one);
        frame(&mut enc, m.kind(), &payload, &mut stream_bytes);
        // A Data whose bytes travel zstd-compressed (issue 19), when they shrink.
        let mut packed = BytesMut::new();
        m.encode_with(&mut packed, Level::new(3)).expect("a seed message");
        if packed != payload {
            let mut one = vec![m.kind().0];
            one.extend_from_slice(&packed);
            out.put("wire_message", &format!("{}-zstd", m.name().to_lowercase()), &one);
        }
    }
    // wire_frame: 4 chunking bytes, then frames.
    let mut seed = vec![0, 3, 27, 200];
    seed.extend_from_slice(&stream_bytes);
    out.put("wire_frame", "conversation", &seed);
}

fn legacy(out: &Out) {
    let mut hello = vec![1u8];
    hello.extend_from_slice(&[9u8; NONCE_LEN]);
    let mut enc = FrameEncoder::new(MAX_FRAME_LEN);
    let mut client = BytesMut::from(&[0u8][..]);
    frame(
        &mut enc,
        FrameKind::LEGACY_CLIENT_HELLO,
        &hello,
        &mut client,
    );
    frame(
        &mut enc,
        FrameKind::LEGACY_CLIENT_FINISHED,
        &[5; 32],
        &mut client,
    );
    out.put("legacy_handshake", "client", &client);
    let mut enc = FrameEncoder::new(MAX_FRAME_LEN);
    let mut server = BytesMut::from(&[1u8][..]);
    frame(
        &mut enc,
        FrameKind::LEGACY_SERVER_HELLO,
        &hello,
        &mut server,
    );
    frame(
        &mut enc,
        FrameKind::LEGACY_SERVER_FINISHED,
        &[5; 32],
        &mut server,
    );
    out.put("legacy_handshake", "server", &server);
    // A genuine sealed payload (the target's fixed channel), then pieces to seal.
    let psk = Psk::new(vec![0x42; 32]).expect("a PSK");
    let hs = Handshake::new(&psk, &[1; NONCE_LEN], &[2; NONCE_LEN], b"transcript");
    let (mut sealer, _) = hs.into_channel(Role::Client, 64);
    let mut buf = b"redo bytes".to_vec();
    let tag = sealer.seal(&[7u8; 20], &mut buf).expect("sealed");
    buf.extend_from_slice(&tag);
    let mut channel = vec![2u8, 0, buf.len() as u8];
    channel.extend_from_slice(&buf);
    channel.extend_from_slice(&[1, 40]);
    channel.extend_from_slice(&[0x33; 40]);
    out.put("legacy_handshake", "channel", &channel);
}

fn chunks() -> Vec<StoredChunk> {
    vec![
        StoredChunk {
            start: pos(16, 0),
            data: vec![0x11; 300],
            commits: vec![commit(1, pos(16, 200))],
            log_end: false,
        },
        StoredChunk {
            start: pos(16, 300),
            data: vec![0x12; 212],
            commits: vec![commit(2, pos(16, 400)), commit(4, pos(16, 512))],
            log_end: true,
        },
        StoredChunk {
            start: pos(17, 0),
            data: vec![0x13; 64],
            commits: Vec::new(),
            log_end: false,
        },
    ]
}

fn segments(out: &Out) {
    for (i, c) in chunks().iter().enumerate() {
        out.put("chunk", &format!("chunk{i}"), &c.encode().expect("a chunk"));
        // Compressed (version 2, issue 19): the redo as one zstd frame.
        let z = c.encode_with(Level::new(3)).expect("a chunk");
        if z[0] == redovault_collector::segment::CHUNK_VERSION_ZSTD {
            out.put("chunk", &format!("chunk{i}-zstd"), &z);
        }
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let mut w = SegmentWriter::create(&RealFs, tmp.path(), &keys(), stream(), 1, 1_772_841_600)
        .expect("a segment");
    for c in chunks() {
        w.append(&c).expect("append");
    }
    w.sync().expect("sync");
    let bytes = std::fs::read(w.path()).expect("the segment");
    out.put("segment", "three_chunks", &bytes);
    // A torn tail: the last record cut in the middle.
    out.put("segment", "torn", &bytes[..bytes.len() - 40]);
}

fn key_files(out: &Out) {
    out.put(
        "key_file",
        "keyring",
        b"# redovault collector keys\nactive = \"k2\"   # seals new segments\n\n[keys]\n\
          k1 = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n\
          k2 = \"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\"\n",
    );
    let key = RecoveryPrivateKey::generate();
    out.put("key_file", "recovery.key", key.to_pem().as_bytes());
    out.put("key_file", "recovery.pub", key.public().to_pem().as_bytes());
}

fn manifest(out: &Out) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let mut dir = ManifestDir::open(tmp.path(), &mut |_| {}).expect("a manifest");
    for seq in 15..18u32 {
        dir.append(ManifestEntry {
            index: 0,
            prev: Sha256Digest::ZERO,
            db_id: redovault_redo::position::DbId(42),
            db_name: "ORCL".into(),
            resetlogs_id: redovault_redo::position::ResetlogsId(7),
            thread: ThreadId(1),
            sequence: LogSeq(seq),
            first_scn: Scn(u64::from(seq) * 1000),
            next_scn: Scn(u64::from(seq + 1) * 1000),
            first_time: "2026-11-21T03:03:00".into(),
            next_time: "2026-11-21T03:04:00".into(),
            size: 1 << 20,
            sha256: Sha256Digest::of(&seq.to_le_bytes()),
            object_key: format!("archive/db42/t1/{seq}.arc"),
            version_id: Some("v1".into()),
            retain_until: Some("2027-11-21T03:04:00Z".into()),
            shipped_at: "2026-11-21T03:04:01Z".into(),
            file_name: format!("arch1_{seq}_1224959854.dbf"),
            stored: None,
        })
        .expect("append");
    }
    let seg = dir.close_segment().expect("close").expect("a segment");
    let bytes = std::fs::read(&seg.path).expect("the segment");
    out.put("manifest", "segment", &bytes);
    out.put("manifest", "key", segment_key("archive", &seg).as_bytes());
}

fn s3(out: &Out) {
    let bodies: [(&str, &str); 6] = [
        (
            "error",
            "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce &amp; retry\
             </Message></Error>",
        ),
        (
            "list",
            "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a/1</Key><Size>3\
             </Size></Contents><Contents><Key>a/2</Key><Size>5</Size></Contents>\
             <NextContinuationToken>t1</NextContinuationToken></ListBucketResult>",
        ),
        (
            "lock",
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
             <DefaultRetention><Mode>COMPLIANCE</Mode><Days>30</Days></DefaultRetention></Rule>\
             </ObjectLockConfiguration>",
        ),
        (
            "lock_years",
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
             <DefaultRetention><Mode>GOVERNANCE</Mode><Years>1</Years></DefaultRetention></Rule>\
             </ObjectLockConfiguration>",
        ),
        (
            "versions",
            "<ListVersionsResult><Version><Key>k</Key><VersionId>v2</VersionId></Version>\
             <Version><Key>k</Key><VersionId>v1</VersionId></Version></ListVersionsResult>",
        ),
        (
            "upload",
            "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>2~abc\
             </UploadId></InitiateMultipartUploadResult>",
        ),
    ];
    for (name, body) in bodies {
        out.put("s3_xml", name, body.as_bytes());
    }
}

fn main() {
    let dir = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"),
        PathBuf::from,
    );
    let out = Out(dir);
    wire(&out);
    legacy(&out);
    segments(&out);
    key_files(&out);
    manifest(&out);
    s3(&out);
    zstd_frames(&out);
}

/// A simulated archived log compressed as the watcher ships it: declared size (4 bytes), piece
/// size (1 byte), the frame; whole, in small pieces, and declared one byte short.
fn zstd_frames(out: &Out) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut c = redovault_drill::simulate::SimConfig::new(dir.path());
    c.log_size = 64 << 10;
    c.switches = Some(1);
    c.seed = 3;
    let log = redovault_drill::simulate::run(c).expect("a simulated log").archived[0].clone();
    let frame_path = dir.path().join("log.zst");
    let level = redovault::compress::Level::new(1).expect("level 1");
    let done = redovault::compress::compress_file(&log, &frame_path, level).expect("compressed");
    let frame = std::fs::read(&frame_path).expect("the frame");
    let size = u32::try_from(done.original_size).expect("a small log");
    for (name, declared, step) in [("whole", size, 255u8), ("pieces", size, 7), ("short", size - 1, 64)] {
        let mut seed = declared.to_le_bytes().to_vec();
        seed.push(step);
        seed.extend_from_slice(&frame);
        out.put("zstd_frame", name, &seed);
    }
}
