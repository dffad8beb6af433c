//! Resume tokens: HMAC-SHA256 of the session id under `AUTH_SECRET`.
//!
//! Any replica with the same secret can check a token, so a client can resume its session on
//! whichever gateway the load balancer picks. Verification is constant-time.
//!
//! A session opened with a JWT belongs to the token's `sub`: its resume token is the HMAC of
//! `"resume:v2:"` ‖ len(sub) as 4 bytes big-endian ‖ sub ‖ the 16 session id bytes, so it
//! verifies only for the same `sub` ([`ResumeTokens::issue_for`], [`ResumeTokens::verify_for`]).
//! Anonymous sessions (no `AUTH_SECRET`) keep the v1 token of `docs/PROTOCOL.md`. The two
//! inputs cannot collide (different prefixes), and a JWT's signing input (base64url text
//! without `:`) cannot equal either.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks resume tokens.
#[derive(Clone)]
pub struct ResumeTokens {
    secret: Vec<u8>,
}

impl ResumeTokens {
    pub fn new(secret: &[u8]) -> Self {
        ResumeTokens {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, session_id: Uuid) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any size"),
        };
        mac.update(b"resume:v1:");
        mac.update(session_id.as_bytes());
        mac
    }

    fn mac_for(&self, sub: Option<&str>, session_id: Uuid) -> HmacSha256 {
        let Some(sub) = sub else {
            return self.mac(session_id);
        };
        let mut mac = match HmacSha256::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any size"),
        };
        mac.update(b"resume:v2:");
        mac.update(&(sub.len() as u32).to_be_bytes());
        mac.update(sub.as_bytes());
        mac.update(session_id.as_bytes());
        mac
    }

    /// The token for a session owned by `sub` (None: an anonymous session, the v1 token).
    pub fn issue_for(&self, sub: Option<&str>, session_id: Uuid) -> String {
        hex::encode(self.mac_for(sub, session_id).finalize().into_bytes())
    }

    /// Whether `token` belongs to `session_id` owned by `sub` (constant-time).
    pub fn verify_for(&self, sub: Option<&str>, session_id: Uuid, token: &str) -> bool {
        match hex::decode(token) {
            Ok(bytes) => self.mac_for(sub, session_id).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    /// The token for a session.
    pub fn issue(&self, session_id: Uuid) -> String {
        hex::encode(self.mac(session_id).finalize().into_bytes())
    }

    /// Whether `token` belongs to `session_id` (constant-time).
    pub fn verify(&self, session_id: Uuid, token: &str) -> bool {
        match hex::decode(token) {
            Ok(bytes) => self.mac(session_id).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_session_and_secret() {
        let t = ResumeTokens::new(b"0123456789abcdef");
        let s = Uuid::new_v4();
        let token = t.issue(s);
        assert!(t.verify(s, &token));
        assert!(!t.verify(Uuid::new_v4(), &token));
        assert!(!ResumeTokens::new(b"another secret!!").verify(s, &token));
        assert!(!t.verify(s, "zz"));
        assert!(!t.verify(s, ""));
    }

    #[test]
    fn tokens_of_a_subject_verify_only_for_that_subject() {
        let t = ResumeTokens::new(b"0123456789abcdef");
        let s = Uuid::new_v4();
        let alice = t.issue_for(Some("alice"), s);
        assert!(t.verify_for(Some("alice"), s, &alice));
        assert!(!t.verify_for(Some("bob"), s, &alice));
        assert!(!t.verify_for(None, s, &alice));
        assert!(!t.verify_for(Some("alice"), Uuid::new_v4(), &alice));
        // Anonymous tokens are the v1 ones, and do not serve a subject.
        assert_eq!(t.issue_for(None, s), t.issue(s));
        assert!(!t.verify_for(Some("alice"), s, &t.issue(s)));
        // Length-prefixed: ("ab", …) and ("a", "b…") cannot be confused.
        assert_ne!(t.issue_for(Some("ab"), s), t.issue_for(Some("a"), s));
    }
}
