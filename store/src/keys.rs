//! Key and channel names.
//!
//! Every key and channel of one session carries the hash tag `{<session_id>}`, so on a Redis
//! Cluster they all live in one slot: scripts touch only one session's keys, and the live
//! channel (sharded pub/sub) is served by the same shard as the log it mirrors. No command ever
//! spans two sessions.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `s:{sid}:msgs` | zset | the session's message ids, scored by creation time (ms) |
//! | `s:{sid}:m:{mid}` | hash | `state`, `seq`, `owner`, `created_ms`, `content`, `finished_ms` |
//! | `s:{sid}:m:{mid}:log` | list | the message's [`StreamChunk`](shared_proto::StreamChunk)s as JSON |
//! | `s:{sid}:m:{mid}:grace` | string | exists for `CANCEL_GRACE` after the message finished |
//! | `s:{sid}:m:{mid}:lease` | string | the owner replica, while it renews its lease |
//! | `s:{sid}:m:{mid}:suspect` | string | when a follower first saw the owner's lease expired (store clock, ms) |
//! | `s:{sid}:m:{mid}:tomb` | string | a cancel that came before the message existed (its canceller replica), for `CANCEL_GRACE` |
//! | `s:{sid}:hist` | list | the session's finished turns as JSON, capped, expiring |
//! | `s:{sid}:ch` | shard channel | live copies of every log entry of the session |
//! | `u:{user}:tokens` | string | a user's completion tokens in the current budget window (user hex-encoded) |
//! | `r:{replica}:nudge` | shard channel | "stop this message now" for one ai-service replica |
//! | `g:{running}` | hash | the running index: `<sid>:<mid>` → [`RunningEntry`](crate::RunningEntry) as JSON, for the whole deployment (one slot) |

use uuid::Uuid;

use crate::MessageRef;

fn tag(session_id: Uuid) -> String {
    format!("s:{{{session_id}}}")
}

/// The session's message index.
pub fn messages(session_id: Uuid) -> String {
    format!("{}:msgs", tag(session_id))
}

/// The message's state hash.
pub fn message(m: &MessageRef) -> String {
    format!("s:{{{}}}:m:{}", m.session_id, m.message_id)
}

/// The message's chunk log.
pub fn log(m: &MessageRef) -> String {
    format!("s:{{{}}}:m:{}:log", m.session_id, m.message_id)
}

/// The message's grace marker.
pub fn grace(m: &MessageRef) -> String {
    format!("{}:m:{}:grace", tag(m.session_id), m.message_id)
}

/// The message's owner lease.
pub fn lease(m: &MessageRef) -> String {
    format!("{}:m:{}:lease", tag(m.session_id), m.message_id)
}

/// When a follower first saw the message's lease expired (the `worker_lost` takeover waits for
/// the owner to stay silent a while longer, while the store answers).
pub fn suspect(m: &MessageRef) -> String {
    format!("{}:m:{}:suspect", tag(m.session_id), m.message_id)
}

/// The message's cancel tombstone: a cancel that reached the store before the message's create.
pub fn tombstone(m: &MessageRef) -> String {
    format!("{}:m:{}:tomb", tag(m.session_id), m.message_id)
}

/// The session's conversation history.
pub fn history(session_id: Uuid) -> String {
    format!("{}:hist", tag(session_id))
}

/// The session's live channel.
pub fn session_channel(session_id: Uuid) -> String {
    format!("s:{{{session_id}}}:ch")
}

/// Parses a session channel name back to its session id.
pub fn session_of_channel(channel: &str) -> Option<Uuid> {
    let inner = channel.strip_prefix("s:{")?.strip_suffix("}:ch")?;
    Uuid::parse_str(inner).ok()
}

/// A user's budget counter, tagged on the user (hex, so that no character of a `sub` can
/// break the hash tag).
pub fn user_budget(user: &str) -> String {
    let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
    format!("u:{{{hex}}}:tokens")
}

/// The running index (see [`crate::running`]): one key for the whole deployment, so that one
/// command on one shard lists every replica's generations.
pub fn running_index() -> &'static str {
    "g:{running}"
}

/// A replica's nudge channel.
pub fn nudge_channel(replica: &str) -> String {
    format!("r:{{{replica}}}:nudge")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_session_shares_its_tag() {
        let m = MessageRef::new(Uuid::new_v4(), Uuid::new_v4());
        let t = format!("{{{}}}", m.session_id);
        for k in [
            messages(m.session_id),
            message(&m),
            log(&m),
            grace(&m),
            lease(&m),
            tombstone(&m),
            suspect(&m),
            history(m.session_id),
            session_channel(m.session_id),
        ] {
            assert!(k.contains(&t), "{k}");
            // The first `{...}` is the hash tag Redis Cluster uses.
            let open = k.find('{').unwrap();
            let close = k[open..].find('}').unwrap() + open;
            assert_eq!(&k[open..=close], t);
        }
        assert_eq!(
            session_of_channel(&session_channel(m.session_id)),
            Some(m.session_id)
        );
        assert_eq!(session_of_channel("s:{nope}:ch"), None);
    }
}
