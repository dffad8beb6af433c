//! Resume tokens: HMAC-SHA256 of the session id under `AUTH_SECRET`.
//!
//! Any replica with the same secret can check a token, so a client can resume its session on
//! whichever gateway the load balancer picks. Verification is constant-time.

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
}
