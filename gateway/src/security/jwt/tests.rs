//! The verifier's contract: what verifies, every way a token is refused, `alg` confusion,
//! `none`, `kid` selection, the claims, and `JWT_PUBLIC_KEY_FILE`'s checks; properties over
//! arbitrary input.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::json;
use sha2::Sha256;

use super::pem_key::{key_from_pem, PemKeyError};
use super::*;
use crate::security::jwks::url::JwksUrl;

const SECRET: &[u8] = b"0123456789abcdef-secret";
const NOW: u64 = 1_700_000_000;
const LATER: u64 = 2_000_000_000;

/// A key pair made by the test: its signing key, public JWK and public PEM.
struct TestKey {
    alg: Algorithm,
    signing: EncodingKey,
    jwk: Jwk,
    public_pem: String,
}

impl TestKey {
    fn rsa(bits: usize) -> TestKey {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::EncodePublicKey;
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).unwrap();
        let der = private.to_pkcs1_der().unwrap();
        let signing = EncodingKey::from_rsa_der(der.as_bytes());
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        let jwk = Jwk::from_encoding_key(&signing, Algorithm::RS256).unwrap();
        TestKey {
            alg: Algorithm::RS256,
            signing,
            jwk,
            public_pem,
        }
    }

    fn rcgen(alg: Algorithm, rcgen_alg: &'static rcgen::SignatureAlgorithm) -> TestKey {
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
        let signing = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_der(&pair.serialize_der()),
            _ => EncodingKey::from_ec_der(&pair.serialize_der()),
        };
        let raw = pair.public_key_raw();
        let jwk: Jwk = serde_json::from_value(match alg {
            Algorithm::EdDSA => json!({"kty":"OKP","crv":"Ed25519","x":B64.encode(raw)}),
            _ => json!({"kty":"EC","crv":"P-256","x":B64.encode(&raw[1..33]),"y":B64.encode(&raw[33..])}),
        })
        .unwrap();
        TestKey {
            alg,
            signing,
            jwk,
            public_pem: pair.public_key_pem(),
        }
    }

    fn es256() -> TestKey {
        Self::rcgen(Algorithm::ES256, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    fn ed25519() -> TestKey {
        Self::rcgen(Algorithm::EdDSA, &rcgen::PKCS_ED25519)
    }

    /// Its public key as a JWKS entry named `kid`.
    fn verification_key(&self, kid: &str) -> VerificationKey {
        let mut v = serde_json::to_value(&self.jwk).unwrap();
        v["kid"] = json!(kid);
        jwk::key_from_jwk(&v).unwrap()
    }

    fn sign(&self, kid: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.signing).unwrap()
    }
}

/// One RSA key for the whole test binary (generation is the slow part).
fn rsa_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::rsa(2048))
}

fn rules() -> ClaimRules {
    ClaimRules::new(None, &[], Duration::ZERO)
}

fn hs() -> JwtVerifier {
    JwtVerifier::new(
        Some(VerificationKey::hs256(SECRET).unwrap()),
        None,
        None,
        rules(),
    )
}

/// A verifier holding `keys` as its JWKS (whose URL answers nothing), and `static_key`.
fn with_jwks(
    keys: Vec<VerificationKey>,
    static_key: Option<VerificationKey>,
    hs256: bool,
) -> (JwtVerifier, Arc<Jwks>) {
    let url = JwksUrl::parse("http://127.0.0.1:9/jwks").unwrap();
    let jwks = Arc::new(Jwks::new(url, Duration::from_secs(300), Duration::from_secs(60)).unwrap());
    jwks.hold_for_test(keys);
    let hs256 = hs256.then(|| VerificationKey::hs256(SECRET).unwrap());
    (
        JwtVerifier::new(hs256, static_key, Some(jwks.clone()), rules()),
        jwks,
    )
}

