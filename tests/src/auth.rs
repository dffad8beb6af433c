//! JWTs for the suites: every gateway the harness starts has `AUTH_SECRET` =
//! [`TEST_AUTH_SECRET`], so `/ws` requires an HS256 JWT signed with it. [`WsClient::connect`]
//! adds one for [`TEST_SUB`] to the URL (`?token=…`) unless the URL already has a `token`.
//!
//! [`WsClient::connect`]: crate::WsClient::connect

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `AUTH_SECRET` of every harness gateway.
pub const TEST_AUTH_SECRET: &str = "test-secret-0123456789";
/// The `sub` of the harness's default clients.
pub const TEST_SUB: &str = "e2e-user";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs arbitrary claims with HS256 under `secret`.
pub fn sign_claims(secret: &str, claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("{header}.{payload}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{sig}")
}

/// A JWT for `sub`, valid for an hour, signed with `secret`.
pub fn mint_jwt(secret: &str, sub: &str) -> String {
    sign_claims(
        secret,
        &serde_json::json!({"sub": sub, "exp": now_secs() + 3600, "iat": now_secs()}),
    )
}

/// A harness JWT for `sub`.
pub fn test_jwt(sub: &str) -> String {
    mint_jwt(TEST_AUTH_SECRET, sub)
}

/// `url` with `token=<jwt>` added to its query.
pub fn with_token(url: &str, jwt: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}token={jwt}")
}

/// `url` with the default client's token, unless it carries a `token` already.
pub fn with_default_token(url: &str) -> String {
    if test_support::client::has_token(url) {
        url.to_string()
    } else {
        with_token(url, &test_jwt(TEST_SUB))
    }
}
