//! Checking `REDIS_URL` before anything starts.

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

/// clap `value_parser` for `REDIS_URL`.
pub fn parse_redis_url(url: &str) -> Result<String, String> {
    check_redis_url(url).map(|()| url.to_string())
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
    }
}
