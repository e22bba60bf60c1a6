//! A real S3 test server as described by the `env.sh` that `deploy/s3/server.sh up` writes;
//! shared by the end-to-end tests and the upload benchmark (`test-util` feature only).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{Credentials, S3Config};
use crate::store::{LockMode, Retention, StoreError};

/// One running test server and its buckets.
#[derive(Debug, Clone)]
pub struct TestServer {
    /// `ceph` or `localstack`.
    pub kind: String,
    /// HTTPS endpoint.
    pub endpoint: url::Url,
    /// The throwaway CA that signed the server's certificate.
    pub ca: PathBuf,
    /// Signing region.
    pub region: String,
    /// Object Lock, no default retention.
    pub bucket: String,
    /// Object Lock with a default COMPLIANCE retention.
    pub bucket_default: String,
    /// Versioned, no Object Lock.
    pub bucket_nolock: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

impl TestServer {
    /// Reads an `env.sh` (lines `export K='v'`).
    pub fn from_env_file(path: &str) -> Result<TestServer, StoreError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| StoreError::io(format!("read {path}"), e))?;
        let vars: HashMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k, v.trim_matches(|c| c == '"' || c == '\'')))
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.to_string())
                .ok_or_else(|| StoreError::Config(format!("{path}: no {k}")))
        };
        let endpoint = get("REDOVAULT_TEST_S3_ENDPOINT")?;
        Ok(TestServer {
            kind: get("REDOVAULT_TEST_S3_KIND")?,
            endpoint: url::Url::parse(&endpoint)
                .map_err(|e| StoreError::Config(format!("{path}: endpoint {endpoint}: {e}")))?,
            ca: PathBuf::from(get("REDOVAULT_TEST_S3_CA")?),
            region: get("REDOVAULT_TEST_S3_REGION")?,
            bucket: get("REDOVAULT_TEST_S3_BUCKET")?,
            bucket_default: get("REDOVAULT_TEST_S3_BUCKET_DEFAULT")?,
            bucket_nolock: get("REDOVAULT_TEST_S3_BUCKET_NOLOCK")?,
            access_key: get("AWS_ACCESS_KEY_ID")?,
            secret_key: get("AWS_SECRET_ACCESS_KEY")?,
        })
    }

    /// A store configuration for `bucket`: path-style, the test CA, COMPLIANCE for one hour.
    pub fn config(&self, bucket: &str) -> S3Config {
        let mut c = S3Config::new(self.endpoint.clone(), bucket);
        c.region = self.region.clone();
        c.path_style = true;
        c.ca_file = Some(self.ca.clone());
        c.credentials = Some(Credentials {
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            session_token: None,
        });
        c.retention = Retention::Explicit {
            mode: LockMode::Compliance,
            period: Duration::from_secs(3600),
        };
        c
    }
}
