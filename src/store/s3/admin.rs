//! Operations the store itself never performs, for tests that prove the server refuses them:
//! deleting a version, shortening retention, writing over a key. Compiled only with the
//! `test-util` feature; production credentials should not even allow them.

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

    /// Tries to delete the object without a version id (a delete marker on a versioned bucket).
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
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode>\
             <RetainUntilDate>{}</RetainUntilDate></Retention>",
            mode.as_str(),
            format_iso(until)
        );
        let md5 = Md5::digest(body.as_bytes());
        let req = Req::new(Method::PUT, Some(key))
            .query("retention", "")
            .query("versionId", version_id)
            .header("content-md5", base64_std(&md5))
            .body(Bytes::from(body), None);
        self.raw("put-retention", req).await
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

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
