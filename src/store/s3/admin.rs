//! Operations the store itself never performs, to prove that the server refuses them:
//! deleting an object or a version, shortening or bypassing retention, writing over a key,
//! changing the bucket's policy, lock or versioning configuration.
//!
//! The store never makes these calls itself: no code path of [`ArchiveStore`] or of the
//! watcher reaches this module. They are compiled into every build (not only with
//! `test-util`) because the release binary's attack drill uses them to show that the database
//! host's own credentials are refused. They are the only S3 requests outside the store API,
//! and every one returns the server's answer ([`RawOutcome`]) instead of failing on a refusal.
//!
//! [`ArchiveStore`]: crate::store::ArchiveStore

use bytes::Bytes;
use chrono::{DateTime, Utc};
use md5::{Digest as _, Md5};
use reqwest::Method;

use super::S3Store;
use super::http::{Req, format_iso};
use super::xml;
use crate::store::{LockMode, StoreError};

/// Status and S3 error code of a raw request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOutcome {
    /// HTTP status.
    pub status: u16,
    /// S3 error code (empty on success).
    pub code: String,
    /// `x-amz-version-id` of the response, if any.
    pub version_id: Option<String>,
}

impl S3Store {
    async fn raw(&self, op: &'static str, req: Req) -> Result<RawOutcome, StoreError> {
        let r = self.inner.execute(op, &req).await?;
        let code = if r.status.is_success() {
            String::new()
        } else {
            r.error_code().0
        };
        Ok(RawOutcome {
            status: r.status.as_u16(),
            code,
            version_id: r.header("x-amz-version-id").map(str::to_string),
        })
    }

    /// Tries to delete one version (optionally with the governance bypass header).
    pub async fn admin_delete_version(
        &self,
        key: &str,
        version_id: &str,
        bypass_governance: bool,
    ) -> Result<RawOutcome, StoreError> {
        let mut req = Req::new(Method::DELETE, Some(key)).query("versionId", version_id);
        if bypass_governance {
            req = req.header("x-amz-bypass-governance-retention", "true");
        }
        self.raw("delete-version", req).await
    }

    /// Tries to delete `key` without a version id: on a versioned bucket, an attempt to hide
    /// the object behind a delete marker.
    pub async fn admin_delete_object(&self, key: &str) -> Result<RawOutcome, StoreError> {
        self.raw("delete-object", Req::new(Method::DELETE, Some(key)))
            .await
    }

    /// Tries to set the retention of one version.
    pub async fn admin_put_retention(
        &self,
        key: &str,
        version_id: &str,
        mode: LockMode,
        until: DateTime<Utc>,
    ) -> Result<RawOutcome, StoreError> {
        self.admin_put_retention_with(key, version_id, mode, until, false)
            .await
    }

    /// Tries to set the retention of one version, optionally with the governance bypass header
    /// (`x-amz-bypass-governance-retention: true`).
    pub async fn admin_put_retention_with(
        &self,
        key: &str,
        version_id: &str,
        mode: LockMode,
        until: DateTime<Utc>,
        bypass_governance: bool,
    ) -> Result<RawOutcome, StoreError> {
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode>\
             <RetainUntilDate>{}</RetainUntilDate></Retention>",
            mode.as_str(),
            format_iso(until)
        );
        let mut req = xml_put(Some(key), "retention", body).query("versionId", version_id);
        if bypass_governance {
            req = req.header("x-amz-bypass-governance-retention", "true");
        }
        self.raw("put-retention", req).await
    }

    /// Tries to replace the bucket policy with `policy_json`.
    pub async fn admin_put_bucket_policy(
        &self,
        policy_json: &str,
    ) -> Result<RawOutcome, StoreError> {
        let req = Req::new(Method::PUT, None)
            .query("policy", "")
            .header("content-type", "application/json")
            .body(Bytes::from(policy_json.to_string()), None);
        self.raw("put-bucket-policy", req).await
    }

    /// Tries to delete the bucket policy (and with it every Deny statement).
    pub async fn admin_delete_bucket_policy(&self) -> Result<RawOutcome, StoreError> {
        self.raw(
            "delete-bucket-policy",
            Req::new(Method::DELETE, None).query("policy", ""),
        )
        .await
    }

    /// Tries to replace the bucket's Object Lock configuration: the default retention becomes
    /// `mode` for `days`, or none at all when `default` is None.
    pub async fn admin_put_object_lock_configuration(
        &self,
        default: Option<(LockMode, u32)>,
    ) -> Result<RawOutcome, StoreError> {
        let rule = default
            .map(|(mode, days)| {
                format!(
                    "<Rule><DefaultRetention><Mode>{}</Mode><Days>{days}</Days>\
                     </DefaultRetention></Rule>",
                    mode.as_str()
                )
            })
            .unwrap_or_default();
        let body = format!(
            "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <ObjectLockEnabled>Enabled</ObjectLockEnabled>{rule}</ObjectLockConfiguration>"
        );
        self.raw("put-object-lock", xml_put(None, "object-lock", body))
            .await
    }

    /// Tries to suspend versioning (so that a later PUT would replace the null version).
    pub async fn admin_suspend_versioning(&self) -> Result<RawOutcome, StoreError> {
        let body = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                    <Status>Suspended</Status></VersioningConfiguration>"
            .to_string();
        self.raw("put-versioning", xml_put(None, "versioning", body))
            .await
    }

    /// A plain PUT with no precondition and no lock headers: what an attacker with put rights
    /// would send to replace an archive.
    pub async fn admin_put_plain(&self, key: &str, data: Bytes) -> Result<RawOutcome, StoreError> {
        let md5 = Md5::digest(&data);
        let req = Req::new(Method::PUT, Some(key))
            .header("content-md5", base64_std(&md5))
            .body(data, None);
        self.raw("put-plain", req).await
    }

    /// Version ids of `key`, newest first (delete markers excluded).
    pub async fn admin_list_versions(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let req = Req::new(Method::GET, None)
            .query("versions", "")
            .query("prefix", key);
        let r = self.inner.execute("list-versions", &req).await?;
        if !r.status.is_success() {
            return Err(r.permanent("list-versions", self.target(key)));
        }
        Ok(xml::records(&r.text(), "Version", &["Key", "VersionId"])
            .into_iter()
            .filter(|v| v.child("Key") == Some(key))
            .filter_map(|v| v.child("VersionId").map(str::to_string))
            .collect())
    }
}

/// A PUT of an XML subresource document, with the Content-MD5 that AWS requires on them.
fn xml_put(key: Option<&str>, subresource: &str, body: String) -> Req {
    let md5 = Md5::digest(body.as_bytes());
    Req::new(Method::PUT, key)
        .query(subresource, "")
        .header("content-md5", base64_std(&md5))
        .header("content-type", "application/xml")
        .body(Bytes::from(body), None)
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
