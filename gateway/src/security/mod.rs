//! Who may open `/ws`, and how much of the gateway one client may take.
//!
//! - [`jwt`]: JWT verification (keys pinned to one algorithm, claims); [`jwks`]: the identity
//!   provider's key set, fetched and refreshed; [`bearer`]: where the client puts its JWT;
//!   [`conn_token`]: the token an open connection runs on, until it expires;
//! - [`origin`]: the Origin policy; [`resume_token`]: HMAC resume tokens bound to `sub`;
//! - [`conn_limits`]: connections in total and per client IP; [`proxies`]: whose
//!   `X-Forwarded-For` is believed; [`rate`]: the per-connection token bucket.
//!
//! Every policy is parsed once, by the configuration (clap `value_parser`s), into these types;
//! [`Security`] only gathers them for the handshake.

pub mod bearer;
pub mod conn_limits;
pub mod conn_token;
pub mod jwks;
pub mod jwt;
pub mod origin;
pub mod proxies;
pub mod rate;
pub mod resume_token;

use std::sync::Arc;

use crate::config::Config;
use conn_limits::ConnLimiter;
use jwks::fetch::ClientError;
use jwks::Jwks;
use jwt::key::KeyError;
use jwt::{ClaimRules, JwtVerifier, VerificationKey};
use origin::OriginPolicy;
use proxies::TrustedProxies;

/// Why the security settings could not be put to use (at start: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    JwksClient(#[from] ClientError),
    #[error("AUTH_SECRET: {0}")]
    Secret(#[from] KeyError),
}

/// Everything the `/ws` handshake checks.
pub struct Security {
    /// `None`: no JWT key configured, anonymous sessions.
    pub jwt: Option<Arc<JwtVerifier>>,
    /// The JWKS behind `jwt`, when `JWT_JWKS_URL` is set (the server runs its refresh).
    pub jwks: Option<Arc<Jwks>>,
    pub origins: OriginPolicy,
    pub proxies: TrustedProxies,
    pub connections: Arc<ConnLimiter>,
}

impl Security {
    pub fn new(config: &Config) -> Result<Self, SecurityError> {
        let jwks = match &config.jwt_jwks_url {
            Some(url) => Some(Arc::new(Jwks::new(
                url.clone(),
                config.jwt_jwks_refresh,
                config.jwt_jwks_min_refresh,
            )?)),
            None => None,
        };
        let jwt = if config.jwt_enabled() {
            let hs256 = match &config.auth_secret {
                Some(s) => Some(VerificationKey::hs256(s.expose().as_bytes())?),
                None => None,
            };
            let audience = config
                .jwt_audience
                .as_ref()
                .map(|a| a.0.as_slice())
                .unwrap_or_default();
            let rules = ClaimRules::new(config.jwt_issuer.as_deref(), audience, config.jwt_leeway);
            Some(Arc::new(JwtVerifier::new(
                hs256,
                config.jwt_public_key_file.as_ref().map(|f| f.key.clone()),
                jwks.clone(),
                rules,
            )))
        } else {
            None
        };
        Ok(Security {
            jwt,
            jwks,
            origins: config.allowed_origins.clone(),
            proxies: config.trusted_proxies.clone(),
            connections: ConnLimiter::new(config.max_connections, config.max_connections_per_ip),
        })
    }
}
