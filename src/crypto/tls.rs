//! TLS 1.3 with mutual certificate authentication: the link's default and production mode.
//!
//! ```text
//! extractor: cert + key + server CA (PEM) ─► client_config ─┐ TLS 1.3 only (rustls, ring),
//! collector: cert + key + client CA (PEM) ─► server_config ─┘ ALPN required on both sides
//!   ─► PeerIdentity (peer certificate's subject CN, DNS SANs) ─► matched with the Hello's
//!      extractor id
//! PKI: generate_pki (tests, quickstart) | deploy/link-certs.sh with openssl (production)
//! ```
//!
//! Invariants: the collector requires a client certificate chaining to its client CA
//! (`WebPkiClientVerifier`, no anonymous clients); the extractor checks the collector's
//! certificate against its server CA and the configured server name; without the ALPN
//! protocol [`ALPN`] a stray HTTPS client is refused at the handshake.
//!
//! Entry points: [`server_config`], [`client_config`], [`PeerIdentity`], [`generate_pki`].

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};

/// Accepts TLS on a TCP stream with a [`ServerConfig`] (the console's HTTPS).
pub use tokio_rustls::TlsAcceptor;
/// The server side of a TLS stream (what [`TlsServer::accept`] returns).
pub use tokio_rustls::server::TlsStream as ServerTlsStream;

/// The client side of a TLS stream (what [`TlsClient::connect`] returns).
pub use tokio_rustls::client::TlsStream as ClientTlsStream;

/// ALPN protocol id of the link; both sides require it.
pub const ALPN: &[u8] = b"redovault-link/1";

/// A TLS configuration that cannot be built (a file missing or unusable, a key that does
/// not match its certificate). Every variant names the file(s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file cannot be read.
    #[error("read {what} {path}: {source}")]
    Read {
        /// What the file should hold ("certificate", "private key", "CA certificate").
        what: &'static str,
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A PEM file holds no usable item, or a malformed one.
    #[error("{what} {path}: {detail}")]
    Pem {
        /// What the file should hold.
        what: &'static str,
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The certificate and key cannot be used together.
    #[error("certificate {cert} with key {key}: {detail}")]
    Key {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What is wrong (for example "private key does not match the certificate").
        detail: String,
    },
    /// The CA file cannot be used as a trust anchor.
    #[error("CA certificate {path}: {detail}")]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A generated file cannot be written.
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Certificate generation failed.
    #[error("generate {what}: {detail}")]
    Generate {
        /// Which certificate.
        what: &'static str,
        /// The generator's error.
        detail: String,
    },
}

/// Why a TLS session failed, in classes a collector counts (authentication failures) and
/// logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsFailure {
    /// The client sent no certificate.
    NoCertificate,
    /// The peer's certificate does not chain to the trusted CA.
    UntrustedCertificate,
    /// The peer's certificate is invalid otherwise (expired, wrong name, wrong usage...).
    InvalidCertificate,
    /// The peer refused our certificate or the handshake (a fatal alert received).
    RefusedByPeer,
    /// The peer does not speak TLS (garbage, plaintext, another protocol).
    NotTls,
    /// The peer speaks TLS but not what we require (TLS 1.2 only, no common cipher suite or
    /// ALPN protocol).
    Incompatible,
    /// The connection closed or failed during the session.
    Closed,
    /// Anything else.
    Other,
}

impl TlsFailure {
    /// True for failures of peer authentication (what the collector's
    /// authentication-failure metric counts).
    pub fn is_authentication(self) -> bool {
        matches!(
            self,
            Self::NoCertificate
                | Self::UntrustedCertificate
                | Self::InvalidCertificate
                | Self::RefusedByPeer
        )
    }
}

/// A failed TLS session: its class and a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct TlsSessionError {
    /// The class of failure.
    pub failure: TlsFailure,
    /// What happened, in words.
    pub detail: String,
}

