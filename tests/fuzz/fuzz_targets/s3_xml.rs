//! Fuzz target: an S3 response body (from a server we do not control, or a proxy in front of
//! it) through the parsers the store runs on them: error code and message, the listing's
//! `Contents` records and continuation, object versions, the multipart upload id, the bucket's
//! Object Lock state and default retention. Nothing may panic or loop; what the parsers find
//! is consistent between them; and text we escape into a body comes back as written
//! (records(escape(x)) == x).
#![no_main]

use libfuzzer_sys::fuzz_target;
use redovault::store::s3::parse_default_retention;
use redovault::store::s3::xml::{all_text, escape, first_text, records};

fuzz_target!(|input: &[u8]| {
    let body = String::from_utf8_lossy(input);
    let _ = first_text(&body, "Code");
    let _ = first_text(&body, "Message");
    let _ = first_text(&body, "UploadId");
    let _ = first_text(&body, "ObjectLockEnabled");
    let keys = all_text(&body, "Key");
    assert_eq!(first_text(&body, "Key"), keys.first().cloned());
    let contents = records(&body, "Contents", &["Key", "Size"]);
    let truncated = first_text(&body, "IsTruncated");
    let _ = (truncated, first_text(&body, "NextContinuationToken"));
    for c in &contents {
        if let Some(size) = c.child("Size") {
            let _ = size.parse::<u64>();
        }
    }
    let _ = records(&body, "Version", &["Key", "VersionId"]);
    if let Some((_, retention)) = parse_default_retention(&body) {
        assert!(
            retention.as_secs() % 86_400 == 0,
            "retention not in whole days"
        );
    }
    // Round trip: a key we escape into a body is read back unchanged.
    let text = String::from_utf8_lossy(input);
    if !text.is_empty() && !text.contains('\r') {
        let doc = format!(
            "<ListBucketResult><Contents><Key>{}</Key><Size>1</Size></Contents></ListBucketResult>",
            escape(&text)
        );
        let back = records(&doc, "Contents", &["Key", "Size"]);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].child("Key"), Some(&*text), "escape round trip");
        assert_eq!(back[0].child("Size"), Some("1"));
    }
});
