//! The lifetime a JWKS response gives itself (`Cache-Control: max-age=N`), and how long the
//! gateway keeps it: `max-age` within [`JWT_JWKS_MIN_REFRESH`, `JWT_JWKS_REFRESH`], so a
//! provider can make the gateway refresh more often but never less often than
//! `JWT_JWKS_REFRESH`, which is therefore the operator's bound on how long a key the provider
//! withdrew is still accepted. `no-store`/`no-cache` count as `max-age=0`.

use std::time::Duration;

/// `max-age` of a `Cache-Control` header value (None when it says nothing about lifetime).
pub fn max_age(header: &str) -> Option<Duration> {
    let mut found = None;
    for directive in header.split(',').map(str::trim) {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = value
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
        }
    }
    found
}

/// How long a fetched key set is kept before the next refresh.
pub fn keep_for(max_age: Option<Duration>, min_refresh: Duration, refresh: Duration) -> Duration {
    match max_age {
        Some(age) => age.clamp(min_refresh, refresh.max(min_refresh)),
        None => refresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        let s = Duration::from_secs;
        assert_eq!(max_age("public, max-age=300"), Some(s(300)));
        assert_eq!(max_age("max-age=\"60\", must-revalidate"), Some(s(60)));
        assert_eq!(max_age("MAX-AGE=7"), Some(s(7)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("max-age=600, no-cache"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(max_age(""), None);
    }

    #[test]
    fn keeps_within_bounds() {
        let s = Duration::from_secs;
        let (min, max) = (s(10), s(300));
        assert_eq!(keep_for(None, min, max), max);
        assert_eq!(keep_for(Some(s(60)), min, max), s(60));
        assert_eq!(keep_for(Some(s(0)), min, max), min);
        assert_eq!(keep_for(Some(s(86_400)), min, max), max);
    }
}