impl TlsSessionError {
    /// Classifies an I/O error from a TLS stream (during or after the handshake): the
    /// rustls error inside it if any, else the I/O error itself.
    pub fn from_io(e: &io::Error) -> TlsSessionError {
        if let Some(err) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Self::from_rustls(err);
        }
        let failure = match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => TlsFailure::Closed,
            _ => TlsFailure::Other,
        };
        let detail = match failure {
            TlsFailure::Closed => format!("connection closed during TLS: {e}"),
            _ => format!("TLS I/O error: {e}"),
        };
        TlsSessionError { failure, detail }
    }

    /// The TLS failure inside an I/O error from a TLS stream, if it holds one (an alert
    /// from the peer, a corrupt record); `None` for plain I/O errors.
    pub fn from_tls_io(e: &io::Error) -> Option<TlsSessionError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(Self::from_rustls)
    }

    fn from_rustls(err: &rustls::Error) -> TlsSessionError {
        use rustls::{AlertDescription as A, CertificateError as C, Error as E};
        let (failure, detail) = match err {
            E::NoCertificatesPresented => (
                TlsFailure::NoCertificate,
                "the client presented no certificate (mutual TLS is required)".to_string(),
            ),
            E::InvalidCertificate(C::UnknownIssuer) => (
                TlsFailure::UntrustedCertificate,
                "the peer's certificate is not issued by the trusted CA (unknown issuer)"
                    .to_string(),
            ),
            E::InvalidCertificate(C::BadSignature) => (
                TlsFailure::UntrustedCertificate,
                "the peer's certificate is not signed by the trusted CA (bad signature: another CA with the same name?)"
                    .to_string(),
            ),
            E::InvalidCertificate(c) => (
                TlsFailure::InvalidCertificate,
                format!("the peer's certificate is invalid: {c:?}"),
            ),
            E::AlertReceived(
                a @ (A::UnknownCA
                | A::BadCertificate
                | A::CertificateRequired
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::UnsupportedCertificate
                | A::AccessDenied
                | A::DecryptError),
            ) => (
                TlsFailure::RefusedByPeer,
                format!("the peer refused our certificate (TLS alert {a:?})"),
            ),
            E::AlertReceived(
                a @ (A::ProtocolVersion | A::HandshakeFailure | A::NoApplicationProtocol),
            ) => (
                TlsFailure::Incompatible,
                format!(
                    "the peer refused the handshake (TLS alert {a:?}): it requires what we do not offer"
                ),
            ),
            E::AlertReceived(a) => (
                TlsFailure::RefusedByPeer,
                format!("the peer ended the TLS session (alert {a:?})"),
            ),
            E::InvalidMessage(m) => (
                TlsFailure::NotTls,
                format!("not TLS (invalid message: {m:?}): garbage or another protocol"),
            ),
            E::InappropriateMessage { got_type, .. } => (
                TlsFailure::NotTls,
                format!("unexpected TLS message {got_type:?}: garbage or another protocol"),
            ),
            E::InappropriateHandshakeMessage { got_type, .. } => (
                TlsFailure::NotTls,
                format!("unexpected TLS handshake message {got_type:?}"),
            ),
            E::PeerIncompatible(p) => (
                TlsFailure::Incompatible,
                format!(
                    "the peer is incompatible (TLS 1.3 with ALPN {:?} required): {p:?}",
                    String::from_utf8_lossy(ALPN)
                ),
            ),
            E::NoApplicationProtocol => (
                TlsFailure::Incompatible,
                format!(
                    "the peer does not speak ALPN {:?}",
                    String::from_utf8_lossy(ALPN)
                ),
            ),
            other => (TlsFailure::Other, format!("TLS error: {other}")),
        };
        TlsSessionError { failure, detail }
    }
}

/// The identity in the peer's certificate, available after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerIdentity {
    /// Subject common name, if the certificate has one.
    pub common_name: Option<String>,
    /// DNS names of the subject alternative name extension.
    pub dns_names: Vec<String>,
}

impl PeerIdentity {
    /// Reads the identity of a (verified) end-entity certificate; `None` if it cannot be
    /// parsed.
    pub fn from_certificate(cert: &CertificateDer<'_>) -> Option<PeerIdentity> {
        let ee = webpki::EndEntityCert::try_from(cert).ok()?;
        Some(PeerIdentity {
            common_name: common_name(ee.subject()),
            dns_names: ee.valid_dns_names().map(str::to_string).collect(),
        })
    }

    /// True when `name` is the common name or one of the DNS names.
    pub fn is(&self, name: &str) -> bool {
        self.common_name.as_deref() == Some(name) || self.dns_names.iter().any(|n| n == name)
    }

