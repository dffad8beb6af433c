//! TLS to Redis: the files an operator gives, turned into the rustls connector fred uses.
//!
//! Contract:
//! - the server's certificate is verified (chain to a trusted root, validity dates) and so is
//!   its name: the host of the URL (or, behind Sentinel or in a Cluster, the address the
//!   topology reports) must be in the certificate. There is no switch to turn either off;
//! - trusted roots are the system's (rustls-native-certs: the OS trust store, which follows
//!   `SSL_CERT_FILE`/`SSL_CERT_DIR` and the image's `ca-certificates`) plus, when given, every
//!   certificate of `REDIS_TLS_CA_FILE`. No trusted root at all is a start-up error;
//! - a client certificate (mutual TLS) is sent when `REDIS_TLS_CERT_FILE` and
//!   `REDIS_TLS_KEY_FILE` are both set; one without the other is a start-up error;
//! - every file is read and parsed here, once, at start: a missing, unreadable or non-PEM file
//!   fails start with an error naming the setting and the path.
//!
//! The crypto provider is ring, named explicitly (not the process default), so a second
//! provider pulled in by some other crate can never make the choice ambiguous.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fred::types::config::{TlsConfig, TlsConnector, TlsHostMapping};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// The TLS files of `REDIS_TLS_*` (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTlsFiles {
    /// `REDIS_TLS_CA_FILE`: extra trusted CA certificates (PEM), added to the system roots.
    pub ca_file: Option<PathBuf>,
    /// `REDIS_TLS_CERT_FILE`: the client certificate chain (PEM), for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// `REDIS_TLS_KEY_FILE`: the client certificate's private key (PEM), for mutual TLS.
    pub key_file: Option<PathBuf>,
}

impl RedisTlsFiles {
    /// Whether any TLS file is set (then the URL must ask for TLS).
    pub fn any(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }
}

/// Why the TLS settings cannot be used. Each message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{setting}: cannot read {path}: {source}")]
    Read {
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{setting}: {path} holds no PEM {what}")]
    Empty {
        setting: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("{setting}: {path} is not valid PEM: {reason}")]
    BadPem {
        setting: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("REDIS_TLS_CA_FILE: {path}: no certificate in it is a usable CA certificate")]
    BadCa { path: PathBuf },
    #[error(
        "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together (mutual TLS): set both or neither"
    )]
    HalfPair,
    #[error(
        "no trusted CA certificate: the system has none ({system}) and REDIS_TLS_CA_FILE is unset"
    )]
    NoRoots { system: String },
    #[error("REDIS_TLS_CERT_FILE/REDIS_TLS_KEY_FILE: the certificate and key are unusable: {0}")]
    ClientAuth(rustls::Error),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate of a PEM file (at least one).
fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::BadPem {
            setting,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Empty {
            setting,
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    const SETTING: &str = "REDIS_TLS_KEY_FILE";
    let pem = read(SETTING, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsSetupError::Empty {
            setting: SETTING,
            path: path.to_path_buf(),
            what: "private key",
        },
        other => TlsSetupError::BadPem {
            setting: SETTING,
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

/// The trusted roots: the system's, plus the CA file's.
fn roots(files: &RedisTlsFiles) -> Result<RootCertStore, TlsSetupError> {
    let mut store = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    let (added, _ignored) = store.add_parsable_certificates(system.certs);
    if let Some(path) = &files.ca_file {
        let (ca_added, _) =
            store.add_parsable_certificates(certificates("REDIS_TLS_CA_FILE", path)?);
        if ca_added == 0 {
            return Err(TlsSetupError::BadCa { path: path.clone() });
        }
    } else if added == 0 {
        let system = match system.errors.first() {
            Some(e) => e.to_string(),
            None => "no certificate found".to_string(),
        };
        return Err(TlsSetupError::NoRoots { system });
    }
    Ok(store)
}

/// The rustls client configuration for these files.
pub(crate) fn client_config(files: &RedisTlsFiles) -> Result<ClientConfig, TlsSetupError> {
    // The pair first: its error is the clearest, whatever else is wrong.
    let client_auth = match (&files.cert_file, &files.key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some((
            certificates("REDIS_TLS_CERT_FILE", cert)?,
            private_key(key)?,
        )),
        _ => return Err(TlsSetupError::HalfPair),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(files)?);
    match client_auth {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(TlsSetupError::ClientAuth),
    }
}

/// fred's TLS configuration for these files. Server names are never remapped
/// ([`TlsHostMapping::None`]): each node is verified under the name or address it is reached at.
pub(crate) fn fred_tls(files: &RedisTlsFiles) -> Result<TlsConfig, TlsSetupError> {
    Ok(TlsConfig {
        connector: TlsConnector::from(client_config(files)?),
        hostnames: TlsHostMapping::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, content: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "store-tls-{}-{}-{name}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn a_missing_file_names_the_setting() {
        let files = RedisTlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = client_config(&files).unwrap_err().to_string();
        assert!(
            e.starts_with("REDIS_TLS_CA_FILE: cannot read /nonexistent/ca.pem"),
            "{e}"
        );
    }

    /// The error for a CA file holding `content`.
    fn ca_file_error(content: &str) -> String {
        let path = temp("ca.pem", content);
        let files = RedisTlsFiles {
            ca_file: Some(path.clone()),
            ..Default::default()
        };
        let e = client_config(&files).unwrap_err().to_string();
        let _ = std::fs::remove_file(path);
        e
    }

    #[test]
    fn a_file_without_pem_is_refused() {
        let e = ca_file_error("hello, not a certificate\n");
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }

    #[test]
    fn broken_pem_is_refused() {
        let e = ca_file_error("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        assert!(e.contains("is not valid PEM"), "{e}");
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let files = RedisTlsFiles {
            cert_file: Some("/nonexistent/c.pem".into()),
            ..Default::default()
        };
        assert!(matches!(
            client_config(&files),
            Err(TlsSetupError::HalfPair)
        ));
    }
}
