//! A verification key, pinned to the one algorithm it may verify.
//!
//! The pin comes from the key, never from a token: `AUTH_SECRET` is an HS256 secret; an RSA
//! key (JWKS or PEM) verifies RS256 only, a P-256 key ES256 only, an Ed25519 key EdDSA only.
//! A token's header `alg` merely selects among the keys whose pin it names, so an RSA public
//! key can never be used as an HMAC secret (the classic `alg` confusion), and `none` names no
//! key at all.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};

/// Smallest RSA modulus a key may have (NIST SP 800-131A; every provider uses 2048 or more).
pub const MIN_RSA_BITS: usize = 2048;

/// The algorithms a key can be pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// HMAC-SHA256 under `AUTH_SECRET`.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlg {
    /// Every algorithm, in a fixed order (see [`SigningAlg::index`]).
    pub const ALL: [SigningAlg; 4] = [
        SigningAlg::Hs256,
        SigningAlg::Rs256,
        SigningAlg::Es256,
        SigningAlg::EdDsa,
    ];

    /// The algorithm a token header names, if it is one of ours (exact, case-sensitive, as
    /// RFC 7518 registers them).
    pub fn from_header(alg: &str) -> Option<Self> {
        match alg {
            "HS256" => Some(SigningAlg::Hs256),
            "RS256" => Some(SigningAlg::Rs256),
            "ES256" => Some(SigningAlg::Es256),
            "EdDSA" => Some(SigningAlg::EdDsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Hs256 => "HS256",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// The position in [`SigningAlg::ALL`] (for per-algorithm tables).
    pub fn index(self) -> usize {
        match self {
            SigningAlg::Hs256 => 0,
            SigningAlg::Rs256 => 1,
            SigningAlg::Es256 => 2,
            SigningAlg::EdDsa => 3,
        }
    }

    pub(super) fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::Hs256 => Algorithm::HS256,
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
            SigningAlg::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// A key that is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("an empty HMAC secret")]
    EmptySecret,
}

/// One key and its pin.
#[derive(Clone)]
pub struct VerificationKey {
    /// The JWK's `kid` (PEM keys and `AUTH_SECRET` have none).
    kid: Option<String>,
    alg: SigningAlg,
    key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg.as_str())
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// `AUTH_SECRET`: an HS256 secret.
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        let key = DecodingKey::from_secret(secret).map_err(|_| KeyError::EmptySecret)?;
        Ok(VerificationKey {
            kid: None,
            alg: SigningAlg::Hs256,
            key,
        })
    }

    /// An asymmetric key whose algorithm the caller derived from the key material.
    pub(super) fn pinned(kid: Option<String>, alg: SigningAlg, key: DecodingKey) -> Self {
        VerificationKey { kid, alg, key }
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub(super) fn decoding(&self) -> &DecodingKey {
        &self.key
    }
}

/// The size in bits of an RSA modulus given in base64url (a JWK's `n`), or None when it is not
/// base64url.
pub(super) fn rsa_modulus_bits(n_b64: &str) -> Option<usize> {
    let n = URL_SAFE_NO_PAD.decode(n_b64).ok()?;
    let first = n.iter().position(|b| *b != 0)?;
    let lead = n[first];
    Some((n.len() - first - 1) * 8 + (8 - lead.leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_algorithms_are_exact() {
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::from_header(alg.as_str()), Some(alg));
            assert_eq!(SigningAlg::ALL[alg.index()], alg);
        }
        for other in [
            "none", "None", "hs256", "HS512", "RS384", "PS256", "ES384", "", "EDDSA",
        ] {
            assert_eq!(SigningAlg::from_header(other), None, "{other}");
        }
    }

    #[test]
    fn modulus_bits() {
        let n = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(rsa_modulus_bits(&n(&[0x80; 256])), Some(2048));
        assert_eq!(rsa_modulus_bits(&n(&[0x01, 0xff])), Some(9));
        // A leading zero byte (as some encoders write) does not count.
        let mut padded = vec![0u8];
        padded.extend([0xc0; 256]);
        assert_eq!(rsa_modulus_bits(&n(&padded)), Some(2048));
        assert_eq!(rsa_modulus_bits(&n(&[0, 0])), None);
        assert_eq!(rsa_modulus_bits("!!"), None);
        assert!(VerificationKey::hs256(b"").is_err());
    }
}
