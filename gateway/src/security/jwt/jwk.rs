//! One JWK of a provider's key set → a [`VerificationKey`], or why it is left out.
//!
//! Taken: signature keys (`use` absent or `sig`; `key_ops`, when present, including `verify`)
//! of type RSA (≥ [`MIN_RSA_BITS`] bits → RS256), EC on P-256 (→ ES256) and OKP Ed25519
//! (→ EdDSA). A key's `alg`, when present, must be the one its type pins. Left out: encryption
//! keys (Keycloak publishes an `RSA-OAEP` one next to its signing key), symmetric `oct` keys (a
//! JWKS is public: a secret in it is no secret, and an HMAC key from it would reopen `alg`
//! confusion), other curves and algorithms. A left-out key is not an error of the set; a set
//! with no usable key at all is (see `security::jwks::fetch`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::DecodingKey;

use super::key::{rsa_modulus_bits, SigningAlg, VerificationKey, MIN_RSA_BITS};

/// Why a JWK was left out of the key set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkRejected {
    #[error("not a JWK: {0}")]
    NotAJwk(String),
    #[error("not a signature key (use/key_ops)")]
    NotForSignatures,
    #[error("a symmetric (oct) key")]
    Symmetric,
    #[error("unsupported key type or curve")]
    UnsupportedType,
    #[error("alg {0} is not what its key type verifies")]
    AlgMismatch(String),
    #[error("RSA modulus of {0} bits (at least {MIN_RSA_BITS} required)")]
    WeakRsa(usize),
    #[error("invalid key parameters")]
    BadParameters,
}

/// The key of one JWK, pinned to the algorithm its type verifies.
pub fn key_from_jwk(value: &serde_json::Value) -> Result<VerificationKey, JwkRejected> {
    let jwk: Jwk =
        serde_json::from_value(value.clone()).map_err(|e| JwkRejected::NotAJwk(e.to_string()))?;
    let common = &jwk.common;
    match &common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err(JwkRejected::NotForSignatures),
    }
    if let Some(ops) = &common.key_operations {
        if !ops.iter().any(|op| matches!(op, KeyOperations::Verify)) {
            return Err(JwkRejected::NotForSignatures);
        }
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let bits = rsa_modulus_bits(&rsa.n).ok_or(JwkRejected::BadParameters)?;
            if bits < MIN_RSA_BITS {
                return Err(JwkRejected::WeakRsa(bits));
            }
            SigningAlg::Rs256
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            if decoded_len(&ec.x) != Some(32) || decoded_len(&ec.y) != Some(32) {
                return Err(JwkRejected::BadParameters);
            }
            SigningAlg::Es256
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            if decoded_len(&okp.x) != Some(32) {
                return Err(JwkRejected::BadParameters);
            }
            SigningAlg::EdDsa
        }
        AlgorithmParameters::OctetKey(_) => return Err(JwkRejected::Symmetric),
        _ => return Err(JwkRejected::UnsupportedType),
    };
    if let Some(declared) = common.key_algorithm {
        let matches = matches!(
            (declared, alg),
            (KeyAlgorithm::RS256, SigningAlg::Rs256)
                | (KeyAlgorithm::ES256, SigningAlg::Es256)
                | (KeyAlgorithm::EdDSA, SigningAlg::EdDsa)
        );
        if !matches {
            return Err(JwkRejected::AlgMismatch(format!("{declared:?}")));
        }
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| JwkRejected::BadParameters)?;
    Ok(VerificationKey::pinned(common.key_id.clone(), alg, key))
}

fn decoded_len(b64: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(b64).ok().map(|b| b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa(bits_bytes: usize) -> serde_json::Value {
        json!({"kty":"RSA","kid":"r1","n": b64(&vec![0xc5; bits_bytes]),"e":"AQAB"})
    }

    #[test]
    fn keys_are_pinned_by_their_type() {
        let k = key_from_jwk(&rsa(256)).unwrap();
        assert_eq!((k.kid(), k.alg()), (Some("r1"), SigningAlg::Rs256));
        let mut with_alg = rsa(256);
        with_alg["alg"] = json!("RS256");
        with_alg["use"] = json!("sig");
        assert_eq!(key_from_jwk(&with_alg).unwrap().alg(), SigningAlg::Rs256);
        let ec = json!({"kty":"EC","crv":"P-256","kid":"e1","x":b64(&[1; 32]),"y":b64(&[2; 32])});
        assert_eq!(key_from_jwk(&ec).unwrap().alg(), SigningAlg::Es256);
        let ed = json!({"kty":"OKP","crv":"Ed25519","x":b64(&[3; 32]),"alg":"EdDSA"});
        let ed = key_from_jwk(&ed).unwrap();
        assert_eq!((ed.kid(), ed.alg()), (None, SigningAlg::EdDsa));
    }

    #[test]
    fn unusable_keys_are_left_out() {
        let reject = |v: serde_json::Value| key_from_jwk(&v).unwrap_err();
        let mut enc = rsa(256);
        enc["use"] = json!("enc");
        assert_eq!(reject(enc), JwkRejected::NotForSignatures);
        let mut sign_only = rsa(256);
        sign_only["key_ops"] = json!(["sign"]);
        assert_eq!(reject(sign_only), JwkRejected::NotForSignatures);
        assert_eq!(reject(rsa(128)), JwkRejected::WeakRsa(1024));
        let mut confused = rsa(256);
        confused["alg"] = json!("HS256");
        assert!(matches!(reject(confused), JwkRejected::AlgMismatch(_)));
        let mut pss = rsa(256);
        pss["alg"] = json!("PS256");
        assert!(matches!(reject(pss), JwkRejected::AlgMismatch(_)));
        assert_eq!(
            reject(json!({"kty":"oct","k":b64(b"0123456789abcdef")})),
            JwkRejected::Symmetric
        );
        let p384 = json!({"kty":"EC","crv":"P-384","x":b64(&[1; 48]),"y":b64(&[2; 48])});
        assert_eq!(reject(p384), JwkRejected::UnsupportedType);
        let short = json!({"kty":"EC","crv":"P-256","x":b64(&[1; 31]),"y":b64(&[2; 32])});
        assert_eq!(reject(short), JwkRejected::BadParameters);
        assert_eq!(
            reject(json!({"kty":"RSA","n":"!!","e":"AQAB"})),
            JwkRejected::BadParameters
        );
        assert_eq!(reject(json!({"kty":5})), JwkRejected::UnsupportedType);
        assert!(matches!(reject(json!("x")), JwkRejected::NotAJwk(_)));
        assert_eq!(
            reject(json!({"kty":"XYZ","kid":"?"})),
            JwkRejected::UnsupportedType
        );
    }
}