    fn of(conn: &rustls::CommonState) -> PeerIdentity {
        conn.peer_certificates()
            .and_then(|c| c.first())
            .and_then(Self::from_certificate)
            .unwrap_or_default()
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.common_name {
            Some(cn) => write!(f, "CN={cn}")?,
            None => write!(f, "CN=(none)")?,
        }
        if !self.dns_names.is_empty() {
            write!(f, " SAN={}", self.dns_names.join(","))?;
        }
        Ok(())
    }
}

/// One DER TLV: tag, value, rest. `None` on anything malformed (lengths are bounds-checked).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (lb, rest) = rest.split_at_checked(n)?;
        let len = lb.iter().try_fold(0usize, |acc, &b| {
            acc.checked_mul(256)?.checked_add(usize::from(b))
        })?;
        (len, rest)
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((tag, value, rest))
}

/// The first common name (OID 2.5.4.3) of a DER `Name` given without its outer SEQUENCE.
fn common_name(mut rdns: &[u8]) -> Option<String> {
    const SET: u8 = 0x31;
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    const CN: [u8; 3] = [0x55, 0x04, 0x03];
    while !rdns.is_empty() {
        let (tag, mut set, rest) = tlv(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        while !set.is_empty() {
            let (tag, atv, rest) = tlv(set)?;
            set = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (otag, oid, value) = tlv(atv)?;
            if otag == OID && oid == CN {
                let (vtag, v, _) = tlv(value)?;
                // UTF8String, PrintableString, IA5String.
                return match vtag {
                    0x0c | 0x13 | 0x16 => std::str::from_utf8(v).ok().map(str::to_string),
                    _ => None,
                };
            }
        }
    }
    None
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    // Read first for a plain I/O error that names the file.
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            detail: format!("malformed PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            path: path.to_path_buf(),
            detail: "no CERTIFICATE block in the file".to_string(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "private key";
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        detail: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1) in the file".to_string()
            }
            e => format!("malformed PEM: {e}"),
        },
    })
}

fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs("CA certificate", path)? {
        roots.add(cert).map_err(|e| TlsError::Ca {
            path: path.to_path_buf(),
            detail: format!("not a usable trust anchor: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

fn key_error(cert: &Path, key: &Path, e: rustls::Error) -> TlsError {
    let detail = match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "the private key does not match the certificate".to_string()
        }
        e => format!("unusable: {e}"),
    };
    TlsError::Key {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        detail,
    }
}

/// The collector's TLS configuration: TLS 1.3 only, this certificate chain and key, and a
/// client certificate required and verified against `client_ca`.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs("certificate", cert)?;
    let key_der = load_key(key)?;
    let roots = load_roots(client_ca)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Ca {
            path: client_ca.to_path_buf(),
            detail: format!("cannot verify clients with it: {e}"),
        })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| key_error(cert, key, e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| key_error(cert, key, e))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// A web server's TLS configuration (the verifier's DR console): TLS 1.2 and 1.3 (browsers),
/// this certificate chain and key, no client certificate, ALPN `http/1.1`.
pub fn https_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs("certificate", cert)?;
    let key_der = load_key(key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| key_error(cert, key, e))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| key_error(cert, key, e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The extractor's TLS configuration: TLS 1.3 only, this certificate chain and key as the
/// client certificate, and the collector's certificate verified against `server_ca`.
pub fn client_config(
    cert: &Path,
    key: &Path,
    server_ca: &Path,
) -> Result<Arc<ClientConfig>, TlsError> {
    let chain = load_certs("certificate", cert)?;
    let key_der = load_key(key)?;
    let roots = load_roots(server_ca)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| key_error(cert, key, e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| key_error(cert, key, e))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration with no client certificate: only to prove that the collector
/// refuses it.
#[cfg(any(test, feature = "test-util"))]
pub fn client_config_without_certificate(server_ca: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots(server_ca)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Ca {
            path: server_ca.to_path_buf(),
            detail: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The collector's side of TLS: accepts connections and authenticates clients.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsServer")
    }
}

impl TlsServer {
    /// A server with this configuration (see [`server_config`]).
    pub fn new(config: Arc<ServerConfig>) -> TlsServer {
        TlsServer {
            acceptor: tokio_rustls::TlsAcceptor::from(config),
        }
    }

    /// [`server_config`] from PEM files, then [`new`](Self::new).
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        client_ca: &Path,
    ) -> Result<TlsServer, TlsError> {
        Ok(Self::new(server_config(cert, key, client_ca)?))
    }

    /// Runs the server handshake on `io`; returns the stream and the client's identity.
    ///
    /// Cancel-safe only in the sense that dropping it drops the connection.
    pub async fn accept<S>(
        &self,
        io: S,
    ) -> Result<(ServerTlsStream<S>, PeerIdentity), TlsSessionError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = self
            .acceptor
            .accept(io)
            .await
            .map_err(|e| TlsSessionError::from_io(&e))?;
        let identity = PeerIdentity::of(stream.get_ref().1);
        Ok((stream, identity))
    }
}

/// The extractor's side of TLS: connects to a collector and authenticates it.
#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsClient")
    }
}

