//! The attacker's attempts on WORM with the database host's own credentials: delete (a
//! delete marker), delete a version (with and without the governance bypass), shorten the
//! retention, and overwrite. Each must leave the locked object as it was. The requests are
//! this crate's ([`crate::admin`]); no program of redovault links them.

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::attack::Action;
use super::{DrillError, S3Target};
use crate::admin::{AdminRequests as _, RawOutcome};
use redovault::store::hashing::for_each_chunk;
use redovault::store::s3::S3Store;
use redovault::store::{ArchiveStore, LockMode, Retention, StoreError};

/// Runs the attempts on the first of `keys` (archived logs) and on the first sealed
/// manifest segment under `prefix`.
pub fn attempts(t: &S3Target, prefix: &str, keys: &[String]) -> Result<Vec<Action>, DrillError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DrillError::Setup(format!("async runtime: {e}")))?;
    rt.block_on(run(t, prefix, keys))
        .map_err(|e| DrillError::Step(format!("attempts on WORM: {e}")))
}

fn store_for(t: &S3Target) -> Result<S3Store, StoreError> {
    let mut c = redovault::store::s3::S3Config::new(t.endpoint.clone(), &t.bucket);
    c.region = t.region.clone();
    c.path_style = Some(true);
    c.ca_file = Some(t.ca.clone());
    c.credentials = Some(t.dbhost.clone());
    c.retention = Retention::BucketDefault;
    S3Store::new(c)
}

fn refused(what: String, r: &RawOutcome) -> Action {
    let ok = !(200..300).contains(&r.status);
    Action {
        action: what,
        outcome: if ok {
            format!("HTTP {} {}", r.status, r.code)
        } else {
            format!("HTTP {}: ACCEPTED by the server", r.status)
        },
        refused: Some(ok),
    }
}

async fn sha_of_version(s: &S3Store, key: &str, v: Option<&str>) -> Result<String, StoreError> {
    let mut body = s.get(key, None, v).await?;
    let mut h = Sha256::new();
    for_each_chunk(&mut body, |b| h.update(b))
        .await
        .map_err(|e| StoreError::io(format!("read {key}"), e))?;
    Ok(hex::encode(h.finalize()))
}

async fn run(t: &S3Target, prefix: &str, keys: &[String]) -> Result<Vec<Action>, StoreError> {
    let s = store_for(t)?;
    let mut out = Vec::new();
    let mut targets: Vec<(String, &str)> = keys
        .first()
        .map(|k| (k.clone(), "an archived log"))
        .into_iter()
        .collect();
    if let Some(seg) = s
        .list(&format!("{prefix}/manifest/"))
        .await?
        .into_iter()
        .next()
    {
        targets.push((seg.key, "a sealed manifest segment"));
    }
    for (key, what) in targets {
        let Some(info) = s.head(&key, None).await? else {
            out.push(Action {
                action: format!("find {what} ({key})"),
                outcome: "not in WORM".into(),
                refused: Some(false),
            });
            continue;
        };
        let version = info.version_id.clone().unwrap_or_default();
        let before = sha_of_version(&s, &key, Some(&version)).await?;
        let name = key.rsplit('/').next().unwrap_or(&key).to_string();
        let r = s.admin().delete_object(&key).await?;
        out.push(refused(format!("DELETE {what} {name}"), &r));
        let r = s.admin().delete_version(&key, &version, false).await?;
        out.push(refused(format!("DELETE version {version} of {what}"), &r));
        let r = s.admin().delete_version(&key, &version, true).await?;
        out.push(refused(
            format!("DELETE version of {what} with x-amz-bypass-governance-retention"),
            &r,
        ));
        let soon = Utc::now() + chrono::Duration::seconds(60);
        let r = s
            .admin()
            .put_retention(&key, &version, LockMode::Compliance, soon)
            .await?;
        out.push(refused(
            format!("shorten the retention of {what} to 60 s (COMPLIANCE)"),
            &r,
        ));
        let r = s
            .admin()
            .put_retention(&key, &version, LockMode::Governance, soon)
            .await?;
        out.push(refused(
            format!("weaken the lock of {what} to GOVERNANCE, 60 s"),
            &r,
        ));
        let r = s
            .admin()
            .put_plain(&key, bytes::Bytes::from_static(b"wiped by the attacker\n"))
            .await?;
        // A version that cannot be read any more is not intact either.
        let after = sha_of_version(&s, &key, Some(&version)).await.ok();
        let intact = after.as_ref() == Some(&before);
        out.push(Action {
            action: format!("overwrite {what} (plain PUT, same key)"),
            outcome: match ((200..300).contains(&r.status), intact) {
                (false, true) => format!("HTTP {} {}", r.status, r.code),
                (true, true) => format!(
                    "stored as a new version {}; the locked original {version} is unchanged \
                     (restore reads the recorded version, the audit reports object_replaced)",
                    r.version_id.as_deref().unwrap_or("?")
                ),
                (_, false) => "the original version CHANGED or disappeared".to_string(),
            },
            refused: Some(intact),
        });
    }
    Ok(out)
}
