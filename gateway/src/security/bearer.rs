//! Where a client puts its JWT on `/ws`.
//!
//! A JWT travels either in the `token` query parameter or in the `Sec-WebSocket-Protocol`
//! header as an offered protocol `bearer.<jwt>` (browsers cannot set other headers on a
//! WebSocket). When a protocol carried it, the handshake answers with one protocol the client
//! offered: [`APP_PROTOCOL`] if it was offered too, else the `bearer.` entry itself.

/// The application protocol a client may offer next to its `bearer.<jwt>` entry; selected in
/// the handshake answer when offered.
pub const APP_PROTOCOL: &str = "streamline.v1";
/// Prefix of the `Sec-WebSocket-Protocol` entry that carries a JWT.
pub const BEARER_PROTOCOL_PREFIX: &str = "bearer.";
/// Where the client put its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedToken {
    pub token: String,
    /// The protocol to select in the handshake answer, when the token came in
    /// `Sec-WebSocket-Protocol`.
    pub protocol: Option<String>,
}

/// Finds the JWT in `Sec-WebSocket-Protocol` (`bearer.<jwt>`) or else in the `token` query
/// parameter.
pub fn offered_token(protocol_headers: &[&str], query_token: Option<&str>) -> Option<OfferedToken> {
    let offered: Vec<&str> = protocol_headers
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(entry) = offered
        .iter()
        .find(|p| p.starts_with(BEARER_PROTOCOL_PREFIX))
    {
        let token = entry[BEARER_PROTOCOL_PREFIX.len()..].to_string();
        let protocol = if offered.contains(&APP_PROTOCOL) {
            APP_PROTOCOL.to_string()
        } else {
            entry.to_string()
        };
        return Some(OfferedToken {
            token,
            protocol: Some(protocol),
        });
    }
    query_token.map(|t| OfferedToken {
        token: t.to_string(),
        protocol: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_in_the_protocol_header_or_the_query() {
        assert_eq!(
            offered_token(&["streamline.v1, bearer.abc"], Some("q")),
            Some(OfferedToken {
                token: "abc".into(),
                protocol: Some(APP_PROTOCOL.into())
            })
        );
        assert_eq!(
            offered_token(&["bearer.abc"], None),
            Some(OfferedToken {
                token: "abc".into(),
                protocol: Some("bearer.abc".into())
            })
        );
        assert_eq!(
            offered_token(&["chat"], Some("q")),
            Some(OfferedToken {
                token: "q".into(),
                protocol: None
            })
        );
        assert_eq!(offered_token(&[], None), None);
    }
}
