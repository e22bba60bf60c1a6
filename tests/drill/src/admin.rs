//! Operations the store itself never performs, to prove that the server refuses them:
//! deleting an object or a version, shortening or bypassing retention, writing over a key,
//! changing the bucket's policy, lock or versioning configuration.
//!
//! They live in this crate, not in the root library, so that no program of the database host
//! links them; they reach S3 only through the store's one generic door,
//! [`S3Store::send_signed`], and every one returns the server's answer ([`RawOutcome`])
//! instead of failing on a refusal.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use md5::{Digest as _, Md5};
use redovault::store::s3::{Method, S3Store, SignedRequest, format_iso};
use redovault::store::{LockMode, StoreError};

pub use redovault::store::s3::RawOutcome;

/// The refused requests on an [`S3Store`], with its credentials: `store.admin().delete_version(...)`.
pub trait AdminRequests {
    /// The refused requests on this store.
    fn admin(&self) -> Admin<'_>;
}

impl AdminRequests for S3Store {
    fn admin(&self) -> Admin<'_> {
        Admin(self)
    }
}

/// The requests the store never makes, on one store.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a>(&'a S3Store);

impl Admin<'_> {
    /// Tries to delete one version (optionally with the governance bypass header).
    pub async fn delete_version(
        &self,
        key: &str,
        version_id: &str,
        bypass_governance: bool,
    ) -> Result<RawOutcome, StoreError> {
        let mut req = SignedRequest::new(Method::DELETE, Some(key)).query("versionId", version_id);
        if bypass_governance {
            req = req.header("x-amz-bypass-governance-retention", "true");
        }
        self.0.send_signed("delete-version", req).await
    }

    /// Tries to delete `key` without a version id: on a versioned bucket, an attempt to hide
    /// the object behind a delete marker.
    pub async fn delete_object(&self, key: &str) -> Result<RawOutcome, StoreError> {
        self.0
            .send_signed(
                "delete-object",
                SignedRequest::new(Method::DELETE, Some(key)),
            )
            .await
    }

    /// Tries to set the retention of one version.
    pub async fn put_retention(
        &self,
        key: &str,
        version_id: &str,
        mode: LockMode,
        until: DateTime<Utc>,
    ) -> Result<RawOutcome, StoreError> {
        self.put_retention_with(key, version_id, mode, until, false)
            .await
    }

    /// Tries to set the retention of one version, optionally with the governance bypass header
    /// (`x-amz-bypass-governance-retention: true`).
    pub async fn put_retention_with(
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
        self.0.send_signed("put-retention", req).await
    }

    /// Tries to replace the bucket policy with `policy_json`.
    pub async fn put_bucket_policy(&self, policy_json: &str) -> Result<RawOutcome, StoreError> {
        let req = SignedRequest::new(Method::PUT, None)
            .query("policy", "")
            .header("content-type", "application/json")
            .body(Bytes::from(policy_json.to_string()));
        self.0.send_signed("put-bucket-policy", req).await
    }

    /// Tries to delete the bucket policy (and with it every Deny statement).
    pub async fn delete_bucket_policy(&self) -> Result<RawOutcome, StoreError> {
        self.0
            .send_signed(
                "delete-bucket-policy",
                SignedRequest::new(Method::DELETE, None).query("policy", ""),
            )
            .await
    }

    /// Tries to replace the bucket's Object Lock configuration: the default retention becomes
    /// `mode` for `days`, or none at all when `default` is None.
    pub async fn put_object_lock_configuration(
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
        self.0
            .send_signed("put-object-lock", xml_put(None, "object-lock", body))
            .await
    }

    /// Tries to suspend versioning (so that a later PUT would replace the null version).
    pub async fn suspend_versioning(&self) -> Result<RawOutcome, StoreError> {
        let body = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                    <Status>Suspended</Status></VersioningConfiguration>"
            .to_string();
        self.0
            .send_signed("put-versioning", xml_put(None, "versioning", body))
            .await
    }

    /// A plain PUT with no precondition and no lock headers: what an attacker with put rights
    /// would send to replace an archive.
    pub async fn put_plain(&self, key: &str, data: Bytes) -> Result<RawOutcome, StoreError> {
        let md5 = Md5::digest(&data);
        let req = SignedRequest::new(Method::PUT, Some(key))
            .header("content-md5", base64_std(&md5))
            .body(data);
        self.0.send_signed("put-plain", req).await
    }
}

/// A PUT of an XML subresource document, with the Content-MD5 that AWS requires on them.
fn xml_put(key: Option<&str>, subresource: &str, body: String) -> SignedRequest {
    let md5 = Md5::digest(body.as_bytes());
    SignedRequest::new(Method::PUT, key)
        .query(subresource, "")
        .header("content-md5", base64_std(&md5))
        .header("content-type", "application/xml")
        .body(Bytes::from(body))
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
