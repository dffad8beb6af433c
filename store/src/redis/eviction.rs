//! A warning, once, when Redis may evict the store's keys.
//!
//! Every key the store writes has a TTL (logs, states, leases, history), so under memory
//! pressure any `volatile-*` policy may evict them as readily as `allkeys-*`: a streaming
//! answer's log could vanish mid-answer, and the client would see it as lost. `noeviction`
//! makes Redis refuse writes instead, which the services report as `redis_unavailable`.
//!
//! Read with `CONFIG GET maxmemory-policy` once the command client first connects. Managed
//! Redis often forbids `CONFIG`: then nothing is said beyond a debug line.

use std::time::Duration;

use fred::prelude::*;

/// What a `maxmemory-policy` means for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionRisk {
    /// `noeviction`: writes fail when memory is full, nothing is evicted.
    None,
    /// Any other policy: keys may be evicted.
    MayEvict(String),
}

impl EvictionRisk {
    pub fn of(policy: &str) -> EvictionRisk {
        if policy.eq_ignore_ascii_case("noeviction") {
            EvictionRisk::None
        } else {
            EvictionRisk::MayEvict(policy.to_string())
        }
    }
}

/// The policy from a `CONFIG GET` reply (a RESP2 array `[name, value]` or a RESP3 map).
fn policy_of(reply: Value) -> Option<String> {
    match reply {
        Value::Array(items) => items.get(1).and_then(|v| v.as_string()),
        Value::Map(map) => map
            .inner()
            .into_iter()
            .next()
            .and_then(|(_, v)| v.as_string()),
        _ => None,
    }
}

/// Starts the check in the background: waits for the first connection, asks once, warns if
/// the policy may evict.
pub(crate) fn check_in_background(client: Client) {
    tokio::spawn(async move {
        if client.wait_for_connect().await.is_err() {
            return;
        }
        let asked = tokio::time::timeout(
            Duration::from_secs(5),
            client.config_get::<Value, _>("maxmemory-policy"),
        )
        .await;
        let policy = match asked {
            Ok(Ok(reply)) => policy_of(reply),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "CONFIG GET maxmemory-policy not allowed; not checked");
                None
            }
            Err(_) => None,
        };
        match policy.as_deref().map(EvictionRisk::of) {
            Some(EvictionRisk::None) => {
                tracing::info!("Redis maxmemory-policy noeviction: keys are never evicted")
            }
            Some(EvictionRisk::MayEvict(policy)) => {
                tracing::warn!(
                    maxmemory_policy = %policy,
                    "Redis may evict keys under memory pressure (maxmemory-policy {policy}): every \
                     key of the store has a TTL, so a streaming answer's log can be evicted; set \
                     maxmemory-policy noeviction (see deploy/README.md, Production Redis)"
                );
            }
            None => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noeviction_is_safe() {
        assert_eq!(EvictionRisk::of("noeviction"), EvictionRisk::None);
        for p in [
            "volatile-lru",
            "allkeys-lru",
            "volatile-ttl",
            "allkeys-random",
        ] {
            assert_eq!(EvictionRisk::of(p), EvictionRisk::MayEvict(p.into()));
        }
    }

    #[test]
    fn reads_both_reply_shapes() {
        let resp2 = Value::Array(vec!["maxmemory-policy".into(), "allkeys-lru".into()]);
        assert_eq!(policy_of(resp2).as_deref(), Some("allkeys-lru"));
        assert_eq!(policy_of(Value::Null), None);
    }
}
