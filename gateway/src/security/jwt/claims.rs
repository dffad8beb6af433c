//! What a verified token must claim: `exp` (required; `JWT_LEEWAY` of clock skew), `nbf` (when
//! present, same leeway), `iss` (required and equal to `JWT_ISSUER` when set), `aud` (required
//! and one of `JWT_AUDIENCE` when set; a token that names an audience is refused when
//! `JWT_AUDIENCE` is unset, as RFC 7519 §4.1.3 asks), and `sub`: a non-empty string of at most
//! [`MAX_SUB_BYTES`], which the session then belongs to.
//!
//! `iss`, `aud` and the presence of `exp` are `jsonwebtoken`'s [`Validation`]; the times and
//! `sub` are checked here, against a `now` the caller passes, so that tests can set the clock.

use std::time::Duration;

use jsonwebtoken::Validation;
use serde::Deserialize;

use super::error::JwtError;
use super::key::SigningAlg;

/// Longest accepted `sub`.
pub const MAX_SUB_BYTES: usize = 256;

/// A token that verified: whose it is, and until when (seconds since the epoch, rounded down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub sub: String,
    pub exp: u64,
}

/// The claims read here; everything else in the payload is ignored.
#[derive(Deserialize)]
pub(super) struct Claims {
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
}

/// A NumericDate (seconds since the epoch; fractions allowed).
fn numeric_date(v: &serde_json::Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite() && *f >= 0.0)
}

/// The claim checks of one gateway.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    leeway: Duration,
    /// One [`Validation`] per [`SigningAlg`], by [`SigningAlg::index`].
    validations: [Validation; 4],
}

impl ClaimRules {
    /// `issuer`: `JWT_ISSUER`; `audience`: `JWT_AUDIENCE`; `leeway`: `JWT_LEEWAY`.
    pub fn new(issuer: Option<&str>, audience: &[String], leeway: Duration) -> Self {
        let validation = |alg: SigningAlg| {
            let mut v = Validation::new(alg.algorithm());
            // Times are checked in `check`, with our clock and a sub-second leeway.
            v.validate_exp = false;
            v.validate_nbf = false;
            v.leeway = 0;
            let mut required = vec!["exp"];
            if let Some(iss) = issuer {
                v.set_issuer(&[iss]);
                required.push("iss");
            }
            if !audience.is_empty() {
                v.set_audience(audience);
                required.push("aud");
            }
            v.validate_aud = true;
            v.set_required_spec_claims(&required);
            v
        };
        ClaimRules {
            leeway,
            validations: SigningAlg::ALL.map(validation),
        }
    }

    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// What `jsonwebtoken::decode` checks for a key pinned to `alg`: that algorithm only, and
    /// `exp`, `iss`, `aud` as configured.
    pub(super) fn validation(&self, alg: SigningAlg) -> &Validation {
        &self.validations[alg.index()]
    }

    /// The time and subject checks of a token whose signature verified, at `now`.
    pub(super) fn check(&self, claims: Claims, now: u64) -> Result<Verified, JwtError> {
        let now = now as f64;
        let leeway = self.leeway.as_secs_f64();
        let exp = claims
            .exp
            .as_ref()
            .and_then(numeric_date)
            .ok_or(JwtError::Malformed)?;
        if now >= exp + leeway {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = claims.nbf.as_ref() {
            let nbf = numeric_date(nbf).ok_or(JwtError::Malformed)?;
            if nbf > now + leeway {
                return Err(JwtError::NotYetValid);
            }
        }
        match claims.sub {
            Some(serde_json::Value::String(sub))
                if !sub.is_empty() && sub.len() <= MAX_SUB_BYTES =>
            {
                Ok(Verified {
                    sub,
                    exp: exp.floor() as u64,
                })
            }
            _ => Err(JwtError::BadSubject),
        }
    }
}
