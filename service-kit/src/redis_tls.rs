//! The TLS settings of the Redis connection (part of [`crate::RedisArgs`], shared by both
//! services), and the start-up check of `REDIS_URL` with them.
//!
//! The check is the store's own parser ([`store::RedisEndpoint::parse`]): what passes here is
//! exactly what the store connects with, TLS files read and parsed included.

use std::path::PathBuf;

use store::{RedisConfigError, RedisEndpoint, RedisTlsFiles};

/// `REDIS_TLS_*`: only read with a TLS `REDIS_URL` (`rediss://`, `rediss-cluster://`,
/// `rediss-sentinel://`); set with a plaintext URL, the service refuses to start.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct RedisTlsArgs {
    /// PEM file of CA certificates trusted for the Redis server's certificate, in addition to
    /// the system's roots (a private CA). The server's host name is always verified.
    #[arg(long, env = "REDIS_TLS_CA_FILE")]
    pub redis_tls_ca_file: Option<PathBuf>,

    /// PEM file of the client certificate (chain) for mutual TLS; needs REDIS_TLS_KEY_FILE.
    #[arg(long, env = "REDIS_TLS_CERT_FILE")]
    pub redis_tls_cert_file: Option<PathBuf>,

    /// PEM file of the client certificate's private key; needs REDIS_TLS_CERT_FILE.
    #[arg(long, env = "REDIS_TLS_KEY_FILE")]
    pub redis_tls_key_file: Option<PathBuf>,
}

impl RedisTlsArgs {
    /// The files, for the store's configuration.
    pub fn files(&self) -> RedisTlsFiles {
        RedisTlsFiles {
            ca_file: self.redis_tls_ca_file.clone(),
            cert_file: self.redis_tls_cert_file.clone(),
            key_file: self.redis_tls_key_file.clone(),
        }
    }

    /// Checks `REDIS_URL` with these files (scheme, topology, TLS files readable and valid,
    /// no TLS file with a plaintext URL); the error is one line for the operator.
    pub fn check(&self, redis_url: &str) -> Result<RedisEndpoint, RedisConfigError> {
        RedisEndpoint::parse(redis_url, &self.files())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let none = RedisTlsArgs::default();
        assert!(none.check("redis://127.0.0.1:6379").is_ok());
        assert!(none.check("redis-cluster://a:1?node=b:2").is_ok());
        assert!(none
            .check("redis-sentinel://a:26379?sentinelServiceName=m&node=b:26380")
            .is_ok());
        assert!(none.check("http://x").is_err());
        assert!(none.check("localhost:6379").is_err());
    }

    #[test]
    fn tls_files_need_a_tls_url_and_must_be_readable() {
        let args = RedisTlsArgs {
            redis_tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = args.check("redis://h:1").unwrap_err().to_string();
        assert!(e.contains("plaintext"), "{e}");
        let e = args.check("rediss://h:1").unwrap_err().to_string();
        assert!(e.starts_with("REDIS_TLS_CA_FILE: cannot read"), "{e}");
        assert!(!e.contains('\n'));
    }
}
