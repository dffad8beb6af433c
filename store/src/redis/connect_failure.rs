//! Why a connection to Redis cannot be made, said once.
//!
//! fred retries a failed connection forever (every second at most, see `builder`), and logs
//! each failure at debug level only. Without this module a service that cannot complete a TLS
//! handshake would stay not-ready with nothing in its log; with a naive log it would write one
//! line per retry. So each client's error stream is watched here, each error is classified into
//! a [`ConnectFailure`], and a warning is written when the cause *changes*: once for a cause
//! that persists, again only after a successful connection (which resets it) or a different
//! cause. The last cause is shared by every client of the process (the store's command client
//! and each feed's subscriber fail for the same reason), so a process writes one line, not one
//! per client.

use std::sync::Mutex;

use fred::prelude::*;
use tokio::sync::broadcast::error::RecvError;

use super::{RedisEndpoint, Transport};

/// The cause of a failed connection, as an operator needs to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The server's certificate does not chain to a trusted root.
    UnknownCa,
    /// The server's certificate does not name the host it was reached at.
    WrongHostName,
    /// The certificate has expired or is not valid yet.
    CertificateExpired,
    /// The server answered something that is not TLS: a plaintext Redis on a `rediss://` URL.
    NotTls,
    /// A TLS connection attempt timed out. A plaintext Redis does this: it takes the TLS
    /// ClientHello for the start of an inline command and waits for the rest, so the handshake
    /// never completes; an unreachable host looks the same.
    NoTlsAnswer,
    /// The server refused the handshake because it wants a client certificate (mutual TLS).
    ClientCertificateRequired,
    /// Any other TLS failure (rustls' own words).
    OtherTls(String),
    /// Not a TLS failure: refused, unreachable, authentication, … (fred's words).
    Other(String),
}

impl ConnectFailure {
    /// Classifies fred's error. fred keeps an I/O error's `Debug` text (rustls' error variant
    /// names), so that text is what is matched; the unit tests pin it to rustls' real output.
    pub fn classify(error: &Error, transport: Transport) -> ConnectFailure {
        let details = error.details();
        if transport == Transport::Tls && *error.kind() == ErrorKind::Timeout {
            return ConnectFailure::NoTlsAnswer;
        }
        let has = |needle: &str| details.contains(needle);
        if has("UnknownIssuer") || has("BadSignature") || has("UnknownRevocationStatus") {
            ConnectFailure::UnknownCa
        } else if has("NotValidForName") {
            ConnectFailure::WrongHostName
        } else if has("Expired") || has("NotValidYet") {
            ConnectFailure::CertificateExpired
        } else if has("InvalidContentType")
            || has("InvalidMessage")
            || has("CorruptMessage")
            || has("tls handshake eof")
        {
            ConnectFailure::NotTls
        } else if has("CertificateRequired")
            || (has("HandshakeFailure") && has("AlertReceived"))
            || has("AlertReceived(BadCertificate)")
        {
            ConnectFailure::ClientCertificateRequired
        } else if has("InvalidCertificate")
            || has("AlertReceived")
            || has("PeerIncompatible")
            || has("PeerMisbehaved")
        {
            ConnectFailure::OtherTls(details.to_string())
        } else {
            ConnectFailure::Other(details.to_string())
        }
    }

    /// The line for the operator.
    pub fn describe(&self) -> String {
        match self {
            ConnectFailure::UnknownCa => "TLS handshake failed: the server's certificate is not \
                signed by a trusted CA (system roots or REDIS_TLS_CA_FILE)"
                .into(),
            ConnectFailure::WrongHostName => "TLS handshake failed: the server's certificate is \
                not valid for the host name in REDIS_URL"
                .into(),
            ConnectFailure::CertificateExpired => {
                "TLS handshake failed: the server's certificate has expired or is not valid yet"
                    .into()
            }
            ConnectFailure::NotTls => "TLS handshake failed: the server did not answer TLS \
                (a plaintext Redis on a rediss:// URL?)"
                .into(),
            ConnectFailure::NoTlsAnswer => "TLS handshake failed: the server did not answer TLS \
                within the connection timeout (a plaintext Redis on a rediss:// URL, or an \
                unreachable host)"
                .into(),
            ConnectFailure::ClientCertificateRequired => "TLS handshake failed: the server \
                wants a client certificate it accepts (REDIS_TLS_CERT_FILE/REDIS_TLS_KEY_FILE)"
                .into(),
            ConnectFailure::OtherTls(why) => format!("TLS handshake failed: {why}"),
            ConnectFailure::Other(why) => format!("cannot connect: {why}"),
        }
    }
}

/// The cause last written, shared by every client of this process.
static LAST: Mutex<Option<ConnectFailure>> = Mutex::new(None);

/// Whether `failure` is new (and records it).
fn is_new(failure: &ConnectFailure) -> bool {
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if last.as_ref() == Some(failure) {
        false
    } else {
        *last = Some(failure.clone());
        true
    }
}

fn connected() {
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Watches `client`'s errors and (re)connections until the client is dropped; `role` names
/// the client in the line (`commands`, `subscriber`).
pub(crate) fn watch(client: &impl EventInterface, role: &'static str, endpoint: &RedisEndpoint) {
    let (target, transport) = (endpoint.redacted_url.clone(), endpoint.transport);
    let mut errors = client.error_rx();
    let mut reconnects = client.reconnect_rx();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                e = errors.recv() => match e {
                    Ok((error, _server)) => {
                        if error.is_canceled() {
                            continue;
                        }
                        let failure = ConnectFailure::classify(&error, transport);
                        metrics::counter!("streamline_store_redis_connect_failures_total").increment(1);
                        if is_new(&failure) {
                            tracing::warn!(
                                redis = %target,
                                client = role,
                                "redis: {} (retrying; logged again only if the cause changes)",
                                failure.describe()
                            );
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                r = reconnects.recv() => match r {
                    Ok(_) | Err(RecvError::Lagged(_)) => connected(),
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription, CertificateError, InvalidMessage};

    /// What fred makes of a rustls handshake error (it keeps the I/O error's `Debug` text).
    fn fred_error(e: rustls::Error) -> Error {
        Error::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    #[test]
    fn rustls_errors_are_classified_by_cause() {
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                ConnectFailure::UnknownCa,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                ConnectFailure::WrongHostName,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                ConnectFailure::CertificateExpired,
            ),
            (
                rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
                ConnectFailure::NotTls,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                ConnectFailure::ClientCertificateRequired,
            ),
        ];
        for (error, want) in cases {
            let fred = fred_error(error);
            assert_eq!(
                ConnectFailure::classify(&fred, Transport::Tls),
                want,
                "{fred:?}"
            );
        }
        let refused = Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(
            ConnectFailure::classify(&refused, Transport::Tls),
            ConnectFailure::Other(_)
        ));
        let timeout = Error::new(ErrorKind::Timeout, "Request timed out.");
        assert_eq!(
            ConnectFailure::classify(&timeout, Transport::Tls),
            ConnectFailure::NoTlsAnswer
        );
        assert!(matches!(
            ConnectFailure::classify(&timeout, Transport::Plaintext),
            ConnectFailure::Other(_)
        ));
    }

    #[test]
    fn a_cause_is_new_once_until_a_connection_succeeds() {
        connected();
        assert!(is_new(&ConnectFailure::UnknownCa));
        assert!(!is_new(&ConnectFailure::UnknownCa));
        assert!(is_new(&ConnectFailure::NotTls));
        connected();
        assert!(is_new(&ConnectFailure::NotTls));
        connected();
    }
}
