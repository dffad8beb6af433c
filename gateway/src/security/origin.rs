//! The Origin policy of `/ws` (`ALLOWED_ORIGINS`).

/// An `ALLOWED_ORIGINS` entry that is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin like https://chat.example.com")]
pub struct OriginError(pub String);

/// Which browser origins may open `/ws` (`ALLOWED_ORIGINS`). A request without `Origin` is a
/// non-browser client and is always allowed (Origin protects browsers' ambient credentials,
/// which a non-browser client does not borrow).
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// `None`: any origin.
    allowed: Option<Vec<String>>,
}

fn normalize_origin(s: &str) -> String {
    s.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl OriginPolicy {
    /// Parses the comma list (a clap `value_parser`); empty or `*` allows any origin.
    pub fn parse(list: &str) -> Result<Self, OriginError> {
        let list = list.trim();
        if list.is_empty() {
            return Ok(OriginPolicy { allowed: None });
        }
        let mut allowed = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item == "*" {
                return Ok(OriginPolicy { allowed: None });
            }
            let ok = match reqwest::Url::parse(item) {
                Ok(u) => {
                    matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && matches!(u.path(), "" | "/")
                        && u.query().is_none()
                }
                Err(_) => false,
            };
            if !ok {
                return Err(OriginError(item.to_string()));
            }
            allowed.push(normalize_origin(item));
        }
        Ok(OriginPolicy {
            allowed: Some(allowed),
        })
    }

    pub fn allows_any(&self) -> bool {
        self.allowed.is_none()
    }

    /// Whether a handshake with this `Origin` header (None: absent) may proceed.
    pub fn allows(&self, origin: Option<&[u8]>) -> bool {
        let Some(allowed) = &self.allowed else {
            return true;
        };
        let Some(origin) = origin else {
            return true;
        };
        match std::str::from_utf8(origin) {
            Ok(o) => {
                let o = normalize_origin(o);
                allowed.contains(&o)
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_policy() {
        let any = OriginPolicy::parse("").unwrap();
        assert!(any.allows(Some(b"https://evil.example")));
        let p = OriginPolicy::parse("https://chat.example.com, http://localhost:8080/").unwrap();
        assert!(p.allows(None));
        assert!(p.allows(Some(b"https://chat.example.com")));
        assert!(p.allows(Some(b"HTTPS://Chat.Example.com")));
        assert!(p.allows(Some(b"http://localhost:8080")));
        assert!(!p.allows(Some(b"https://chat.example.com.evil.net")));
        assert!(!p.allows(Some(b"http://chat.example.com")));
        assert!(!p.allows(Some(b"null")));
        assert!(!p.allows(Some(b"\xff")));
        assert!(OriginPolicy::parse("*").unwrap().allows_any());
        assert!(OriginPolicy::parse("chat.example.com").is_err());
        assert!(OriginPolicy::parse("https://x.example/path").is_err());
    }
}
