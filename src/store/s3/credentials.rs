//! Where the S3 credentials come from: the order the AWS CLI and SDKs use.
//!
//! ```text
//! 1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN    static
//! 2. web-identity token file: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN          temporary
//!    (a Kubernetes service account) ──STS AssumeRoleWithWebIdentity──► keys
//! 3. shared files: AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE                  static
//!    (default ~/.aws/credentials, ~/.aws/config); profile = `profile` setting,
//!    else AWS_PROFILE, else `default`; a profile may name a token file and role   (temporary)
//! 4. only with `credentials = "instance"`: container endpoint                     temporary
//!    (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI) or IMDSv2
//!    (PUT a session token, GET the role, GET its keys)
//! ```
//!
//! Invariants: the static steps are resolved when the store is built, so a missing or broken
//! source is reported before any request; temporary credentials are fetched on first use
//! and again [`REFRESH_BEFORE`] before they expire; the metadata step is opt-in and its
//! endpoint a setting.
//!
//! Why our own: `aws-config` brings the smithy HTTP stack (hyper 1 with its own connector
//! and, by default, aws-lc's C build) beside the store's reqwest client; `reqsign`'s AWS
//! loader ends with the instance metadata service unless `AWS_EC2_METADATA_DISABLED` is set
//! (opt-out, where we need opt-in), and is being rewritten around `reqsign-core`. Here the
//! whole chain is a few requests on reqwest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use tokio::sync::Mutex;
use url::Url;

use super::sigv4::Credentials;
use super::xml;
use crate::store::StoreError;

/// Temporary credentials are fetched again this long before they expire.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// The default STS endpoint (AssumeRoleWithWebIdentity needs no signature).
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.amazonaws.com";

/// The instance metadata service's address: only ever asked with `credentials = "instance"`.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://169.254.169.254";

/// The ECS container credentials host for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const CONTAINER_HOST: &str = "http://169.254.170.2";

/// Largest answer accepted from STS or a metadata service (they are untrusted bytes).
const MAX_ANSWER: usize = 64 * 1024;

/// How credentials are looked up (`[store]` `credentials`, `profile`, `sts_endpoint`,
/// `metadata_endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainConfig {
    /// Profile of the shared files; None: `AWS_PROFILE`, else `default`.
    pub profile: Option<String>,
    /// STS endpoint for web identity; None: `AWS_ENDPOINT_URL_STS`, else
    /// [`DEFAULT_STS_ENDPOINT`].
    pub sts_endpoint: Option<Url>,
    /// Some: end the chain with the container / instance metadata service at this endpoint
    /// (IMDSv2). None: never ask a metadata service.
    pub instance_metadata: Option<Url>,
}

/// Where the credentials of a store come from, once resolved.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Fixed keys (configuration, environment or a profile).
    Static(Credentials),
    /// A web-identity token exchanged at STS.
    WebIdentity {
        token_file: PathBuf,
        role_arn: String,
        session_name: String,
        sts: Url,
    },
    /// The container credentials endpoint.
    Container { uri: Url, auth: Option<String> },
    /// The instance metadata service, IMDSv2.
    Imds { endpoint: Url },
}

/// Credentials in force and when they stop working.
#[derive(Debug, Clone)]
struct Loaded {
    creds: Credentials,
    expires: Option<DateTime<Utc>>,
}

/// The store's credentials: a resolved [`Source`] and the current keys.
#[derive(Debug)]
pub(crate) struct Provider {
    source: Source,
    /// Where they come from, for messages ("environment", "profile prod in /root/.aws/...").
    origin: String,
    http: reqwest::Client,
    current: Mutex<Option<Loaded>>,
    /// Fetches from STS or a metadata service so far (for tests and logs).
    fetches: std::sync::atomic::AtomicU64,
}

/// The environment, as a map (tests pass their own).
pub(crate) type Env = HashMap<String, String>;

/// The process environment.
pub(crate) fn process_env() -> Env {
    std::env::vars().filter(|(_, v)| !v.is_empty()).collect()
}

fn cfg_err(origin: impl Into<String>, detail: impl Into<String>) -> StoreError {
    StoreError::Credentials {
        origin: origin.into(),
        detail: detail.into(),
    }
}

