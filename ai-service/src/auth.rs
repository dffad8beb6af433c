//! A bearer token of an API: `AI_SERVICE_TOKEN` on every `/v1` route of the API port,
//! `ADMIN_TOKEN` on every `/admin` route of the admin port. When set, the route requires
//! `Authorization: Bearer <token>`, compared in constant time; anything else is 401
//! `{"error":{"code":"unauthorized"}}`. `/healthz`, `/readyz` and `/metrics` stay open (probes
//! and scrapers; they reveal no message content).

use actix_web::http::header::HeaderValue;

/// The expected bearer token, if any.
#[derive(Clone, Default)]
pub struct ApiAuth {
    expected: Option<Vec<u8>>,
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiAuth")
            .field("required", &self.expected.is_some())
            .finish()
    }
}

/// Constant-time equality (the time depends on the lengths only).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i).copied().unwrap_or(!*x);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

impl ApiAuth {
    /// `None`: no token required.
    pub fn new(token: Option<&service_kit::Secret>) -> Self {
        ApiAuth {
            expected: token.map(|t| t.expose().as_bytes().to_vec()),
        }
    }

    pub fn required(&self) -> bool {
        self.expected.is_some()
    }

    /// Whether a request with this `Authorization` header may pass.
    pub fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(expected) = &self.expected else {
            return true;
        };
        let Some(value) = authorization.map(HeaderValue::as_bytes) else {
            return false;
        };
        // "Bearer" is case-insensitive (RFC 7235), the token is not.
        if value.len() < 7 || !value[..7].eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        ct_eq(&value[7..], expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn checks_the_bearer_token() {
        let open = ApiAuth::new(None);
        assert!(open.allows(None));
        assert!(!open.required());
        let token = service_kit::parse_secret("0123456789abcdef").unwrap();
        let a = ApiAuth::new(Some(&token));
        assert!(a.allows(Some(&hv("Bearer 0123456789abcdef"))));
        assert!(a.allows(Some(&hv("bearer 0123456789abcdef"))));
        assert!(!a.allows(None));
        assert!(!a.allows(Some(&hv("Bearer 0123456789abcdeF"))));
        assert!(!a.allows(Some(&hv("Bearer 0123456789abcde"))));
        assert!(!a.allows(Some(&hv("Bearer 0123456789abcdef0"))));
        assert!(!a.allows(Some(&hv("Basic 0123456789abcdef"))));
        assert!(!a.allows(Some(&hv("0123456789abcdef"))));
        assert!(!a.allows(Some(&hv("Bearer"))));
        assert!(!a.allows(Some(&hv(""))));
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"ab", b"abc"));
        assert!(!ct_eq(b"\xff", b""));
    }
}
