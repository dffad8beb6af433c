//! `JWT_JWKS_URL`: where the provider publishes its keys. Keys fetched over plaintext could be
//! replaced by anyone on the path, who could then sign any token: the URL must be `https`,
//! except `http` to a loopback address (a sidecar on the same host, and the tests), which never
//! leaves the machine.

use std::net::IpAddr;

/// A `JWT_JWKS_URL` that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksUrlError {
    #[error("not a URL")]
    NotAUrl,
    #[error("must be https (http only to a loopback address such as 127.0.0.1)")]
    NotHttps,
}

/// A checked `JWT_JWKS_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUrl(reqwest::Url);

impl JwksUrl {
    /// clap `value_parser`.
    pub fn parse(s: &str) -> Result<Self, JwksUrlError> {
        let url = reqwest::Url::parse(s.trim()).map_err(|_| JwksUrlError::NotAUrl)?;
        match url.scheme() {
            "https" if url.host_str().is_some() => Ok(JwksUrl(url)),
            "http" if is_loopback(&url) => Ok(JwksUrl(url)),
            "http" | "https" => Err(JwksUrlError::NotHttps),
            _ => Err(JwksUrlError::NotAUrl),
        }
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.0
    }

    /// Whether this is a plaintext URL (to loopback).
    pub fn is_plaintext(&self) -> bool {
        self.0.scheme() == "http"
    }
}

impl std::fmt::Display for JwksUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_or_loopback_http() {
        for ok in [
            "https://tenant.auth0.com/.well-known/jwks.json",
            "https://kc.example.com/realms/app/protocol/openid-connect/certs",
            "http://127.0.0.1:8443/jwks",
            "http://[::1]:1/jwks",
            "http://localhost/jwks",
        ] {
            assert!(JwksUrl::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            JwksUrl::parse("http://idp.example.com/jwks"),
            Err(JwksUrlError::NotHttps)
        );
        assert_eq!(
            JwksUrl::parse("http://10.0.0.1/jwks"),
            Err(JwksUrlError::NotHttps)
        );
        assert_eq!(JwksUrl::parse("ftp://x/jwks"), Err(JwksUrlError::NotAUrl));
        assert_eq!(JwksUrl::parse("jwks.json"), Err(JwksUrlError::NotAUrl));
        assert!(JwksUrl::parse("http://127.0.0.1/jwks")
            .unwrap()
            .is_plaintext());
    }
}
