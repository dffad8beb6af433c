//! Checking and printing `REDIS_URL`.

/// Accepts the schemes fred understands (`redis`, `rediss`, and their `-cluster` forms).
pub fn check_redis_url(url: &str) -> Result<(), String> {
    let scheme = url.split("://").next().unwrap_or("");
    if url.contains("://")
        && matches!(
            scheme,
            "redis" | "rediss" | "redis-cluster" | "rediss-cluster"
        )
    {
        Ok(())
    } else {
        Err(format!("REDIS_URL has an unknown scheme: {url:?}"))
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_redis_url("redis://127.0.0.1:6379").is_ok());
        assert!(check_redis_url("redis-cluster://a:1?node=b:2").is_ok());
        assert!(check_redis_url("http://x").is_err());
        assert!(check_redis_url("localhost:6379").is_err());
        assert_eq!(redact_url("redis://u:pw@h:1"), "redis://u:***@h:1");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }
}
