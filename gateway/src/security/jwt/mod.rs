//! JWT authentication of `/ws` and of the `auth` frame, on the `jsonwebtoken` crate.
//!
//! The keys: `AUTH_SECRET` (HS256), `JWT_PUBLIC_KEY_FILE` ([`pem_key`]) and the keys of
//! `JWT_JWKS_URL` (`security::jwks`), each pinned to one algorithm ([`key`]). Verification:
//!
//! 1. at most [`MAX_TOKEN_BYTES`], exactly three base64url parts, a JSON header;
//! 2. the header's `alg` and `kid` *select* keys, nothing more: the keys pinned to that `alg`
//!    (none for `none` or any algorithm we do not pin), among the JWKS keys of that `kid` when
//!    it names one; the PEM key (which has no `kid`) when no JWKS key is selected;
//! 3. each selected key verifies the signature under its own pinned algorithm
//!    (`jsonwebtoken::decode` with that algorithm only), before any claim is read;
//! 4. the claims ([`claims`]): `exp`, `nbf`, `iss`, `aud`, `sub`.
//!
//! A token that names a `kid` the JWKS does not hold (or, without `kid`, finds no key while a
//! JWKS is configured) asks the JWKS for a refetch, which happens at most once per
//! `JWT_JWKS_MIN_REFRESH` whatever the number of such tokens, and is then looked up once more.

pub mod claims;
pub mod error;
pub mod jwk;
pub mod key;
pub mod pem_key;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

pub use claims::{ClaimRules, Verified, MAX_SUB_BYTES};
pub use error::JwtError;
pub use key::{SigningAlg, VerificationKey};

use crate::security::jwks::{Jwks, Refetch};

/// Longest accepted token.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The header fields that select keys; `jsonwebtoken` re-reads the whole header (and refuses
/// `crit` extensions) when it verifies.
#[derive(Deserialize)]
struct SelectingHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Reads the selecting header of `token` after the size and shape checks.
fn selecting_header(token: &str) -> Result<SelectingHeader, JwtError> {
    if token.is_empty() {
        return Err(JwtError::Missing);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header = URL_SAFE_NO_PAD
        .decode(h64)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&header).map_err(|_| JwtError::Malformed)
}

/// Checks login tokens against every configured key.
pub struct JwtVerifier {
    /// `AUTH_SECRET`.
    hs256: Option<VerificationKey>,
    /// `JWT_PUBLIC_KEY_FILE`.
    static_key: Option<VerificationKey>,
    /// `JWT_JWKS_URL`.
    jwks: Option<Arc<Jwks>>,
    rules: ClaimRules,
}

impl JwtVerifier {
    pub fn new(
        hs256: Option<VerificationKey>,
        static_key: Option<VerificationKey>,
        jwks: Option<Arc<Jwks>>,
        rules: ClaimRules,
    ) -> Self {
        install_crypto_provider();
        JwtVerifier {
            hs256,
            static_key,
            jwks,
            rules,
        }
    }

    pub fn rules(&self) -> &ClaimRules {
        &self.rules
    }

    /// Whether some token could verify now: a fixed key, or a JWKS that has been fetched. A
    /// gateway whose only keys come from a JWKS that it could not fetch yet refuses every
    /// token, and says so in `/readyz`.
    pub fn has_keys(&self) -> bool {
        self.hs256.is_some()
            || self.static_key.is_some()
            || self.jwks.as_ref().is_some_and(|j| !j.keys().is_empty())
    }

    /// Verifies `token` now, refetching the JWKS once (if allowed) for an unknown `kid`.
    pub async fn verify(&self, token: &str) -> Result<Verified, JwtError> {
        match self.verify_at(token, now_secs()) {
            Err(JwtError::UnknownKey) => {
                let Some(jwks) = &self.jwks else {
                    return Err(JwtError::UnknownKey);
                };
                match jwks.refetch_for_unknown_kid().await {
                    Refetch::Fetched => self.verify_at(token, now_secs()),
                    Refetch::TooSoon | Refetch::Failed => Err(JwtError::UnknownKey),
                }
            }
            other => other,
        }
    }

    /// Verifies `token` at `now` (seconds since the epoch) with the keys held now.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Verified, JwtError> {
        let header = selecting_header(token)?;
        let alg = SigningAlg::from_header(&header.alg).ok_or(JwtError::UnsupportedAlg)?;
        let jwks_keys = self.jwks.as_ref().map(|j| j.keys());
        let jwks_keys: &[VerificationKey] = jwks_keys.as_deref().map_or(&[], |k| k.as_slice());
        let candidates = self.candidates(alg, header.kid.as_deref(), jwks_keys)?;
        for key in candidates {
            match jsonwebtoken::decode::<claims::Claims>(
                token,
                key.decoding(),
                self.rules.validation(key.alg()),
            ) {
                Ok(data) => return self.rules.check(data.claims, now),
                // Another key of the same algorithm may be the one (a kid-less token).
                Err(e) if JwtError::from_decode(&e) == JwtError::BadSignature => continue,
                Err(e) => return Err(JwtError::from_decode(&e)),
            }
        }
        Err(JwtError::BadSignature)
    }

    /// The keys that may have signed a token of `alg` and `kid`.
    fn candidates<'a>(
        &'a self,
        alg: SigningAlg,
        kid: Option<&str>,
        jwks_keys: &'a [VerificationKey],
    ) -> Result<Vec<&'a VerificationKey>, JwtError> {
        if alg == SigningAlg::Hs256 {
            // The HMAC secret is AUTH_SECRET and nothing else (never a key from the JWKS or
            // the PEM file, whatever the token says).
            return match &self.hs256 {
                Some(k) => Ok(vec![k]),
                None => Err(JwtError::UnsupportedAlg),
            };
        }
        let mut out: Vec<&VerificationKey> = jwks_keys
            .iter()
            .filter(|k| k.alg() == alg && (kid.is_none() || k.kid() == kid))
            .collect();
        let kid_known = kid.is_some_and(|kid| jwks_keys.iter().any(|k| k.kid() == Some(kid)));
        if out.is_empty() {
            out.extend(self.static_key.iter().filter(|k| k.alg() == alg));
        }
        if !out.is_empty() {
            return Ok(out);
        }
        if kid_known {
            // That kid is a key of another algorithm.
            return Err(JwtError::UnsupportedAlg);
        }
        if self.jwks.is_some() {
            return Err(JwtError::UnknownKey);
        }
        Err(JwtError::UnsupportedAlg)
    }
}

/// `jsonwebtoken` picks its crypto backend from its features, and panics at the first
/// verification if it cannot (both backends enabled by some other crate of the build): pick
/// ours explicitly at start instead.
fn install_crypto_provider() {
    if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    shared_proto::now_ms() / 1000
}

#[cfg(test)]
mod tests;