impl TlsClient {
    /// A client with this configuration (see [`client_config`]).
    pub fn new(config: Arc<ClientConfig>) -> TlsClient {
        TlsClient {
            connector: tokio_rustls::TlsConnector::from(config),
        }
    }

    /// [`client_config`] from PEM files, then [`new`](Self::new).
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        server_ca: &Path,
    ) -> Result<TlsClient, TlsError> {
        Ok(Self::new(client_config(cert, key, server_ca)?))
    }

    /// Runs the client handshake on `io`, checking that the server's certificate is valid
    /// for `server_name` (a DNS name or an IP address); returns the stream and the server's
    /// identity.
    ///
    /// With TLS 1.3 the server checks our certificate after this returns: a refusal shows
    /// as a [`TlsFailure::RefusedByPeer`] error on the first read.
    pub async fn connect<S>(
        &self,
        io: S,
        server_name: &str,
    ) -> Result<(ClientTlsStream<S>, PeerIdentity), TlsSessionError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(server_name.to_string()).map_err(|e| TlsSessionError {
            failure: TlsFailure::Other,
            detail: format!("invalid server name {server_name:?}: {e}"),
        })?;
        let stream = self
            .connector
            .connect(name, io)
            .await
            .map_err(|e| TlsSessionError::from_io(&e))?;
        let identity = PeerIdentity::of(stream.get_ref().1);
        Ok((stream, identity))
    }
}

/// Names in a generated PKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiNames {
    /// Subject CN of the CA.
    pub ca_name: String,
    /// Names of the server certificate (DNS names or IP addresses; the first is its CN).
    pub server_names: Vec<String>,
    /// Name of the client certificate (its CN and DNS SAN): the extractor id.
    pub client_name: String,
}

impl Default for PkiNames {
    fn default() -> Self {
        PkiNames {
            ca_name: "redovault link CA".to_string(),
            server_names: vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "redovault-collector".to_string(),
            ],
            client_name: "redovault-extractor".to_string(),
        }
    }
}

/// The files of a generated PKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiPaths {
    /// `ca.pem`: the CA certificate (trust anchor for both sides).
    pub ca: PathBuf,
    /// `server.pem`: the collector's certificate.
    pub server_cert: PathBuf,
    /// `server.key`: the collector's key (PKCS#8, mode 0600).
    pub server_key: PathBuf,
    /// `client.pem`: the extractor's certificate.
    pub client_cert: PathBuf,
    /// `client.key`: the extractor's key (PKCS#8, mode 0600).
    pub client_key: PathBuf,
}

/// Writes a fresh PKI with the default names ([`PkiNames::default`]) into `dir`: see
/// [`generate_pki_with`].
pub fn generate_pki(dir: &Path) -> Result<PkiPaths, TlsError> {
    generate_pki_with(dir, &PkiNames::default())
}

