//! A real S3 test server as described by the `env.sh` that `deploy/s3/server.sh up` writes;
//! shared by the end-to-end tests, the benchmarks and `redovault drill` (which finds its S3
//! server this way).
//!
//! On Ceph the server also has a drill bucket ([`DrillBucket`]) whose bucket policy is the one
//! of `deploy/s3/policies`, with separate credentials for the database host (create and read
//! back under the prefix, nothing else), for the verifier (read only) and for the collector
//! (create and read back under `PREFIX/streams/`, nothing else).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use redovault::store::s3::{Credentials, S3Config};
use redovault::store::{LockMode, Retention, StoreError};

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
    pub access_key: String,
    pub secret_key: String,
    /// The bucket with the `deploy/s3/policies` bucket policy and its users (None where the
    /// server enforces no bucket policy: LocalStack community).
    pub drill: Option<DrillBucket>,
}

/// The attack-drill bucket: Object Lock with the default COMPLIANCE retention of
/// `deploy/s3/policies/bucket-object-lock.json`, and one bucket policy made of the statements
/// of `dbhost-put-only.json`, `verifier-read-only.json` and `collector-put-only.json`.
#[derive(Debug, Clone)]
pub struct DrillBucket {
    /// The bucket (owned by the test server's main user).
    pub bucket: String,
    /// The key prefix the policy grants (`PREFIX`): the database host may only write below it,
    /// except under `PREFIX/streams/`, which is the collector's alone.
    pub prefix: String,
    /// The database host's keys (`redovault-dbhost`).
    pub dbhost: Credentials,
    /// The verifier's keys (`redovault-verifier`).
    pub verifier: Credentials,
    /// The collector's keys (`redovault-collector`): create and read back under
    /// `PREFIX/streams/` only.
    pub collector: Credentials,
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
        let creds = |id: &str, secret: &str| -> Result<Credentials, StoreError> {
            Ok(Credentials {
                access_key: get(id)?,
                secret_key: get(secret)?,
                session_token: None,
            })
        };
        let drill = match vars.get("REDOVAULT_TEST_S3_DRILL_BUCKET") {
            None => None,
            Some(bucket) => Some(DrillBucket {
                bucket: bucket.to_string(),
                prefix: get("REDOVAULT_TEST_S3_DRILL_PREFIX")?,
                dbhost: creds(
                    "REDOVAULT_TEST_S3_DBHOST_ACCESS_KEY_ID",
                    "REDOVAULT_TEST_S3_DBHOST_SECRET_ACCESS_KEY",
                )?,
                verifier: creds(
                    "REDOVAULT_TEST_S3_VERIFIER_ACCESS_KEY_ID",
                    "REDOVAULT_TEST_S3_VERIFIER_SECRET_ACCESS_KEY",
                )?,
                collector: creds(
                    "REDOVAULT_TEST_S3_COLLECTOR_ACCESS_KEY_ID",
                    "REDOVAULT_TEST_S3_COLLECTOR_SECRET_ACCESS_KEY",
                )?,
            }),
        };
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
            drill,
        })
    }

    /// A store configuration for the drill bucket with the database host's keys and
    /// [`Retention::BucketDefault`] (what the policy README prescribes for the watcher).
    /// `prefix` is where the caller will write: it must be the drill prefix or below it,
    /// the only place the policy lets the database host write.
    pub fn dbhost_config(&self, prefix: &str) -> Result<S3Config, StoreError> {
        let drill = self.drill_for(prefix)?;
        Ok(self.drill_config(drill, drill.dbhost.clone()))
    }

    /// A store configuration for the drill bucket with the verifier's (read-only) keys.
    /// `prefix` is what the caller will read: the drill prefix or below it.
    pub fn verifier_config(&self, prefix: &str) -> Result<S3Config, StoreError> {
        let drill = self.drill_for(prefix)?;
        Ok(self.drill_config(drill, drill.verifier.clone()))
    }

    /// A store configuration for the drill bucket with the collector's keys and
    /// [`Retention::BucketDefault`]. `prefix` is the collector's `worm.prefix`: its keys are
    /// `<prefix>/streams/…`, and the policy grants exactly `PREFIX/streams/*`, so it must be
    /// the drill prefix itself (a run keeps apart by its stream names, not by a prefix).
    pub fn collector_config(&self, prefix: &str) -> Result<S3Config, StoreError> {
        let drill = self.drill_for(prefix)?;
        if prefix.trim_matches('/') != drill.prefix {
            return Err(StoreError::Config(format!(
                "prefix {prefix:?}: the policy of bucket {} lets the collector write only under \
                 {:?}, so its worm prefix must be {:?}",
                drill.bucket,
                format!("{}/streams/", drill.prefix),
                drill.prefix
            )));
        }
        Ok(self.drill_config(drill, drill.collector.clone()))
    }

    fn drill_for(&self, prefix: &str) -> Result<&DrillBucket, StoreError> {
        let drill = self.drill.as_ref().ok_or_else(|| {
            StoreError::Config(format!(
                "the {} test server at {} has no drill bucket",
                self.kind, self.endpoint
            ))
        })?;
        let p = prefix.trim_matches('/');
        if p != drill.prefix && !p.starts_with(&format!("{}/", drill.prefix)) {
            return Err(StoreError::Config(format!(
                "prefix {prefix:?} is outside {:?}, the only prefix the policy of bucket {} grants",
                drill.prefix, drill.bucket
            )));
        }
        Ok(drill)
    }

    fn drill_config(&self, drill: &DrillBucket, credentials: Credentials) -> S3Config {
        let mut c = self.config(&drill.bucket);
        c.credentials = Some(credentials);
        c.retention = Retention::BucketDefault;
        c
    }

    /// A store configuration for `bucket`: path-style, the test CA, COMPLIANCE for one hour.
    pub fn config(&self, bucket: &str) -> S3Config {
        let mut c = S3Config::new(self.endpoint.clone(), bucket);
        c.region = self.region.clone();
        c.path_style = Some(true);
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

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "export REDOVAULT_TEST_S3_ENDPOINT='https://127.0.0.1:7443'
export REDOVAULT_TEST_S3_CA='/x/ca.crt'
export REDOVAULT_TEST_S3_REGION='us-east-1'
export REDOVAULT_TEST_S3_KIND='ceph'
export AWS_ACCESS_KEY_ID='testkey'
export AWS_SECRET_ACCESS_KEY='testsecret1234'
export REDOVAULT_TEST_S3_BUCKET='rv-lock'
export REDOVAULT_TEST_S3_BUCKET_DEFAULT='rv-lock-default'
export REDOVAULT_TEST_S3_BUCKET_NOLOCK='rv-nolock'
";

    const DRILL: &str = "export REDOVAULT_TEST_S3_DRILL_BUCKET='redovault-drill'
export REDOVAULT_TEST_S3_DRILL_PREFIX='drill'
export REDOVAULT_TEST_S3_DBHOST_ACCESS_KEY_ID='dbhostkey'
export REDOVAULT_TEST_S3_DBHOST_SECRET_ACCESS_KEY='dbhostsecret1234'
export REDOVAULT_TEST_S3_VERIFIER_ACCESS_KEY_ID='verifierkey'
export REDOVAULT_TEST_S3_VERIFIER_SECRET_ACCESS_KEY='verifiersecret1234'
export REDOVAULT_TEST_S3_COLLECTOR_ACCESS_KEY_ID='collectorkey'
export REDOVAULT_TEST_S3_COLLECTOR_SECRET_ACCESS_KEY='collectorsecret1234'
";

    fn parse(text: &str) -> Result<TestServer, StoreError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env.sh");
        std::fs::write(&f, text).unwrap();
        TestServer::from_env_file(f.to_str().unwrap())
    }

    #[test]
    fn drill_bucket_configs_use_the_role_keys_and_the_bucket_default() {
        let t = parse(&format!("{ENV}{DRILL}")).unwrap();
        let d = t.drill.clone().unwrap();
        assert_eq!(
            (d.bucket.as_str(), d.prefix.as_str()),
            ("redovault-drill", "drill")
        );
        let c = t.dbhost_config("drill/run-1").unwrap();
        assert_eq!(c.bucket, "redovault-drill");
        assert_eq!(c.retention, Retention::BucketDefault);
        let creds = c.credentials.unwrap();
        assert_eq!(
            (creds.access_key.as_str(), creds.secret_key.as_str()),
            ("dbhostkey", "dbhostsecret1234")
        );
        let c = t.verifier_config("drill").unwrap();
        assert_eq!(c.credentials.unwrap().access_key, "verifierkey");
        let c = t.collector_config("drill").unwrap();
        assert_eq!(c.retention, Retention::BucketDefault);
        let creds = c.credentials.unwrap();
        assert_eq!(
            (creds.access_key.as_str(), creds.secret_key.as_str()),
            ("collectorkey", "collectorsecret1234")
        );
        // The collector adds `streams/` itself: a worm prefix below the drill prefix would put
        // its keys outside `drill/streams/`, where the policy refuses them.
        for p in ["drill/run-1", "drill/streams"] {
            let e = t.collector_config(p).unwrap_err().to_string();
            assert!(e.contains("worm prefix must be \"drill\""), "{p}: {e}");
        }
        // Outside the granted prefix: a clear error instead of a 403 later.
        for p in ["other", "drillx/a", ""] {
            let e = t.dbhost_config(p).unwrap_err().to_string();
            assert!(e.contains("outside \"drill\""), "{p}: {e}");
        }
    }

    #[test]
    fn no_drill_bucket_without_its_variables_and_none_half_given() {
        let t = parse(ENV).unwrap();
        assert!(t.drill.is_none());
        let e = t.dbhost_config("drill").unwrap_err().to_string();
        assert!(e.contains("has no drill bucket"), "{e}");
        let half = format!("{ENV}export REDOVAULT_TEST_S3_DRILL_BUCKET='redovault-drill'\n");
        let e = parse(&half).unwrap_err().to_string();
        assert!(e.contains("no REDOVAULT_TEST_S3_DRILL_PREFIX"), "{e}");
    }
}
