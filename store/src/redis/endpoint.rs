//! `REDIS_URL` and the `REDIS_TLS_*` files → the fred [`Config`] every connection is built from.
//!
//! Contract:
//! - this is the one parser: settings are checked at start with [`RedisEndpoint::parse`], and
//!   the store's and the feed's connections are built from the same result, so what was
//!   validated is what connects;
//! - the URL is parsed by fred ([`Config::from_url`]); schemes are fred's, minus those it would
//!   silently read as something else (an unknown scheme such as `http://` would otherwise be
//!   taken for a plaintext standalone server): `redis`, `rediss`, `valkey`, `valkeys`, each
//!   alone or with `-cluster` or `-sentinel`;
//! - a TLS scheme (`rediss…`, `valkeys…`) always gets our verified rustls connector
//!   ([`super::tls`]); a [`Config`] for it without TLS cannot be returned (checked here, and
//!   fred connects in plaintext only when `Config::tls` is `None`);
//! - TLS files with a plaintext scheme are refused: asking for TLS must get TLS;
//! - `node=` or `sentinelServiceName=` on a standalone scheme are refused: fred would ignore
//!   them and connect to the first host alone.

use fred::types::config::Config;

use super::redact::redact;
use super::tls::{fred_tls, RedisTlsFiles, TlsSetupError};

/// How the servers are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    Standalone,
    Cluster,
    Sentinel,
}

/// Whether the connections are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS with certificate and host-name verification.
    Tls,
    Plaintext,
}

/// Why `REDIS_URL` and the TLS files cannot be used. Messages never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum RedisConfigError {
    #[error(
        "REDIS_URL has an unknown scheme {scheme:?}: use redis://, rediss:// (TLS), \
         redis-cluster://, rediss-cluster://, redis-sentinel:// or rediss-sentinel://"
    )]
    UnknownScheme { scheme: String },
    #[error("REDIS_URL is not a URL ({0})")]
    NotAUrl(url::ParseError),
    #[error("REDIS_URL {url}: {reason}")]
    Invalid { url: String, reason: String },
    #[error(
        "REDIS_URL {url}: `{param}` is only read with a -cluster or -sentinel scheme \
         (e.g. redis-cluster://, redis-sentinel://)"
    )]
    IgnoredParameter { url: String, param: String },
    #[error(
        "REDIS_TLS_CA_FILE/REDIS_TLS_CERT_FILE/REDIS_TLS_KEY_FILE are set but REDIS_URL \
         {url} is plaintext: use the TLS scheme (rediss://, rediss-cluster://, rediss-sentinel://)"
    )]
    TlsFilesWithPlaintext { url: String },
    #[error("REDIS_URL {url} asks for TLS but no TLS connector was configured")]
    TlsMissing { url: String },
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

/// A checked Redis endpoint: fred's configuration, ready to build clients from.
#[derive(Debug, Clone)]
pub struct RedisEndpoint {
    pub topology: Topology,
    pub transport: Transport,
    /// `REDIS_URL`, password redacted.
    pub redacted_url: String,
    config: Config,
}

/// The schemes fred reads, split into (TLS, topology).
fn classify(scheme: &str) -> Option<(Transport, Topology)> {
    let (base, topology) = if let Some(b) = scheme.strip_suffix("-cluster") {
        (b, Topology::Cluster)
    } else if let Some(b) = scheme.strip_suffix("-sentinel") {
        (b, Topology::Sentinel)
    } else {
        (scheme, Topology::Standalone)
    };
    let transport = match base {
        "redis" | "valkey" => Transport::Plaintext,
        "rediss" | "valkeys" => Transport::Tls,
        _ => return None,
    };
    Some((transport, topology))
}

impl RedisEndpoint {
    /// Parses and checks `url` with the TLS `files`; loads and checks the files.
    pub fn parse(url: &str, files: &RedisTlsFiles) -> Result<Self, RedisConfigError> {
        let parsed = url::Url::parse(url).map_err(RedisConfigError::NotAUrl)?;
        let redacted_url = redact(url);
        let (transport, topology) =
            classify(parsed.scheme()).ok_or_else(|| RedisConfigError::UnknownScheme {
                scheme: parsed.scheme().to_string(),
            })?;
        if topology == Topology::Standalone {
            if let Some((param, _)) = parsed
                .query_pairs()
                .find(|(k, _)| k == "node" || k.starts_with("sentinel"))
            {
                return Err(RedisConfigError::IgnoredParameter {
                    url: redacted_url,
                    param: param.into_owned(),
                });
            }
        }
        let mut config = Config::from_url(url).map_err(|e| RedisConfigError::Invalid {
            url: redacted_url.clone(),
            reason: e.details().to_string(),
        })?;
        match transport {
            Transport::Plaintext => {
                if files.any() {
                    return Err(RedisConfigError::TlsFilesWithPlaintext { url: redacted_url });
                }
                // fred agrees (its own reading of the scheme); never connect with a stray TLS
                // config either.
                config.tls = None;
            }
            Transport::Tls => {
                // fred's own default (system roots only) is replaced by ours; either way it
                // must be there.
                if config.tls.is_none() {
                    return Err(RedisConfigError::TlsMissing { url: redacted_url });
                }
                config.tls = Some(fred_tls(files)?);
            }
        }
        // Keep reconnecting from the very first attempt: a service started before Redis (or
        // before a certificate is fixed) connects once it can, and stays not-ready until then.
        config.fail_fast = false;
        Ok(RedisEndpoint {
            topology,
            transport,
            redacted_url,
            config,
        })
    }

