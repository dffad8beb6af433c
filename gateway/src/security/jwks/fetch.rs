//! One fetch of a JWKS: a GET with bounded time (connect [`CONNECT_TIMEOUT`], whole request
//! [`REQUEST_TIMEOUT`]) and size ([`MAX_BODY_BYTES`], [`MAX_KEYS`]), no redirects (a redirect
//! could lead to plaintext or elsewhere; configure the final URL), over rustls with the
//! Mozilla roots (`reqwest`'s `rustls-tls`, webpki-roots). The answer must be 200 with
//! `{"keys":[…]}`; each key is taken or left out by [`key_from_jwk`], and a set with no usable
//! key is an error (the last good set stays in force, see `security::jwks`).

use std::time::Duration;

use serde::Deserialize;

use super::cache_control;
use super::url::JwksUrl;
use crate::security::jwt::jwk::key_from_jwk;
use crate::security::jwt::key::VerificationKey;

/// Bound on connecting to the provider.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one whole fetch (connect, TLS, headers, body).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JWKS body read (real ones are a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most keys taken from one set (the rest are ignored).
pub const MAX_KEYS: usize = 64;

/// Why a fetch gave no key set.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("not a JWK set: {0}")]
    NotAJwkSet(#[from] serde_json::Error),
    #[error("no usable signature key ({skipped} left out: unsupported type, use or size)")]
    NoUsableKey { skipped: usize },
}

/// Why the JWKS client could not be built (at start: exit 2).
#[derive(Debug, thiserror::Error)]
#[error("JWT_JWKS_URL: cannot build the HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// A fetched key set.
#[derive(Debug)]
pub struct Fetched {
    pub keys: Vec<VerificationKey>,
    /// Keys left out (unsupported, not for signatures, weak, past [`MAX_KEYS`]).
    pub skipped: usize,
    /// `Cache-Control: max-age` of the answer.
    pub max_age: Option<Duration>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// Fetches one provider's key set.
#[derive(Debug, Clone)]
pub struct JwksClient {
    url: JwksUrl,
    http: reqwest::Client,
}

impl JwksClient {
    pub fn new(url: JwksUrl) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!url.is_plaintext())
            .user_agent(concat!("streamline-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(JwksClient { url, http })
    }

    pub fn url(&self) -> &JwksUrl {
        &self.url
    }

    /// One GET of the key set.
    pub async fn fetch(&self) -> Result<Fetched, FetchError> {
        let mut resp = self
            .http
            .get(self.url.url().clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        let max_age = resp
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(cache_control::max_age)
            .min();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body)?;
        let total = set.keys.len();
        let mut keys = Vec::new();
        for jwk in set.keys.iter().take(MAX_KEYS) {
            match key_from_jwk(jwk) {
                Ok(key) => keys.push(key),
                Err(why) => tracing::debug!(
                    kid = jwk.get("kid").and_then(|k| k.as_str()).unwrap_or(""),
                    %why,
                    "JWKS key left out"
                ),
            }
        }
        let skipped = total - keys.len();
        if keys.is_empty() {
            return Err(FetchError::NoUsableKey { skipped });
        }
        Ok(Fetched {
            keys,
            skipped,
            max_age,
        })
    }
}
