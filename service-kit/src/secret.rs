//! Secrets in settings: kept out of logs and `Debug`, and long enough to mean something.

use std::fmt;

/// The shortest secret a setting accepts (`AUTH_SECRET`, `AI_SERVICE_TOKEN`, …).
pub const MIN_SECRET_LEN: usize = 16;

/// A secret value. `Debug` and `Display` print `***`; [`Secret::expose`] is the only way in.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a secret setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be at least {MIN_SECRET_LEN} characters")]
pub struct ShortSecret;

/// clap `value_parser` for secrets.
pub fn parse_secret(s: &str) -> Result<Secret, ShortSecret> {
    if s.chars().count() < MIN_SECRET_LEN {
        return Err(ShortSecret);
    }
    Ok(Secret(s.to_string()))
}

/// Why a bearer token setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadToken {
    #[error(transparent)]
    Short(#[from] ShortSecret),
    /// Clients send it in `Authorization: Bearer <token>`: a character that cannot be written
    /// in a header value would make it a token nobody can present.
    #[error("must be printable ASCII without spaces (it is sent in an HTTP header)")]
    NotAHeader,
}

/// clap `value_parser` of a bearer token a server checks (`ADMIN_TOKEN`): it takes any value,
/// which [`check_bearer_token`] checks at start, so that a refusal is one line that names the
/// setting but never shows the value (clap's own error would print it).
pub fn bearer_token(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret(s.to_string()))
}

/// Whether a bearer token is long enough and can be written in an `Authorization` header.
pub fn check_bearer_token(token: &Secret) -> Result<(), BadToken> {
    if token.0.chars().count() < MIN_SECRET_LEN {
        return Err(BadToken::Short(ShortSecret));
    }
    if !token.0.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BadToken::NotAHeader);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_and_never_printed() {
        assert_eq!(parse_secret("short"), Err(ShortSecret));
        let s = parse_secret("0123456789abcdef").unwrap();
        assert_eq!(s.expose(), "0123456789abcdef");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
    }

    #[test]
    fn bearer_tokens_fit_in_a_header() {
        let check = |s: &str| bearer_token(s).map(|t| check_bearer_token(&t)).unwrap();
        assert_eq!(check(""), Err(BadToken::Short(ShortSecret)));
        assert_eq!(check("0123456789abcdef\n"), Err(BadToken::NotAHeader));
        assert_eq!(check("0123456789 abcdef"), Err(BadToken::NotAHeader));
        assert_eq!(check("0123456789abcdéf"), Err(BadToken::NotAHeader));
        assert_eq!(check("0123456789abcdef-_.~+/="), Ok(()));
    }
}
