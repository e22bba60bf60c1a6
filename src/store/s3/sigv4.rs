//! AWS Signature Version 4 for S3 requests, with every header we send signed.
//!
//! Payloads are signed with their real SHA-256 (never `UNSIGNED-PAYLOAD` for uploads): a
//! server that checks SigV4 therefore verifies the bytes as well.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// Characters left alone by S3's URI encoding: RFC 3986 unreserved.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment or query component the way SigV4 wants it.
pub(crate) fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Encodes a key as a path, keeping the `/` between segments.
pub(crate) fn encode_key_path(key: &str) -> String {
    key.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

/// Access key, secret and optional session token.
#[derive(Clone)]
pub struct Credentials {
    /// AWS access key id.
    pub access_key: String,
    /// AWS secret access key.
    pub secret_key: String,
    /// Session token for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Hex SHA-256 of an empty body.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A request to sign: everything that goes into the canonical request.
pub(crate) struct SignInput<'a> {
    pub method: &'a str,
    /// Already-encoded absolute path, e.g. `/bucket/a/b.dbf`.
    pub path: &'a str,
    /// Query pairs, not encoded; sorted here.
    pub query: &'a [(String, String)],
    /// Header names (any case) and values; `host`, `x-amz-date` and `x-amz-content-sha256` are
    /// added by [`sign`].
    pub headers: &'a [(String, String)],
    pub host: &'a str,
    pub payload_sha256_hex: &'a str,
    pub region: &'a str,
    pub time: DateTime<Utc>,
}

/// The canonical query string: sorted, encoded, `k=` for empty values.
pub(crate) fn canonical_query(query: &[(String, String)]) -> String {
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    q.sort();
    q.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Returns the headers to add to the request: `x-amz-date`, `x-amz-content-sha256`,
/// optionally `x-amz-security-token`, and `authorization`.
pub(crate) fn sign(creds: &Credentials, input: &SignInput<'_>) -> Vec<(String, String)> {
    let amz_date = input.time.format("%Y%m%dT%H%M%SZ").to_string();
    let date = input.time.format("%Y%m%d").to_string();
    let mut extra = vec![
        ("x-amz-date".to_string(), amz_date.clone()),
        (
            "x-amz-content-sha256".to_string(),
            input.payload_sha256_hex.to_string(),
        ),
    ];
    if let Some(t) = &creds.session_token {
        extra.push(("x-amz-security-token".to_string(), t.clone()));
    }
    let mut all: Vec<(String, String)> = input
        .headers
        .iter()
        .chain(extra.iter())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    all.push(("host".to_string(), input.host.to_string()));
    all.sort();
    let canonical_headers: String = all.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = all
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        input.path,
        canonical_query(input.query),
        canonical_headers,
        signed_headers,
        input.payload_sha256_hex
    );
    let scope = format!("{date}/{}/s3/aws4_request", input.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_key).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, input.region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    extra.push((
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, \
             Signature={signature}",
            creds.access_key
        ),
    ));
    extra
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The "GET Object" example of the S3 SigV4 documentation.
    #[test]
    fn aws_documented_get_object_example() {
        let creds = Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let headers = vec![("Range".to_string(), "bytes=0-9".to_string())];
        let out = sign(
            &creds,
            &SignInput {
                method: "GET",
                path: "/test.txt",
                query: &[],
                headers: &headers,
                host: "examplebucket.s3.amazonaws.com",
                payload_sha256_hex: EMPTY_SHA256,
                region: "us-east-1",
                time: Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap(),
            },
        );
        let auth = &out.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(auth.contains(
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ));
    }

    #[test]
    fn encoding() {
        assert_eq!(encode_key_path("a b/c+d/é~"), "a%20b/c%2Bd/%C3%A9~");
        let q = vec![
            ("uploads".to_string(), String::new()),
            ("a".into(), "x/y".into()),
        ];
        assert_eq!(canonical_query(&q), "a=x%2Fy&uploads=");
    }
}
