//! An identity provider of the suites' own: key pairs made by the test (RSA 2048 with the
//! `rsa` crate, P-256 and Ed25519 with rcgen), their public JWKs and PEMs, and login JWTs
//! signed with them by `jsonwebtoken`, as Auth0, Keycloak and the like issue them. The JWKS
//! endpoint that publishes the keys is [`crate::jwks::JwksServer`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A signing key of the test provider.
pub struct SigningKey {
    pub kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    /// The public JWK, with `kid`, `alg` and `use` as providers publish them.
    jwk: Value,
    public_pem: String,
}

impl SigningKey {
    /// An RSA-2048 key (RS256).
    pub fn rsa(kid: &str) -> SigningKey {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::EncodePublicKey;
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("RSA key");
        let der = private.to_pkcs1_der().expect("PKCS#1");
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("SPKI PEM");
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("JWK");
        Self::new(
            kid,
            Algorithm::RS256,
            encoding,
            serde_json::to_value(jwk).expect("JWK json"),
            public_pem,
        )
    }

    /// A P-256 key (ES256).
    pub fn ec(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
        let point = pair.public_key_raw();
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        let encoding = EncodingKey::from_ec_der(&pair.serialize_der());
        Self::new(kid, Algorithm::ES256, encoding, jwk, pair.public_key_pem())
    }

    /// An Ed25519 key (EdDSA).
    pub fn ed25519(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key");
        let jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw()),
        });
        let encoding = EncodingKey::from_ed_der(&pair.serialize_der());
        Self::new(kid, Algorithm::EdDSA, encoding, jwk, pair.public_key_pem())
    }

    fn new(
        kid: &str,
        alg: Algorithm,
        encoding: EncodingKey,
        mut jwk: Value,
        public_pem: String,
    ) -> Self {
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = serde_json::to_value(alg).expect("alg");
        SigningKey {
            kid: kid.to_string(),
            alg,
            encoding,
            jwk,
            public_pem,
        }
    }

    /// The public JWK (what the JWKS publishes).
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The public key in PEM (SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// A JWT with `claims`, its header naming this key's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(Some(&self.kid), claims)
    }

    /// A JWT with `claims` whose header names `kid` (or none).
    pub fn sign_as(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

/// Claims of a login token for `sub` expiring `ttl_secs` from now (negative: in the past),
/// with `iss` and `aud` when given.
pub fn claims(sub: &str, ttl_secs: i64, iss: Option<&str>, aud: Option<&str>) -> Value {
    let exp = now_secs() as i64 + ttl_secs;
    let mut c = json!({"sub": sub, "exp": exp, "iat": now_secs()});
    if let Some(iss) = iss {
        c["iss"] = json!(iss);
    }
    if let Some(aud) = aud {
        c["aud"] = json!(aud);
    }
    c
}

/// `{"keys":[…]}` of `keys`.
pub fn jwks_json(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk().clone()).collect::<Vec<_>>()})
}

/// A token with `alg: none` and an empty signature.
pub fn unsigned(claims: &Value, kid: Option<&str>) -> String {
    let header = json!({"alg": "none", "kid": kid});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// An HS256 token "signed" with `key` (the `alg` confusion: a public key used as a secret),
/// its header naming `kid`.
pub fn hs256_with_key(key: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_string);
    let key = EncodingKey::from_secret(key).expect("HMAC key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}
