//! JWT authentication of `/ws`: HS256 under `AUTH_SECRET`.
//!
//! Verification is strict and allocation-bounded: at most [`MAX_TOKEN_BYTES`], exactly three
//! base64url parts, header `alg` must be `HS256` (so `none` and key-confusion tricks fail), the
//! signature is checked in constant time *before* the claims are parsed, `exp` is required and
//! must be in the future, `nbf` (if present) must be past, `sub` must be a non-empty string of
//! at most [`MAX_SUB_BYTES`].

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest accepted token.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest accepted `sub`.
pub const MAX_SUB_BYTES: usize = 256;

/// base64url, with or without padding (RFC 7515 says without; some libraries pad).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a token was refused (for logs and metrics; the client only sees 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    Missing,
    TooLong,
    Malformed,
    UnsupportedAlg,
    BadSignature,
    Expired,
    NotYetValid,
    BadSubject,
}

impl JwtError {
    pub fn as_str(self) -> &'static str {
        match self {
            JwtError::Missing => "missing",
            JwtError::TooLong => "too_long",
            JwtError::Malformed => "malformed",
            JwtError::UnsupportedAlg => "unsupported_alg",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::BadSubject => "bad_subject",
        }
    }

    /// Every reason, to pre-register metrics.
    pub const ALL: [JwtError; 8] = [
        JwtError::Missing,
        JwtError::TooLong,
        JwtError::Malformed,
        JwtError::UnsupportedAlg,
        JwtError::BadSignature,
        JwtError::Expired,
        JwtError::NotYetValid,
        JwtError::BadSubject,
    ];
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
}

