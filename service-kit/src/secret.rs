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
}