/// Resolves the chain's first source that is present, without any request.
pub(crate) fn resolve(chain: &ChainConfig, env: &Env) -> Result<(Source, String), StoreError> {
    if let (Some(a), Some(s)) = (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        let creds = Credentials {
            access_key: a.clone(),
            secret_key: s.clone(),
            session_token: env.get("AWS_SESSION_TOKEN").cloned(),
        };
        return Ok((
            Source::Static(creds),
            "the environment (AWS_ACCESS_KEY_ID)".into(),
        ));
    }
    let sts = sts_endpoint(chain, env)?;
    if let Some(token_file) = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") {
        let role_arn = env.get("AWS_ROLE_ARN").cloned().ok_or_else(|| {
            cfg_err(
                format!("the web identity token file {token_file}"),
                "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not: set the role to assume",
            )
        })?;
        let origin = format!("the web identity token file {token_file} (role {role_arn})");
        return Ok((
            Source::WebIdentity {
                token_file: PathBuf::from(token_file),
                role_arn,
                session_name: session_name(env),
                sts,
            },
            origin,
        ));
    }
    if let Some(found) = from_profile(chain, env, &sts)? {
        return Ok(found);
    }
    if let Some(endpoint) = &chain.instance_metadata {
        return Ok(metadata_source(endpoint, env));
    }
    Err(cfg_err(
        "the AWS credential chain",
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_WEB_IDENTITY_TOKEN_FILE and \
         AWS_ROLE_ARN, or a profile in the shared credentials file (store.profile, AWS_PROFILE, \
         AWS_SHARED_CREDENTIALS_FILE), or store.credentials = \"instance\" on a cloud instance",
    ))
}

fn session_name(env: &Env) -> String {
    env.get("AWS_ROLE_SESSION_NAME")
        .cloned()
        .unwrap_or_else(|| "redovault".to_string())
}

fn sts_endpoint(chain: &ChainConfig, env: &Env) -> Result<Url, StoreError> {
    if let Some(u) = &chain.sts_endpoint {
        return Ok(u.clone());
    }
    let raw = env
        .get("AWS_ENDPOINT_URL_STS")
        .map(String::as_str)
        .unwrap_or(DEFAULT_STS_ENDPOINT);
    Url::parse(raw).map_err(|e| {
        cfg_err(
            "AWS_ENDPOINT_URL_STS",
            format!(
                "{raw:?} is not a URL ({e}): fix AWS_ENDPOINT_URL_STS or set store.sts_endpoint"
            ),
        )
    })
}

/// The container endpoint when the environment names one, else IMDSv2 at `endpoint`
/// (`AWS_EC2_METADATA_SERVICE_ENDPOINT` is not read: the endpoint is the configuration's).
fn metadata_source(endpoint: &Url, env: &Env) -> (Source, String) {
    let auth = env
        .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .cloned()
        .or_else(|| {
            env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                .and_then(|p| std::fs::read_to_string(p).ok())
                .map(|t| t.trim().to_string())
        });
    let container = env
        .get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .and_then(|u| Url::parse(u).ok())
        .or_else(|| {
            env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                .and_then(|r| Url::parse(&format!("{CONTAINER_HOST}{r}")).ok())
        });
    match container {
        Some(uri) => {
            let origin = format!("the container credentials endpoint {uri}");
            (Source::Container { uri, auth }, origin)
        }
        None => (
            Source::Imds {
                endpoint: endpoint.clone(),
            },
            format!(
                "the instance metadata service at {endpoint} (store.credentials = \"instance\")"
            ),
        ),
    }
}

