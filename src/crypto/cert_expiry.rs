//! When the link's certificates stop being valid: the not-after time of a PEM certificate
//! file, for the `redovault_<component>_link_cert_expiry_timestamp_seconds{cert}` gauges of
//! the extractor and the collector.
//!
//! A link whose certificate (or the CA it trusts) expires stops in the middle of the night
//! with every handshake refused; the alert rules warn 21 days and 7 days before. The files
//! are the ones the process loaded at start (a renewed file on disk takes effect at the
//! next restart, and so does its metric).
//!
//! A file with several certificates (a chain, or a CA bundle) expires with its first
//! certificate to expire: that is the time reported. Anything that is not a parsable
//! X.509 certificate is an error naming the file and the certificate's position, never a
//! panic.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a certificate file's expiry cannot be known.
#[derive(Debug, thiserror::Error)]
pub enum CertExpiryError {
    /// The file cannot be read or holds a malformed PEM section.
    #[error("{}: cannot read PEM certificates: {reason}", path.display())]
    Pem {
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file holds no `CERTIFICATE` section.
    #[error("{}: no certificate in the file", path.display())]
    Empty { path: PathBuf },
    /// A certificate's DER does not parse as X.509.
    #[error("{}: certificate {index} (from 1) is not valid X.509: {reason}", path.display())]
    X509 {
        path: PathBuf,
        /// Its position in the file, from 1.
        index: usize,
        /// What the parser said.
        reason: String,
    },
}

/// The not-after time (Unix seconds) of one DER certificate.
pub fn der_not_after(der: &[u8]) -> Result<i64, String> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        ));
    }
    Ok(cert.validity().not_after.timestamp())
}

/// The earliest not-after time (Unix seconds) of the certificates in the PEM file `path`.
pub fn pem_file_not_after(path: &Path) -> Result<i64, CertExpiryError> {
    let pem_err = |reason: String| CertExpiryError::Pem {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| pem_err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    let mut earliest: Option<i64> = None;
    for (i, c) in certs.iter().enumerate() {
        let t = der_not_after(c.as_ref()).map_err(|reason| CertExpiryError::X509 {
            path: path.to_path_buf(),
            index: i + 1,
            reason,
        })?;
        earliest = Some(earliest.map_or(t, |e| e.min(t)));
    }
    earliest.ok_or_else(|| CertExpiryError::Empty {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_pem(not_after: (i32, u8, u8)) -> String {
        let mut p = rcgen::CertificateParams::new(vec!["x.example".to_string()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn earliest_not_after_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one.pem");
        std::fs::write(&one, cert_pem((2031, 3, 4))).unwrap();
        // 2031-03-04T00:00:00Z
        assert_eq!(pem_file_not_after(&one).unwrap(), 1_930_348_800);
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(
            &bundle,
            cert_pem((2031, 3, 4)) + &cert_pem((2027, 1, 1)) + &cert_pem((2040, 1, 1)),
        )
        .unwrap();
        // 2027-01-01T00:00:00Z
        assert_eq!(pem_file_not_after(&bundle).unwrap(), 1_798_761_600);
    }

    #[test]
    fn garbage_is_a_clear_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = pem_file_not_after(&missing).unwrap_err();
        assert!(matches!(e, CertExpiryError::Pem { .. }), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let e = pem_file_not_after(&empty).unwrap_err();
        assert!(matches!(e, CertExpiryError::Empty { .. }), "{e}");

        // A well-formed PEM section whose DER is not a certificate, after a good one.
        let bad = dir.path().join("bad.pem");
        let junk = "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n";
        std::fs::write(&bad, cert_pem((2031, 3, 4)) + junk).unwrap();
        let e = pem_file_not_after(&bad).unwrap_err();
        assert!(matches!(e, CertExpiryError::X509 { index: 2, .. }), "{e}");
        assert!(e.to_string().contains("bad.pem") && e.to_string().contains("certificate 2"));

        // Truncated DER: every prefix of a real certificate is refused without a panic.
        let good = cert_pem((2031, 3, 4));
        let der = CertificateDer::from_pem_slice(good.as_bytes()).unwrap();
        for n in 0..der.len() {
            assert!(der_not_after(&der[..n]).is_err(), "prefix {n} accepted");
        }
        let mut longer = der.to_vec();
        longer.push(0);
        assert!(der_not_after(&longer).is_err());
    }

    #[test]
    fn exported_as_gauges_by_cert_and_errors_returned() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("client.pem");
        std::fs::write(&good, cert_pem((2031, 3, 4))).unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let r = crate::telemetry::Registry::new();
        let f = r.gauge_family(
            "redovault_test_link_cert_expiry_timestamp_seconds",
            "t",
            "cert",
        );
        let errors = crate::telemetry::export_cert_expiry(&f, &[("client", &good), ("ca", &bad)]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("ca.pem"), "{}", errors[0]);
        let text = r.render();
        assert!(
            text.contains(
                "redovault_test_link_cert_expiry_timestamp_seconds{cert=\"client\"} 1930348800"
            ),
            "{text}"
        );
        assert!(!text.contains("cert=\"ca\""), "{text}");
    }
}
