//! A Redis URL as logs show it: passwords replaced by `***` (the user part of the URL, and a
//! Sentinel URL's `sentinelPassword`), everything else kept so that an operator can tell which
//! endpoint is meant.

/// `redis://user:secret@host` → `redis://user:***@host`, and a Sentinel URL's
/// `sentinelPassword=secret` → `sentinelPassword=***`, for logs.
pub fn redact(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    };
    const PARAM: &str = "sentinelPassword=";
    match url.find(PARAM) {
        Some(at) => {
            let value_start = at + PARAM.len();
            let value_end = url[value_start..]
                .find('&')
                .map_or(url.len(), |i| value_start + i);
            format!("{}***{}", &url[..value_start], &url[value_end..])
        }
        None => url,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_the_password() {
        assert_eq!(super::redact("redis://u:pw@h:1"), "redis://u:***@h:1");
        assert_eq!(super::redact("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(super::redact("redis://h:1"), "redis://h:1");
        assert_eq!(
            super::redact(
                "redis-sentinel://h:1?sentinelServiceName=m&sentinelPassword=pw&node=x:2"
            ),
            "redis-sentinel://h:1?sentinelServiceName=m&sentinelPassword=***&node=x:2"
        );
    }
}