/// The shared files' paths: the environment's, else under `$HOME/.aws`.
fn shared_files(env: &Env) -> (Option<PathBuf>, Option<PathBuf>) {
    let home = env.get("HOME").map(PathBuf::from);
    let pick = |var: &str, name: &str| {
        env.get(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    (
        pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        pick("AWS_CONFIG_FILE", "config"),
    )
}

/// The profile's keys from the shared files (the credentials file wins over the config file).
fn from_profile(
    chain: &ChainConfig,
    env: &Env,
    sts: &Url,
) -> Result<Option<(Source, String)>, StoreError> {
    let explicit = chain
        .profile
        .clone()
        .or_else(|| env.get("AWS_PROFILE").cloned());
    let name = explicit.clone().unwrap_or_else(|| "default".to_string());
    let (cred_path, conf_path) = shared_files(env);
    let mut merged: HashMap<String, String> = HashMap::new();
    let mut found_in: Vec<String> = Vec::new();
    let config_section = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    for (path, section) in [(&conf_path, &config_section), (&cred_path, &name)] {
        let Some(path) = path else { continue };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(cfg_err(
                    format!("profile {name}"),
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        if let Some(keys) = ini_section(&text, section) {
            found_in.push(path.display().to_string());
            merged.extend(keys);
        }
    }
    let origin = format!("profile {name} in {}", found_in.join(" and "));
    match (
        merged.get("aws_access_key_id"),
        merged.get("aws_secret_access_key"),
        merged.get("web_identity_token_file"),
        merged.get("role_arn"),
    ) {
        (Some(a), Some(s), _, _) => Ok(Some((
            Source::Static(Credentials {
                access_key: a.clone(),
                secret_key: s.clone(),
                session_token: merged.get("aws_session_token").cloned(),
            }),
            origin,
        ))),
        (_, _, Some(token_file), Some(role_arn)) => Ok(Some((
            Source::WebIdentity {
                token_file: PathBuf::from(token_file),
                role_arn: role_arn.clone(),
                session_name: merged
                    .get("role_session_name")
                    .cloned()
                    .unwrap_or_else(|| session_name(env)),
                sts: sts.clone(),
            },
            format!("{origin} (web identity, role {role_arn})"),
        ))),
        _ if explicit.is_none() && found_in.is_empty() => Ok(None),
        _ if found_in.is_empty() => Err(cfg_err(
            format!("profile {name}"),
            format!(
                "no [{name}] in {} nor [{config_section}] in {}: fix store.profile / AWS_PROFILE \
                 or AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE",
                show(&cred_path),
                show(&conf_path)
            ),
        )),
        _ if explicit.is_none() => Ok(None),
        _ => Err(cfg_err(
            origin,
            "the profile has neither aws_access_key_id and aws_secret_access_key nor \
             web_identity_token_file and role_arn (other profile kinds are not supported)",
        )),
    }
}

fn show(p: &Option<PathBuf>) -> String {
    p.as_deref()
        .map(Path::display)
        .map(|d| d.to_string())
        .unwrap_or_else(|| "(no HOME)".to_string())
}

/// The `key = value` pairs of `[section]` in an INI text (AWS's shared-file format: `#` and
/// `;` comments, keys case-insensitive), or None when there is no such section.
pub(crate) fn ini_section(text: &str, section: &str) -> Option<HashMap<String, String>> {
    let mut out: Option<HashMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = name == section;
            if inside {
                out.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"');
            if let Some(map) = out.as_mut() {
                map.insert(k.trim().to_ascii_lowercase(), v.to_string());
            }
        }
    }
    out
}

impl Provider {
    /// A provider for `source`; `http` is used for STS and metadata requests (not the S3
    /// client, which may be https-only).
    pub(crate) fn new(source: Source, origin: String, http: reqwest::Client) -> Provider {
        Provider {
            source,
            origin,
            http,
            current: Mutex::new(None),
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Where the credentials come from, for messages.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// Requests made to STS or a metadata service so far.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Credentials valid for at least [`REFRESH_BEFORE`] (fetched again if not).
    pub(crate) async fn get(&self) -> Result<Credentials, StoreError> {
        if let Source::Static(c) = &self.source {
            return Ok(c.clone());
        }
        let mut cur = self.current.lock().await;
        let margin = chrono::Duration::from_std(REFRESH_BEFORE).unwrap_or_default();
        if let Some(l) = cur.as_ref()
            && l.expires.is_none_or(|t| t - margin > Utc::now())
        {
            return Ok(l.creds.clone());
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let loaded = self.fetch().await?;
        tracing::info!(
            origin = %self.origin,
            expires = ?loaded.expires,
            "temporary S3 credentials fetched"
        );
        let creds = loaded.creds.clone();
        *cur = Some(loaded);
        Ok(creds)
    }

    /// Forgets the current temporary credentials (the server called them expired).
    pub(crate) async fn invalidate(&self) {
        *self.current.lock().await = None;
    }

    /// True when the credentials are temporary (fetched, so worth fetching again).
    pub(crate) fn refreshable(&self) -> bool {
        !matches!(self.source, Source::Static(_))
    }

    async fn fetch(&self) -> Result<Loaded, StoreError> {
        match &self.source {
            Source::Static(c) => Ok(Loaded {
                creds: c.clone(),
                expires: None,
            }),
            Source::WebIdentity {
                token_file,
                role_arn,
                session_name,
                sts,
            } => {
                self.web_identity(token_file, role_arn, session_name, sts)
                    .await
            }
            Source::Container { uri, auth } => {
                let mut req = self.http.get(uri.clone());
                if let Some(a) = auth {
                    req = req.header("authorization", a);
                }
                let body = self.answer(uri.as_str(), req).await?;
                self.metadata_json(&body)
            }
            Source::Imds { endpoint } => self.imds(endpoint).await,
        }
    }

    /// AssumeRoleWithWebIdentity at STS (unsigned: the token is the proof).
    async fn web_identity(
        &self,
        token_file: &Path,
        role_arn: &str,
        session_name: &str,
        sts: &Url,
    ) -> Result<Loaded, StoreError> {
        let token = tokio::fs::read_to_string(token_file).await.map_err(|e| {
            cfg_err(
                self.origin.clone(),
                format!(
                    "cannot read the token file {}: {e} (AWS_WEB_IDENTITY_TOKEN_FILE)",
                    token_file.display()
                ),
            )
        })?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRoleWithWebIdentity")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", role_arn)
            .append_pair("RoleSessionName", session_name)
            .append_pair("WebIdentityToken", token.trim())
            .finish();
        let req = self
            .http
            .post(sts.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        let text = String::from_utf8_lossy(&self.answer(sts.as_str(), req).await?).into_owned();
        let get = |tag: &str| xml::first_text(&text, tag).filter(|v| !v.is_empty());
        match (
            get("AccessKeyId"),
            get("SecretAccessKey"),
            get("SessionToken"),
        ) {
            (Some(access_key), Some(secret_key), session_token) => Ok(Loaded {
                creds: Credentials {
                    access_key,
                    secret_key,
                    session_token,
                },
                expires: get("Expiration").as_deref().and_then(super::parse_iso),
            }),
            _ => Err(cfg_err(
                self.origin.clone(),
                format!("STS at {sts} answered without credentials"),
            )),
        }
    }

    /// IMDSv2: a session token first (PUT), then the role name, then its credentials.
    async fn imds(&self, endpoint: &Url) -> Result<Loaded, StoreError> {
        let base = endpoint.as_str().trim_end_matches('/');
        let token_url = format!("{base}/latest/api/token");
        let token = self
            .answer(
                &token_url,
                self.http
                    .request(Method::PUT, &token_url)
                    .header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
            )
            .await?;
        let token = String::from_utf8_lossy(&token).trim().to_string();
        let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
        let roles = self
            .answer(
                &roles_url,
                self.http
                    .get(&roles_url)
                    .header("x-aws-ec2-metadata-token", &token),
            )
            .await?;
        let roles = String::from_utf8_lossy(&roles).into_owned();
        let role = roles.lines().map(str::trim).find(|l| !l.is_empty());
        let Some(role) = role else {
            return Err(cfg_err(
                self.origin.clone(),
                "the instance has no IAM role attached: attach one, or use another source",
            ));
        };
        let creds_url = format!("{roles_url}{role}");
        let body = self
            .answer(
                &creds_url,
                self.http
                    .get(&creds_url)
                    .header("x-aws-ec2-metadata-token", &token),
            )
            .await?;
        self.metadata_json(&body)
    }

    /// The JSON a metadata service answers with: AccessKeyId, SecretAccessKey, Token,
    /// Expiration.
    fn metadata_json(&self, body: &[u8]) -> Result<Loaded, StoreError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            access_key_id: String,
            secret_access_key: String,
            token: Option<String>,
            expiration: Option<String>,
        }
        let a: Answer = serde_json::from_slice(body).map_err(|e| {
            cfg_err(
                self.origin.clone(),
                format!("the metadata service answered something else than credentials: {e}"),
            )
        })?;
        Ok(Loaded {
            creds: Credentials {
                access_key: a.access_key_id,
                secret_key: a.secret_access_key,
                session_token: a.token.filter(|t| !t.is_empty()),
            },
            expires: a.expiration.as_deref().and_then(super::parse_iso),
        })
    }

    /// Sends `req` and returns its body (at most [`MAX_ANSWER`] bytes). A service that
    /// cannot be reached or answers 5xx is [`StoreError::Unreachable`] (transient); any other
    /// refusal is a credentials error naming the service and its answer.
    async fn answer(&self, url: &str, req: reqwest::RequestBuilder) -> Result<Vec<u8>, StoreError> {
        let unreachable = |detail: String| StoreError::Unreachable {
            endpoint: url.to_string(),
            detail,
        };
        let mut resp = req.send().await.map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(e.to_string()))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(cfg_err(
                    self.origin.clone(),
                    format!("{url} answered more than {MAX_ANSWER} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_server_error() {
            return Err(unreachable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let code = xml::first_text(&text, "Code").unwrap_or_default();
            let message = xml::first_text(&text, "Message").unwrap_or_default();
            return Err(cfg_err(
                self.origin.clone(),
                format!("{url} refused: HTTP {status} {code} {message}")
                    .trim_end()
                    .to_string(),
            ));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ini_sections() {
        let t = "# c\n[default]\naws_access_key_id = A\n[profile  prod]\nAWS_Secret_Access_Key=\"S\"\n; x\n";
        assert_eq!(ini_section(t, "default").unwrap()["aws_access_key_id"], "A");
        assert_eq!(
            ini_section(t, "profile prod").unwrap()["aws_secret_access_key"],
            "S"
        );
        assert!(ini_section(t, "other").is_none());
        assert!(ini_section("[x\nk=v", "x").is_none());
    }

    #[test]
    fn environment_comes_first() {
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "A"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_ROLE_ARN", "arn:r"),
        ]);
        let (s, origin) = resolve(&ChainConfig::default(), &e).unwrap();
        assert!(matches!(s, Source::Static(c) if c.access_key == "A"));
        assert!(origin.contains("environment"));
    }

    #[test]
    fn web_identity_before_profile_and_needs_a_role() {
        let dir = tempfile::tempdir().unwrap();
        let cred = dir.path().join("credentials");
        std::fs::write(
            &cred,
            "[default]\naws_access_key_id=P\naws_secret_access_key=Q\n",
        )
        .unwrap();
        let c = cred.to_str().unwrap();
        let e = env(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_ROLE_ARN", "arn:r"),
            ("AWS_SHARED_CREDENTIALS_FILE", c),
        ]);
        let (s, _) = resolve(&ChainConfig::default(), &e).unwrap();
        assert!(matches!(s, Source::WebIdentity { role_arn, .. } if role_arn == "arn:r"));
        let e = env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")]);
        let err = resolve(&ChainConfig::default(), &e)
            .unwrap_err()
            .to_string();
        assert!(err.contains("AWS_ROLE_ARN"), "{err}");
    }

    #[test]
    fn profile_setting_wins_over_aws_profile() {
        let dir = tempfile::tempdir().unwrap();
        let cred = dir.path().join("credentials");
        std::fs::write(
            &cred,
            "[a]\naws_access_key_id=A\naws_secret_access_key=S\n\
             [b]\naws_access_key_id=B\naws_secret_access_key=T\naws_session_token=X\n",
        )
        .unwrap();
        let e = env(&[
            ("AWS_SHARED_CREDENTIALS_FILE", cred.to_str().unwrap()),
            ("AWS_CONFIG_FILE", "/nonexistent/config"),
            ("AWS_PROFILE", "a"),
        ]);
        let (s, _) = resolve(&ChainConfig::default(), &e).unwrap();
        assert!(matches!(s, Source::Static(c) if c.access_key == "A"));
        let chain = ChainConfig {
            profile: Some("b".into()),
            ..ChainConfig::default()
        };
        let (s, origin) = resolve(&chain, &e).unwrap();
        assert!(matches!(s, Source::Static(c) if c.session_token.as_deref() == Some("X")));
        assert!(origin.starts_with("profile b in "), "{origin}");
        let chain = ChainConfig {
            profile: Some("missing".into()),
            ..ChainConfig::default()
        };
        let err = resolve(&chain, &e).unwrap_err().to_string();
        assert!(
            err.contains("no [missing]") && err.contains("store.profile"),
            "{err}"
        );
    }

    #[test]
    fn config_file_profile_and_web_identity_profile() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("config");
        std::fs::write(
            &conf,
            "[profile k8s]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /tok\n",
        )
        .unwrap();
        let e = env(&[
            ("AWS_CONFIG_FILE", conf.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/c"),
            ("AWS_PROFILE", "k8s"),
        ]);
        let (s, _) = resolve(&ChainConfig::default(), &e).unwrap();
        assert!(
            matches!(s, Source::WebIdentity { token_file, .. } if token_file == Path::new("/tok"))
        );
    }

    #[test]
    fn metadata_only_when_asked() {
        let e = env(&[("HOME", "/nonexistent")]);
        let err = resolve(&ChainConfig::default(), &e).unwrap_err();
        assert!(
            err.to_string().contains("store.credentials = \"instance\""),
            "{err}"
        );
        let chain = ChainConfig {
            instance_metadata: Some(Url::parse("http://127.0.0.1:9").unwrap()),
            ..ChainConfig::default()
        };
        let (s, _) = resolve(&chain, &e).unwrap();
        assert!(matches!(s, Source::Imds { endpoint } if endpoint.host_str() == Some("127.0.0.1")));
    }
}
