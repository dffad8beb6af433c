//! The request id of one HTTP request: the caller's `X-Request-Id` when it is sane (a proxy or
//! the gateway chose it, and logs on both sides then share it), otherwise a fresh one. It is
//! echoed as `X-Request-Id`, logged on the access line and recorded on the request's span.

/// The header.
pub const X_REQUEST_ID: &str = "x-request-id";

/// Longest id taken from a caller.
pub const MAX_LEN: usize = 128;

/// One request's id (also in the request's extensions, for handlers that want it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The caller's id if it is sane (1 to [`MAX_LEN`] characters of `A-Z a-z 0-9 - _ . : @ + = /`:
    /// nothing that could break a log line or smuggle a header), else a new one.
    pub fn from_header(value: Option<&[u8]>) -> Self {
        match value {
            Some(v) if is_sane(v) => RequestId(String::from_utf8_lossy(v).into_owned()),
            _ => Self::generate(),
        }
    }

    /// A new random id (32 hex digits).
    pub fn generate() -> Self {
        RequestId(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_sane(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= MAX_LEN
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@+=/".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_id_is_kept_and_anything_else_replaced() {
        assert_eq!(
            RequestId::from_header(Some(b"abc-123_x.y")).as_str(),
            "abc-123_x.y"
        );
        for bad in [
            &b""[..],
            b"has space",
            b"new\nline",
            b"quote\"",
            &[b'a'; 129][..],
            "é".as_bytes(),
        ] {
            let id = RequestId::from_header(Some(bad));
            assert_eq!(id.as_str().len(), 32, "{bad:?}");
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(RequestId::from_header(None), RequestId::from_header(None));
    }
}