/// A NumericDate (seconds since the epoch; fractions allowed).
fn numeric_date(v: &serde_json::Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

/// Checks HS256 JWTs under one secret.
#[derive(Clone)]
pub struct JwtVerifier {
    key: Vec<u8>,
}

impl JwtVerifier {
    pub fn new(secret: &[u8]) -> Self {
        JwtVerifier {
            key: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any size"),
        }
    }

    /// Verifies `token` at `now` (seconds since the epoch); returns its `sub`.
    pub fn verify(&self, token: &str, now: u64) -> Result<String, JwtError> {
        if token.is_empty() {
            return Err(JwtError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header = B64.decode(h64).map_err(|_| JwtError::Malformed)?;
        let header: Header = serde_json::from_slice(&header).map_err(|_| JwtError::Malformed)?;
        if header.alg != "HS256" {
            return Err(JwtError::UnsupportedAlg);
        }
        if header.crit.is_some() {
            // We understand no extension; RFC 7515 §4.1.11 says refuse.
            return Err(JwtError::Malformed);
        }
        let signature = B64.decode(s64).map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac();
        mac.update(h64.as_bytes());
        mac.update(b".");
        mac.update(p64.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::BadSignature)?;
        // Only a signed payload is parsed.
        let payload = B64.decode(p64).map_err(|_| JwtError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
        let exp = claims
            .exp
            .as_ref()
            .and_then(numeric_date)
            .ok_or(JwtError::Malformed)?;
        if exp <= now as f64 {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = claims.nbf.as_ref() {
            let nbf = numeric_date(nbf).ok_or(JwtError::Malformed)?;
            if nbf > now as f64 {
                return Err(JwtError::NotYetValid);
            }
        }
        match claims.sub {
            Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= MAX_SUB_BYTES => {
                Ok(s)
            }
            _ => Err(JwtError::BadSubject),
        }
    }

    /// Signs `claims` (for tests and tools; the gateway itself never issues JWTs).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = B64.encode(claims.to_string().as_bytes());
        let mut mac = self.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{header}.{payload}.{sig}")
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    shared_proto::now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef-secret";

    fn v() -> JwtVerifier {
        JwtVerifier::new(SECRET)
    }

    fn raw(header: &str, payload: &str, key: &[u8]) -> String {
        let h = B64.encode(header);
        let p = B64.encode(payload);
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn accepts_a_valid_token() {
        let t = v().sign(&json!({"sub":"alice","exp":2_000_000_000u64}));
        assert_eq!(v().verify(&t, 1_700_000_000), Ok("alice".into()));
        // Padding is tolerated.
        let padded = raw(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"bob","exp":2000000000.5}"#,
            SECRET,
        );
        assert_eq!(v().verify(&padded, 1_700_000_000), Ok("bob".into()));
    }

    #[test]
    fn refuses_every_kind_of_bad_token() {
        let now = 1_700_000_000;
        let good = json!({"sub":"alice","exp":2_000_000_000u64});
        let other = JwtVerifier::new(b"another-secret-0123");
        assert_eq!(
            v().verify(&other.sign(&good), now),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            v().verify(&v().sign(&json!({"sub":"a","exp":now})), now),
            Err(JwtError::Expired)
        );
        assert_eq!(
            v().verify(&v().sign(&json!({"sub":"a"})), now),
            Err(JwtError::Malformed)
        );
        assert_eq!(
            v().verify(&v().sign(&json!({"sub":"a","exp":"tomorrow"})), now),
            Err(JwtError::Malformed)
        );
        assert_eq!(
            v().verify(
                &v().sign(&json!({"sub":"a","exp":2_000_000_000u64,"nbf":now + 60})),
                now
            ),
            Err(JwtError::NotYetValid)
        );
        for sub in [json!(""), json!(5), json!("x".repeat(MAX_SUB_BYTES + 1))] {
            assert_eq!(
                v().verify(&v().sign(&json!({"sub":sub,"exp":2_000_000_000u64})), now),
                Err(JwtError::BadSubject)
            );
        }
        assert_eq!(
            v().verify(&v().sign(&json!({"exp":2_000_000_000u64})), now),
            Err(JwtError::BadSubject)
        );
        // alg=none, and HS512 / RS256 headers, even when "signed" with the secret.
        let p = r#"{"sub":"a","exp":2000000000}"#;
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(p.as_bytes())
        );
        assert_eq!(v().verify(&none, now), Err(JwtError::UnsupportedAlg));
        for alg in ["HS512", "RS256", "hs256"] {
            let t = raw(&format!(r#"{{"alg":"{alg}"}}"#), p, SECRET);
            assert_eq!(v().verify(&t, now), Err(JwtError::UnsupportedAlg));
        }
        let crit = raw(r#"{"alg":"HS256","crit":["x"]}"#, p, SECRET);
        assert_eq!(v().verify(&crit, now), Err(JwtError::Malformed));
        for bad in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"] {
            assert!(v().verify(bad, now).is_err(), "{bad}");
        }
        assert_eq!(
            v().verify(&"a".repeat(MAX_TOKEN_BYTES + 1), now),
            Err(JwtError::TooLong)
        );
        // A tampered payload fails the signature.
        let t = v().sign(&good);
        let mut parts: Vec<&str> = t.split('.').collect();
        let evil = B64.encode(r#"{"sub":"mallory","exp":2000000000}"#);
        parts[1] = &evil;
        assert_eq!(
            v().verify(&parts.join("."), now),
            Err(JwtError::BadSignature)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512),
            ..ProptestConfig::default()
        })]

        /// Arbitrary strings never panic and never verify.
        #[test]
        fn arbitrary_tokens_never_verify(s in "\\PC{0,300}") {
            prop_assert!(v().verify(&s, 1_700_000_000).is_err());
        }

        /// Structured junk: three base64url parts of arbitrary bytes.
        #[test]
        fn structured_junk_never_verifies(
            h in proptest::collection::vec(any::<u8>(), 0..64),
            p in proptest::collection::vec(any::<u8>(), 0..128),
            s in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let t = format!("{}.{}.{}", B64.encode(h), B64.encode(p), B64.encode(s));
            prop_assert!(v().verify(&t, 1_700_000_000).is_err());
        }

        /// Any signed claims either verify to their `sub` or fail cleanly.
        #[test]
        fn signed_claims_verify_consistently(sub in "\\PC{0,40}", exp in 0u64..4_000_000_000) {
            let now = 2_000_000_000;
            let t = v().sign(&json!({"sub": sub, "exp": exp}));
            match v().verify(&t, now) {
                Ok(s) => {
                    prop_assert_eq!(&s, &sub);
                    prop_assert!(exp > now && !sub.is_empty());
                }
                Err(e) => prop_assert!(exp <= now || sub.is_empty(), "{:?}", e),
            }
        }
    }
}