fn hmac_token(header: &str, payload: &str, key: &[u8]) -> String {
    let h = B64.encode(header);
    let p = B64.encode(payload);
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn sign_hs(claims: &serde_json::Value) -> String {
    hmac_token(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims.to_string(),
        SECRET,
    )
}

fn verified(sub: &str, exp: u64) -> Result<Verified, JwtError> {
    Ok(Verified {
        sub: sub.into(),
        exp,
    })
}

#[test]
fn accepts_a_valid_token() {
    let t = sign_hs(&json!({"sub":"alice","exp":LATER}));
    assert_eq!(hs().verify_at(&t, NOW), verified("alice", LATER));
    // A fractional exp is rounded down in what the connection keeps.
    let t = sign_hs(&json!({"sub":"bob","exp":2000000000.5}));
    assert_eq!(hs().verify_at(&t, NOW), verified("bob", LATER));
    // Padding is refused: JWS uses base64url without it (RFC 7515 §2).
    let padded = format!("{}=", sign_hs(&json!({"sub":"bob","exp":LATER})));
    assert!(hs().verify_at(&padded, NOW).is_err());
}

#[test]
fn refuses_every_kind_of_bad_token() {
    let good = json!({"sub":"alice","exp":LATER});
    let other = hmac_token(
        r#"{"alg":"HS256"}"#,
        &good.to_string(),
        b"another-secret-0123",
    );
    assert_eq!(hs().verify_at(&other, NOW), Err(JwtError::BadSignature));
    assert_eq!(
        hs().verify_at(&sign_hs(&json!({"sub":"a","exp":NOW})), NOW),
        Err(JwtError::Expired)
    );
    assert_eq!(
        hs().verify_at(&sign_hs(&json!({"sub":"a"})), NOW),
        Err(JwtError::Malformed)
    );
    assert_eq!(
        hs().verify_at(&sign_hs(&json!({"sub":"a","exp":"tomorrow"})), NOW),
        Err(JwtError::Malformed)
    );
    assert_eq!(
        hs().verify_at(
            &sign_hs(&json!({"sub":"a","exp":LATER,"nbf":NOW + 60})),
            NOW
        ),
        Err(JwtError::NotYetValid)
    );
    for sub in [json!(""), json!(5), json!("x".repeat(MAX_SUB_BYTES + 1))] {
        assert_eq!(
            hs().verify_at(&sign_hs(&json!({"sub":sub,"exp":LATER})), NOW),
            Err(JwtError::BadSubject)
        );
    }
    assert_eq!(
        hs().verify_at(&sign_hs(&json!({"exp":LATER})), NOW),
        Err(JwtError::BadSubject)
    );
    // alg=none, and HS512 / RS256 / lower-case headers, even when "signed" with the secret.
    let p = r#"{"sub":"a","exp":2000000000}"#;
    let none = format!("{}.{}.", B64.encode(r#"{"alg":"none"}"#), B64.encode(p));
    assert_eq!(hs().verify_at(&none, NOW), Err(JwtError::UnsupportedAlg));
    for alg in ["HS512", "RS256", "hs256", "None"] {
        let t = hmac_token(&format!(r#"{{"alg":"{alg}"}}"#), p, SECRET);
        assert_eq!(
            hs().verify_at(&t, NOW),
            Err(JwtError::UnsupportedAlg),
            "{alg}"
        );
    }
    // An extension we do not understand is refused (RFC 7515 §4.1.11).
    let crit = hmac_token(r#"{"alg":"HS256","crit":["x"],"x":1}"#, p, SECRET);
    assert_eq!(hs().verify_at(&crit, NOW), Err(JwtError::Malformed));
    for bad in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"] {
        assert!(hs().verify_at(bad, NOW).is_err(), "{bad}");
    }
    assert_eq!(hs().verify_at("", NOW), Err(JwtError::Missing));
    assert_eq!(
        hs().verify_at(&"a".repeat(MAX_TOKEN_BYTES + 1), NOW),
        Err(JwtError::TooLong)
    );
    // A tampered payload fails the signature.
    let t = sign_hs(&good);
    let mut parts: Vec<&str> = t.split('.').collect();
    let evil = B64.encode(r#"{"sub":"mallory","exp":2000000000}"#);
    parts[1] = &evil;
    assert_eq!(
        hs().verify_at(&parts.join("."), NOW),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn leeway_covers_clock_skew_on_exp_and_nbf() {
    let v = JwtVerifier::new(
        Some(VerificationKey::hs256(SECRET).unwrap()),
        None,
        None,
        ClaimRules::new(None, &[], Duration::from_secs(5)),
    );
    let t = |claims| sign_hs(&claims);
    assert!(v
        .verify_at(&t(json!({"sub":"a","exp":NOW - 4})), NOW)
        .is_ok());
    assert_eq!(
        v.verify_at(&t(json!({"sub":"a","exp":NOW - 5})), NOW),
        Err(JwtError::Expired)
    );
    assert!(v
        .verify_at(&t(json!({"sub":"a","exp":LATER,"nbf":NOW + 5})), NOW)
        .is_ok());
    assert_eq!(
        v.verify_at(&t(json!({"sub":"a","exp":LATER,"nbf":NOW + 6})), NOW),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn issuer_and_audience() {
    let v = JwtVerifier::new(
        Some(VerificationKey::hs256(SECRET).unwrap()),
        None,
        None,
        ClaimRules::new(
            Some("https://idp.example/"),
            &["api".to_string(), "chat".to_string()],
            Duration::ZERO,
        ),
    );
    let t = |claims| sign_hs(&claims);
    let iss = "https://idp.example/";
    assert!(v
        .verify_at(
            &t(json!({"sub":"a","exp":LATER,"iss":iss,"aud":"chat"})),
            NOW
        )
        .is_ok());
    assert!(v
        .verify_at(
            &t(json!({"sub":"a","exp":LATER,"iss":iss,"aud":["other","api"]})),
            NOW
        )
        .is_ok());
    for (claims, why) in [
        (
            json!({"sub":"a","exp":LATER,"aud":"chat"}),
            JwtError::BadIssuer,
        ),
        (
            json!({"sub":"a","exp":LATER,"iss":"https://idp.example","aud":"chat"}),
            JwtError::BadIssuer,
        ),
        (
            json!({"sub":"a","exp":LATER,"iss":5,"aud":"chat"}),
            JwtError::BadIssuer,
        ),
        (
            json!({"sub":"a","exp":LATER,"iss":iss}),
            JwtError::BadAudience,
        ),
        (
            json!({"sub":"a","exp":LATER,"iss":iss,"aud":"other"}),
            JwtError::BadAudience,
        ),
        (
            json!({"sub":"a","exp":LATER,"iss":iss,"aud":["x","y"]}),
            JwtError::BadAudience,
        ),
    ] {
        assert_eq!(v.verify_at(&t(claims.clone()), NOW), Err(why), "{claims}");
    }
    // Without JWT_AUDIENCE, a token meant for some audience is not for us (RFC 7519 §4.1.3).
    assert_eq!(
        hs().verify_at(&t(json!({"sub":"a","exp":LATER,"aud":"api"})), NOW),
        Err(JwtError::BadAudience)
    );
}

#[test]
fn asymmetric_keys_verify_under_their_own_algorithm_only() {
    let (rsa, ec, ed) = (rsa_key(), TestKey::es256(), TestKey::ed25519());
    let (v, _) = with_jwks(
        vec![
            rsa.verification_key("r1"),
            ec.verification_key("e1"),
            ed.verification_key("d1"),
        ],
        None,
        false,
    );
    let claims = json!({"sub":"alice","exp":LATER});
    for (key, kid) in [(rsa, "r1"), (&ec, "e1"), (&ed, "d1")] {
        assert_eq!(
            v.verify_at(&key.sign(Some(kid), &claims), NOW),
            verified("alice", LATER),
            "{kid}"
        );
        // Without a kid: every key of the token's algorithm is tried.
        assert_eq!(
            v.verify_at(&key.sign(None, &claims), NOW),
            verified("alice", LATER)
        );
    }
    // A kid of a key of another algorithm: that key never verifies this algorithm.
    assert_eq!(
        v.verify_at(&rsa.sign(Some("e1"), &claims), NOW),
        Err(JwtError::UnsupportedAlg)
    );
    // The right algorithm and kid, the wrong signer.
    let other_ec = TestKey::es256();
    assert_eq!(
        v.verify_at(&other_ec.sign(Some("e1"), &claims), NOW),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        v.verify_at(&other_ec.sign(None, &claims), NOW),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn an_rsa_public_key_is_never_an_hmac_secret() {
    let rsa = rsa_key();
    let claims = json!({"sub":"mallory","exp":LATER}).to_string();
    // The classic confusion: HS256 "signed" with the public key's bytes (PEM, DER, JWK n).
    let n = match &rsa.jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(p) => p.n.clone(),
        _ => unreachable!(),
    };
    let pem = rsa.public_pem.clone();
    let forged: Vec<String> = [pem.as_bytes(), n.as_bytes()]
        .iter()
        .flat_map(|key| {
            [
                hmac_token(r#"{"alg":"HS256","kid":"r1"}"#, &claims, key),
                hmac_token(r#"{"alg":"HS256"}"#, &claims, key),
            ]
        })
        .collect();
    let pem_key = key_from_pem("test.pem", pem.as_bytes()).unwrap();
    // Only asymmetric keys: HS256 has no key at all.
    let (v, _) = with_jwks(
        vec![rsa.verification_key("r1")],
        Some(pem_key.clone()),
        false,
    );
    for t in &forged {
        assert_eq!(v.verify_at(t, NOW), Err(JwtError::UnsupportedAlg));
    }
    // With AUTH_SECRET as well: HS256 means AUTH_SECRET and nothing else.
    let (v, _) = with_jwks(vec![rsa.verification_key("r1")], Some(pem_key), true);
    for t in &forged {
        assert_eq!(v.verify_at(t, NOW), Err(JwtError::BadSignature));
    }
    // And `none` has no key whatever is configured.
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","kid":"r1"}"#),
        B64.encode(&claims)
    );
    assert_eq!(v.verify_at(&none, NOW), Err(JwtError::UnsupportedAlg));
    // An RS256 header over an HMAC signature does not verify with the RSA key either.
    let rs_hmac = hmac_token(r#"{"alg":"RS256","kid":"r1"}"#, &claims, SECRET);
    assert_eq!(v.verify_at(&rs_hmac, NOW), Err(JwtError::BadSignature));
}

#[tokio::test]
async fn an_unknown_kid_asks_for_one_refetch_then_is_refused() {
    let ec = TestKey::es256();
    let pem = key_from_pem("ec.pem", ec.public_pem.as_bytes()).unwrap();
    let (v, _) = with_jwks(vec![ec.verification_key("e1")], None, false);
    let claims = json!({"sub":"alice","exp":LATER});
    let t = ec.sign(Some("rotated-in"), &claims);
    assert_eq!(v.verify_at(&t, NOW), Err(JwtError::UnknownKey));
    // The JWKS here answers nothing: the refetch fails, the token stays refused, and the next
    // one within JWT_JWKS_MIN_REFRESH does not fetch at all.
    assert_eq!(v.verify(&t).await, Err(JwtError::UnknownKey));
    assert_eq!(v.verify(&t).await, Err(JwtError::UnknownKey));
    // The PEM key (which has no kid) serves tokens whose kid the JWKS does not know.
    let (v, _) = with_jwks(vec![], Some(pem), false);
    assert!(v.verify_at(&t, NOW).is_ok());
    assert!(v.verify_at(&ec.sign(None, &claims), NOW).is_ok());
    // Before the first fetch, a JWKS-only verifier has no key: every token is refused.
    let (v, _) = with_jwks(vec![], None, false);
    assert!(!v.has_keys());
    assert_eq!(v.verify_at(&t, NOW), Err(JwtError::UnknownKey));
}

#[test]
fn public_key_files() {
    let rsa = rsa_key();
    let key = key_from_pem("rsa.pem", rsa.public_pem.as_bytes()).unwrap();
    assert_eq!((key.alg(), key.kid()), (SigningAlg::Rs256, None));
    let pkcs1 = {
        use rsa::pkcs1::EncodeRsaPublicKey;
        use rsa::pkcs8::DecodePublicKey;
        let public = rsa::PublicKey::from_public_key_pem(&rsa.public_pem).unwrap();
        public.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap()
    };
    assert_eq!(
        key_from_pem("rsa1.pem", pkcs1.as_bytes()).unwrap().alg(),
        SigningAlg::Rs256
    );
    let ec = TestKey::es256();
    let key = key_from_pem("ec.pem", ec.public_pem.as_bytes()).unwrap();
    assert_eq!(key.alg(), SigningAlg::Es256);
    let ed = TestKey::ed25519();
    assert_eq!(
        key_from_pem("ed.pem", ed.public_pem.as_bytes())
            .unwrap()
            .alg(),
        SigningAlg::EdDsa
    );
    // Each verifies its own tokens.
    let claims = json!({"sub":"alice","exp":LATER});
    for k in [rsa, &ec, &ed] {
        let v = JwtVerifier::new(
            None,
            Some(key_from_pem("k.pem", k.public_pem.as_bytes()).unwrap()),
            None,
            rules(),
        );
        assert_eq!(
            v.verify_at(&k.sign(None, &claims), NOW),
            verified("alice", LATER)
        );
        assert_eq!(
            v.verify_at(&k.sign(Some("any-kid"), &claims), NOW),
            verified("alice", LATER)
        );
    }
    let refuse = |text: &str| key_from_pem("f.pem", text.as_bytes()).unwrap_err();
    let private = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    assert!(matches!(
        refuse(&private.serialize_pem()),
        PemKeyError::PrivateKey(_)
    ));
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    assert!(matches!(
        refuse(&p384.public_key_pem()),
        PemKeyError::UnsupportedCurve { .. }
    ));
    let cert = rcgen::CertificateParams::new(vec!["x".into()])
        .unwrap()
        .self_signed(&private)
        .unwrap();
    assert!(matches!(refuse(&cert.pem()), PemKeyError::Certificate(_)));
    let weak = TestKey::rsa(1024);
    assert!(matches!(
        refuse(&weak.public_pem),
        PemKeyError::WeakRsa { bits: 1024, .. }
    ));
    assert!(matches!(refuse("not a key"), PemKeyError::NotPem(_)));
    let two = format!("{}{}", ec.public_pem, ed.public_pem);
    assert!(matches!(refuse(&two), PemKeyError::Several(_, 2)));
    assert!(matches!(
        refuse("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
        PemKeyError::Unsupported { .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    /// Arbitrary strings never panic and never verify.
    #[test]
    fn arbitrary_tokens_never_verify(s in "\\PC{0,300}") {
        prop_assert!(hs().verify_at(&s, NOW).is_err());
    }

    /// Structured junk: three base64url parts of arbitrary bytes.
    #[test]
    fn structured_junk_never_verifies(
        h in proptest::collection::vec(any::<u8>(), 0..64),
        p in proptest::collection::vec(any::<u8>(), 0..128),
        s in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let t = format!("{}.{}.{}", B64.encode(h), B64.encode(p), B64.encode(s));
        prop_assert!(hs().verify_at(&t, NOW).is_err());
    }

    /// Headers of any alg and kid over a payload that would pass, signed with the secret:
    /// only HS256 verifies.
    #[test]
    fn only_the_pinned_algorithm_verifies(alg in "\\PC{0,8}", kid in proptest::option::of("\\PC{0,8}")) {
        let header = json!({"alg": alg, "kid": kid}).to_string();
        let t = hmac_token(&header, &json!({"sub":"a","exp":LATER}).to_string(), SECRET);
        let r = hs().verify_at(&t, NOW);
        prop_assert_eq!(r.is_ok(), alg == "HS256", "{:?}", r);
    }

    /// Any signed claims either verify to their `sub` or fail cleanly.
    #[test]
    fn signed_claims_verify_consistently(sub in "\\PC{0,40}", exp in 0u64..4_000_000_000) {
        let now = LATER;
        let t = sign_hs(&json!({"sub": sub, "exp": exp}));
        match hs().verify_at(&t, now) {
            Ok(v) => {
                prop_assert_eq!(&v.sub, &sub);
                prop_assert!(exp > now && !sub.is_empty());
            }
            Err(e) => prop_assert!(exp <= now || sub.is_empty(), "{:?}", e),
        }
    }
}