    /// fred's configuration (TLS included).
    pub(crate) fn config(&self) -> Config {
        self.config.clone()
    }

    /// E.g. `redis rediss://h:6380 (standalone, TLS verified)`, for logs.
    pub fn describe(&self) -> String {
        let topology = match self.topology {
            Topology::Standalone => "standalone",
            Topology::Cluster => "cluster",
            Topology::Sentinel => "sentinel",
        };
        let transport = match self.transport {
            Transport::Tls => "TLS verified",
            Transport::Plaintext => "plaintext",
        };
        format!("redis {} ({topology}, {transport})", self.redacted_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> RedisTlsFiles {
        RedisTlsFiles::default()
    }

    fn parse(url: &str) -> Result<RedisEndpoint, RedisConfigError> {
        RedisEndpoint::parse(url, &none())
    }

    #[test]
    fn plaintext_schemes_and_topologies() {
        let e = parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(
            (e.topology, e.transport),
            (Topology::Standalone, Transport::Plaintext)
        );
        assert!(e.config().tls.is_none());
        let e = parse("redis-cluster://a:1?node=b:2&node=c:3").unwrap();
        assert_eq!(e.topology, Topology::Cluster);
        assert_eq!(e.config().server.hosts().len(), 3);
        let e = parse("redis-sentinel://a:26379?sentinelServiceName=m&node=b:26380").unwrap();
        assert_eq!(e.topology, Topology::Sentinel);
        assert!(e.config().server.is_sentinel());
        assert!(!e.config().fail_fast);
    }

    /// A TLS scheme can never produce a plaintext configuration: for each of them, either the
    /// result carries our rustls connector, or parsing fails. (The machine may lack system
    /// roots; then only `NoRoots` is acceptable, never a plaintext `Config`.)
    #[test]
    fn a_tls_scheme_never_ends_in_plaintext() {
        for url in [
            "rediss://127.0.0.1:6380",
            "valkeys://127.0.0.1:6380",
            "rediss-cluster://a:1?node=b:2",
            "rediss-sentinel://a:26379?sentinelServiceName=m",
            "valkeys-sentinel://a:26379?sentinelServiceName=m",
        ] {
            match parse(url) {
                Ok(e) => {
                    assert_eq!(e.transport, Transport::Tls, "{url}");
                    let config = e.config();
                    assert!(config.uses_rustls(), "{url}: not rustls");
                    assert!(config.uses_tls(), "{url}: no TLS");
                }
                Err(RedisConfigError::Tls(TlsSetupError::NoRoots { .. })) => {}
                Err(e) => panic!("{url}: {e}"),
            }
        }
    }

    #[test]
    fn tls_files_with_a_plaintext_scheme_are_refused() {
        let files = RedisTlsFiles {
            ca_file: Some("/tmp/ca.pem".into()),
            ..Default::default()
        };
        let e = RedisEndpoint::parse("redis://:pw@h:1", &files).unwrap_err();
        assert!(matches!(e, RedisConfigError::TlsFilesWithPlaintext { .. }));
        assert!(!e.to_string().contains("pw"), "{e}");
    }

    #[test]
    fn unknown_schemes_and_ignored_parameters_are_refused() {
        for url in [
            "http://x:1",
            "tcp://x:1",
            "rediss+unix:///tmp/s",
            "redis-clusterx://a:1",
        ] {
            assert!(
                matches!(parse(url), Err(RedisConfigError::UnknownScheme { .. })),
                "{url}"
            );
        }
        assert!(parse("localhost:6379").is_err());
        assert!(matches!(
            parse("redis://a:1?node=b:2"),
            Err(RedisConfigError::IgnoredParameter { .. })
        ));
        assert!(matches!(
            parse("redis://a:1?sentinelServiceName=m"),
            Err(RedisConfigError::IgnoredParameter { .. })
        ));
        // A sentinel URL needs its service name (fred's own check).
        assert!(matches!(
            parse("redis-sentinel://a:26379"),
            Err(RedisConfigError::Invalid { .. })
        ));
    }
}