/// Writes a fresh PKI into `dir` (which must exist): an ECDSA P-256 CA (`ca.pem`, valid 10
/// years; its key is not kept, so nothing more can be signed with it), a server certificate
/// for `names.server_names` (`server.pem`, `server.key`, serverAuth) and a client
/// certificate for `names.client_name` (`client.pem`, `client.key`, clientAuth), both valid
/// 2 years. Refuses to overwrite existing files. Each call makes an independent CA, so
/// a second directory is "another CA" for negative tests.
pub fn generate_pki_with(dir: &Path, names: &PkiNames) -> Result<PkiPaths, TlsError> {
    use chrono::Datelike;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let gen_err = |what: &'static str| {
        move |e: rcgen::Error| TlsError::Generate {
            what,
            detail: e.to_string(),
        }
    };
    // From yesterday (clock differences between hosts), for 2 or 10 years.
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    let date = |years: i32| {
        rcgen::date_time_ymd(
            start.year() + years,
            u8::try_from(start.month()).unwrap_or(1),
            u8::try_from(start.day().min(28)).unwrap_or(1),
        )
    };

    let ca_key = KeyPair::generate().map_err(gen_err("CA key"))?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, names.ca_name.as_str());
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = date(0);
    ca.not_after = date(10);
    let ca_cert = ca.self_signed(&ca_key).map_err(gen_err("CA certificate"))?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf = |what: &'static str, sans: &[String], eku: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().map_err(gen_err(what))?;
        let mut p = CertificateParams::new(sans.to_vec()).map_err(gen_err(what))?;
        if let Some(cn) = sans.first() {
            p.distinguished_name.push(DnType::CommonName, cn.as_str());
        }
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![eku];
        p.not_before = date(0);
        p.not_after = date(2);
        let cert = p.signed_by(&key, &issuer).map_err(gen_err(what))?;
        Ok::<_, TlsError>((cert.pem(), key.serialize_pem()))
    };
    let (server_pem, server_key) = leaf(
        "server certificate",
        &names.server_names,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_pem, client_key) = leaf(
        "client certificate",
        std::slice::from_ref(&names.client_name),
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;

    let paths = PkiPaths {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    };
    write_new(&paths.ca, ca_cert.pem().as_bytes(), 0o644)?;
    write_new(&paths.server_cert, server_pem.as_bytes(), 0o644)?;
    write_new(&paths.server_key, server_key.as_bytes(), 0o600)?;
    write_new(&paths.client_cert, client_pem.as_bytes(), 0o644)?;
    write_new(&paths.client_key, client_key.as_bytes(), 0o600)?;
    crate::durable::sync_dir(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(paths)
}

/// Creates `path` (which must not exist) with `mode`, writes and fsyncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pki_loads_and_names_are_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = generate_pki(dir.path()).unwrap();
        server_config(&p.server_cert, &p.server_key, &p.ca).unwrap();
        client_config(&p.client_cert, &p.client_key, &p.ca).unwrap();
        let cert = load_certs("certificate", &p.client_cert).unwrap().remove(0);
        let id = PeerIdentity::from_certificate(&cert).unwrap();
        assert_eq!(id.common_name.as_deref(), Some("redovault-extractor"));
        assert_eq!(id.dns_names, ["redovault-extractor"]);
        assert!(id.is("redovault-extractor"));
        assert!(!id.is("someone-else"));
        assert_eq!(
            id.to_string(),
            "CN=redovault-extractor SAN=redovault-extractor"
        );
        let server = load_certs("certificate", &p.server_cert).unwrap().remove(0);
        let id = PeerIdentity::from_certificate(&server).unwrap();
        assert_eq!(id.dns_names, ["localhost", "redovault-collector"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p.client_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Never overwrites.
        let e = generate_pki(dir.path()).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
    }

    #[test]
    fn errors_name_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = generate_pki(dir.path()).unwrap();
        let missing = dir.path().join("nope.pem");
        let e = server_config(&missing, &p.server_key, &p.ca).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        // A key file given as the certificate: no CERTIFICATE block.
        let e = server_config(&p.server_key, &p.server_key, &p.ca).unwrap_err();
        assert!(
            e.to_string().contains("server.key") && e.to_string().contains("no CERTIFICATE"),
            "{e}"
        );
        // A certificate given as the key.
        let e = client_config(&p.client_cert, &p.client_cert, &p.ca).unwrap_err();
        assert!(
            e.to_string().contains("client.pem") && e.to_string().contains("PRIVATE KEY"),
            "{e}"
        );
        // The server's key with the client's certificate.
        let e = client_config(&p.client_cert, &p.server_key, &p.ca).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("client.pem") && s.contains("server.key") && s.contains("does not match"),
            "{s}"
        );
        // Garbage CA.
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        let e = server_config(&p.server_cert, &p.server_key, &junk).unwrap_err();
        assert!(e.to_string().contains("junk.pem"), "{e}");
    }

    #[test]
    fn common_name_parser_survives_garbage() {
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[0x31]), None);
        assert_eq!(common_name(&[0x31, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name(&[0x31, 0x80]), None);
        // SET { SEQUENCE { OID 2.5.4.3, UTF8String "ab" } }
        let name = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x02, b'a', b'b',
        ];
        assert_eq!(common_name(&name).as_deref(), Some("ab"));
        for cut in 0..name.len() {
            assert_eq!(common_name(&name[..cut]), None, "cut {cut}");
        }
    }
}
