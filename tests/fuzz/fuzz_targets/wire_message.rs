//! Fuzz target: a frame payload from a link peer, of the kind chosen by the first byte, through
//! `Message::decode`: the extractor's messages (Hello, Data, Heartbeat) as the collector reads
//! them and the collector's (Welcome, Ack, Reject, Error) as the extractor reads them. A
//! message decoded must pass its own checks, encode again to exactly the same payload, and
//! decode from that to the same message (decode(encode(x)) == x). A Data whose bytes came
//! zstd-compressed (issue 19) decodes to the original bytes within its declared length; it
//! round-trips raw and compressed, and only raw payloads must be canonical.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use redovault::compress::Level;
use redovault::wire::frame::FrameKind;
use redovault::wire::message::Message;

fuzz_target!(|input: &[u8]| {
    let Some((&kind, payload)) = input.split_first() else {
        return;
    };
    let kind = FrameKind(kind);
    let Ok(msg) = Message::decode(kind, Bytes::copy_from_slice(payload)) else {
        return;
    };
    assert_eq!(msg.kind(), kind, "decoded into another kind");
    if let Message::Data(d) = &msg {
        d.validate().expect("a decoded Data message is valid");
    }
    let mut out = BytesMut::new();
    msg.encode(&mut out).expect("a decoded message encodes");
    // The Data flags byte follows the 12-byte position: bit 1 is zstd.
    let compressed = kind == FrameKind::DATA && payload.get(12).is_some_and(|f| f & 2 != 0);
    if !compressed {
        assert_eq!(&out[..], payload, "the encoding is not canonical");
    }
    let again = Message::decode(kind, out.freeze()).expect("an encoded message decodes");
    assert_eq!(again, msg);
    let mut packed = BytesMut::new();
    msg.encode_with(&mut packed, Level::new(1))
        .expect("a decoded message encodes compressed");
    let again = Message::decode(kind, packed.freeze()).expect("a compressed message decodes");
    assert_eq!(again, msg);
});
