//! [`Store`] and [`Feed`] on Redis (standalone or Cluster, 7.0 or newer).
//!
//! Every transition is one Lua script (atomic compare-and-set, see `lua/`). Commands go through
//! one multiplexed connection that fred pipelines automatically, so concurrent streams share
//! round trips. Live delivery uses sharded pub/sub (SPUBLISH/SSUBSCRIBE), which works the same
//! on a standalone server and on a cluster, where a session's channel lives on the shard that
//! holds its keys.

mod batcher;
pub mod command_metrics;
mod connect_failure;
mod endpoint;
mod eviction;
mod feed;
mod redact;
mod scripts;
mod tls;

use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;
use shared_proto::{
    ActiveMessage, CancelStatus, ConversationMessage, FinalStatus, MessageState, StoredTurn,
    StreamChunk, Turn,
};
use uuid::Uuid;

use crate::conversation;
use crate::keys;
use crate::{
    Appended, Budget, Cancelled, Created, Finished, Lease, LogRead, MessageRef, Outcome, Restored,
    RunningEntry, Snapshot, Spent, Store, StoreError,
};
use batcher::{AppendBatcher, Grouping};
use command_metrics::{timed, Op};
pub use connect_failure::ConnectFailure;
pub use endpoint::{RedisConfigError, RedisEndpoint, Topology, Transport};
pub use eviction::EvictionRisk;
pub use feed::RedisFeed;
use scripts::Scripts;
pub use tls::{RedisTlsFiles, TlsSetupError};

/// Connection and data-retention settings.
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    /// `redis://host:port[/db]`, `rediss://…`, `redis-cluster://host:port?node=host:port…`,
    /// `redis-sentinel://host:port?sentinelServiceName=…&node=…` (see [`RedisEndpoint`]).
    pub url: String,
    /// CA bundle and client certificate for a TLS URL (none by default).
    pub tls: RedisTlsFiles,
    /// How long a message's log and state live after their last write (the resume window).
    pub stream_ttl: Duration,
    /// How long a finished message answers cancels with `already_*` instead of `not_found`.
    pub cancel_grace: Duration,
    /// Bound on any single command, including time spent waiting for a reconnect.
    pub command_timeout: Duration,
    /// How long an owner's lease lives without renewal.
    pub lease_ttl: Duration,
    /// Turn pairs kept per session (0: no history).
    pub history_turns: u32,
    /// How long a session's history lives after its last turn.
    pub session_ttl: Duration,
}

impl RedisStoreConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreConfig {
            url: url.into(),
            tls: RedisTlsFiles::default(),
            stream_ttl: Duration::from_secs(600),
            cancel_grace: Duration::from_secs(30),
            command_timeout: Duration::from_secs(5),
            lease_ttl: crate::DEFAULT_LEASE_TTL,
            history_turns: 20,
            session_ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// The same, with these TLS files.
    pub fn with_tls(self, tls: RedisTlsFiles) -> Self {
        RedisStoreConfig { tls, ..self }
    }
}

/// The Redis store. Cheap to clone (one shared multiplexed connection).
#[derive(Clone)]
pub struct RedisStore {
    client: Client,
    scripts: Scripts,
    appends: AppendBatcher,
    stream_ttl_ms: u64,
    grace_ms: u64,
    lease_ms: u64,
    history_turns: u32,
    session_ttl_ms: u64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

/// Capacity of fred's event channels for the command client, which subscribes to nothing.
pub(crate) const COMMAND_EVENTS_CAPACITY: usize = 32;
/// Capacity of the subscriber's event channels: pub/sub messages reach the feed reader through
/// them. A reader that falls behind further is detected (lag → resync from the logs); fred
/// preallocates every slot of each of its channels, so this is also a fixed memory cost.
pub(crate) const SUBSCRIBER_EVENTS_CAPACITY: usize = 8_192;

pub(crate) fn builder(
    endpoint: &RedisEndpoint,
    command_timeout: Duration,
    events_capacity: usize,
) -> Builder {
    let mut builder = Builder::from_config(endpoint.config());
    builder
        .with_performance_config(|p| {
            p.default_command_timeout = command_timeout;
            p.broadcast_channel_capacity = events_capacity;
        })
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.internal_command_timeout = Duration::from_secs(5);
            // Keep commands queued while reconnecting (a brief outage is buffered), bounded by
            // the command timeout above.
            c.max_command_attempts = 3;
            // TCP_NODELAY, as hiredis and redis-rs set it: fred leaves Nagle on unless told, and
            // with several script calls pipelined on one connection a write could wait for the
            // previous one's ACK. Measured in S3 on 2026-12-01: no change beyond the noise (the
            // 200-chat step's p99 25.8 ms before, 30.9 ms after; its tail has another cause).
            c.tcp.nodelay = Some(true);
        })
        // Retry forever: a process must recover on its own when Redis comes back.
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 1_000, 2));
    builder
}

impl RedisStore {
    /// Connects (in the background: the store works once Redis answers, and keeps
    /// reconnecting whenever it goes away).
    pub async fn connect(cfg: &RedisStoreConfig) -> Result<Self, StoreError> {
        let endpoint = RedisEndpoint::parse(&cfg.url, &cfg.tls)?;
        Self::connect_to(cfg, &endpoint).await
    }

    /// [`RedisStore::connect`] with an endpoint already parsed from `cfg`.
    pub async fn connect_to(
        cfg: &RedisStoreConfig,
        endpoint: &RedisEndpoint,
    ) -> Result<Self, StoreError> {
        if cfg.cancel_grace > cfg.stream_ttl {
            return Err(StoreError::Config(
                "CANCEL_GRACE must not exceed STREAM_TTL".into(),
            ));
        }
        let client = builder(endpoint, cfg.command_timeout, COMMAND_EVENTS_CAPACITY).build()?;
        connect_failure::watch(&client, "commands", endpoint);
        let _connection = client.connect();
        eviction::check_in_background(client.clone());
        let scripts = Scripts::new();
        let grouping = match endpoint.topology {
            Topology::Cluster => Grouping::PerSlot,
            Topology::Standalone | Topology::Sentinel => Grouping::OneCall,
        };
        let appends = AppendBatcher::start(
            client.clone(),
            scripts.append_many.clone(),
            ms(cfg.stream_ttl),
            grouping,
        );
        Ok(RedisStore {
            client,
            scripts,
            appends,
            stream_ttl_ms: ms(cfg.stream_ttl),
            grace_ms: ms(cfg.cancel_grace),
            lease_ms: ms(cfg.lease_ttl),
            history_turns: cfg.history_turns,
            session_ttl_ms: ms(cfg.session_ttl),
        })
    }

    /// The underlying client (for readiness probes and tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Splits the JSON of a terminal entry around its seq, for scripts that only learn the
    /// seq inside Redis.
    fn render_terminal(msg: &MessageRef, outcome: &Outcome) -> (String, String) {
        const SENTINEL: u64 = 987_654_321_987_654_321;
        let chunk = StreamChunk::done(
            msg.session_id,
            msg.message_id,
            SENTINEL,
            outcome.status,
            outcome.error.clone(),
            outcome.usage,
            shared_proto::now_ms(),
        );
        let json = chunk.to_json();
        let needle = SENTINEL.to_string();
        match json.split_once(&needle) {
            Some((head, tail)) => (head.to_string(), tail.to_string()),
            None => (json, String::new()),
        }
    }

    async fn transition(
        &self,
        msg: &MessageRef,
        outcome: &Outcome,
        mode: TransitionMode<'_>,
    ) -> Result<(i64, MessageState, u64, String), StoreError> {
        let (head, tail) = Self::render_terminal(msg, outcome);
        let keys = vec![
            keys::message(msg),
            keys::log(msg),
            keys::grace(msg),
            keys::history(msg.session_id),
            keys::lease(msg),
            keys::tombstone(msg),
            keys::suspect(msg),
        ];
        let (only_if_lease_expired, canceller, tombstone_ms) = match mode {
            TransitionMode::Finish => (false, "", 0),
            TransitionMode::Reap => (true, "", 0),
            TransitionMode::Cancel { canceller } => (false, canceller, self.grace_ms),
        };
        let args = vec![
            outcome.status.as_str().to_string(),
            head,
            tail,
            keys::session_channel(msg.session_id),
            self.stream_ttl_ms.to_string(),
            self.grace_ms.to_string(),
            shared_proto::now_ms().to_string(),
            self.history_turns.to_string(),
            self.session_ttl_ms.to_string(),
            if only_if_lease_expired { "1" } else { "0" }.to_string(),
            crate::HISTORY_ANSWER_MAX_BYTES.to_string(),
            canceller.to_string(),
            tombstone_ms.to_string(),
            // An owner renews every third of its lease: half a lease more of silence while
            // the store answers means it is gone.
            (self.lease_ms / 2).max(1).to_string(),
            msg.message_id.to_string(),
            // Whoever ends a message without knowing its cost (a cancel, a takeover) gets it
            // counted from the log.
            if outcome.usage.is_none() { "1" } else { "0" }.to_string(),
        ];
        let op = match mode {
            TransitionMode::Finish => Op::Finish,
            TransitionMode::Reap => Op::Reap,
            TransitionMode::Cancel { .. } => Op::Cancel,
        };
        let reply: Vec<Value> =
            timed(op, self.scripts.finish.run(&self.client, keys, args)).await?;
        let code = int_at(&reply, 0)?;
        let state = if code < 0 {
            outcome.status.state()
        } else {
            state_at(&reply, 1)?
        };
        let n = int_at(&reply, 2)?.max(0) as u64;
        let owner = str_at(&reply, 3)?;
        Ok((code, state, n, owner))
    }
}

/// Which terminal transition `finish.lua` makes.
#[derive(Clone, Copy)]
enum TransitionMode<'a> {
    /// The producer ends its message.
    Finish,
    /// The `worker_lost` takeover: only while the owner's lease has expired.
    Reap,
    /// A cancel: leaves a tombstone naming `canceller` when the message does not exist.
    Cancel { canceller: &'a str },
}

fn int_at(reply: &[Value], i: usize) -> Result<i64, StoreError> {
    reply
        .get(i)
        .and_then(|v| v.as_i64())
        .ok_or_else(|| StoreError::Protocol(format!("expected an integer at {i}: {reply:?}")))
}

fn str_at(reply: &[Value], i: usize) -> Result<String, StoreError> {
    reply
        .get(i)
        .and_then(|v| v.as_string())
        .ok_or_else(|| StoreError::Protocol(format!("expected a string at {i}: {reply:?}")))
}

fn state_at(reply: &[Value], i: usize) -> Result<MessageState, StoreError> {
    let s = str_at(reply, i)?;
    MessageState::parse(&s).ok_or_else(|| StoreError::Protocol(format!("unknown state {s:?}")))
}

#[async_trait]
impl Store for RedisStore {
    async fn create(
        &self,
        msg: &MessageRef,
        owner: &str,
        content: &str,
    ) -> Result<Created, StoreError> {
        let now = shared_proto::now_ms();
        let keys = vec![
            keys::message(msg),
            keys::messages(msg.session_id),
            keys::lease(msg),
            keys::tombstone(msg),
            keys::log(msg),
            keys::grace(msg),
            keys::history(msg.session_id),
        ];
        // The terminal entry the create writes if a cancel's tombstone is waiting (rare, but
        // the script must have it to end the message atomically).
        let cancelled = StreamChunk::done(
            msg.session_id,
            msg.message_id,
            0,
            FinalStatus::Cancelled,
            None,
            None,
            now,
        );
        let args = vec![
            msg.message_id.to_string(),
            owner.to_string(),
            content.to_string(),
            now.to_string(),
            self.stream_ttl_ms.to_string(),
            self.lease_ms.to_string(),
            cancelled.to_json(),
            keys::session_channel(msg.session_id),
            self.grace_ms.to_string(),
            self.history_turns.to_string(),
            self.session_ttl_ms.to_string(),
            StreamChunk::start(msg.session_id, msg.message_id, content.to_string(), now).to_json(),
        ];
        let reply: Vec<Value> = timed(
            Op::Create,
            self.scripts.create.run(&self.client, keys, args),
        )
        .await?;
        Ok(match int_at(&reply, 0)? {
            1 => Created::New,
            2 => Created::CancelledFirst {
                canceller: str_at(&reply, 2)?,
            },
            _ => Created::Exists(state_at(&reply, 1)?),
        })
    }

    async fn append(&self, msg: &MessageRef, chunk: &StreamChunk) -> Result<Appended, StoreError> {
        self.appends.append(msg, chunk).await
    }

    async fn finish(&self, msg: &MessageRef, outcome: &Outcome) -> Result<Finished, StoreError> {
        let (code, state, seq, _owner) = self
            .transition(msg, outcome, TransitionMode::Finish)
            .await?;
        Ok(match code {
            1 => Finished::Done { seq },
            0 => Finished::AlreadyTerminal(state),
            _ => Finished::Missing,
        })
    }

    async fn renew_lease(&self, msg: &MessageRef, owner: &str) -> Result<Lease, StoreError> {
        let keys = vec![
            keys::message(msg),
            keys::lease(msg),
            keys::log(msg),
            keys::messages(msg.session_id),
            keys::suspect(msg),
        ];
        let args = vec![
            owner.to_string(),
            self.lease_ms.to_string(),
            self.stream_ttl_ms.to_string(),
        ];
        let reply: String =
            timed(Op::Renew, self.scripts.renew.run(&self.client, keys, args)).await?;
        Ok(match reply.as_str() {
            "queued" | "streaming" => Lease::Renewed,
            "missing" => Lease::Missing,
            "lost" => Lease::Lost,
            other => match MessageState::parse(other) {
                Some(state) => Lease::Ended(state),
                None => return Err(StoreError::Protocol(format!("renew: {other:?}"))),
            },
        })
    }

    async fn reap(&self, msg: &MessageRef) -> Result<Finished, StoreError> {
        let outcome = Outcome::worker_lost();
        let (code, state, seq, _owner) =
            self.transition(msg, &outcome, TransitionMode::Reap).await?;
        Ok(match code {
            1 => Finished::Done { seq },
            0 => Finished::AlreadyTerminal(state),
            2 => Finished::OwnerAlive,
            3 => Finished::OwnerSuspected,
            _ => Finished::Missing,
        })
    }

    async fn history(&self, session_id: Uuid) -> Result<Vec<Turn>, StoreError> {
        let raw: Vec<String> = timed(
            Op::History,
            self.client.lrange(keys::history(session_id), 0, -1),
        )
        .await?;
        Ok(raw
            .iter()
            .filter_map(|s| serde_json::from_str::<StoredTurn>(s).ok())
            .map(Turn::from)
            .collect())
    }

    async fn cancel(&self, msg: &MessageRef, canceller: &str) -> Result<Cancelled, StoreError> {
        let outcome = Outcome::cancelled();
        let (code, state, detail, owner) = self
            .transition(msg, &outcome, TransitionMode::Cancel { canceller })
            .await?;
        Ok(match code {
            1 => Cancelled::Ended {
                owner: Some(owner).filter(|o| !o.is_empty()),
            },
            0 if detail == 0 => Cancelled::GraceOver,
            0 if state == MessageState::Cancelled => {
                Cancelled::AlreadyEnded(CancelStatus::AlreadyCancelled)
            }
            0 => Cancelled::AlreadyEnded(CancelStatus::AlreadyCompleted),
            -2 => Cancelled::Remembered { first: detail == 1 },
            // A cancel always leaves a tombstone for an unknown id; -1 cannot come back here.
            _ => Cancelled::Remembered { first: false },
        })
    }

    async fn read(&self, msg: &MessageRef, from_index: u64) -> Result<Option<LogRead>, StoreError> {
        let keys = vec![keys::message(msg), keys::log(msg), keys::lease(msg)];
        // LRANGE takes a signed 64-bit index: a position past it (e.g. `u64::MAX`, "the state
        // only") is simply past the end.
        let from_index = from_index.min(i64::MAX as u64);
        let reply: Value = timed(
            Op::Read,
            self.scripts
                .read
                .run(&self.client, keys, vec![from_index.to_string()]),
        )
        .await?;
        let parts = match reply {
            Value::Null => return Ok(None),
            Value::Array(parts) => parts,
            other => return Err(StoreError::Protocol(format!("read: {other:?}"))),
        };
        let state = state_at(&parts, 0)?;
        let last_seq = str_at(&parts, 1)?.parse().unwrap_or(0);
        let owner = str_at(&parts, 2)?;
        let mut entries = Vec::new();
        if let Some(Value::Array(raw)) = parts.get(3) {
            entries.reserve(raw.len());
            for v in raw {
                let text = v
                    .as_str()
                    .ok_or_else(|| StoreError::Protocol("log entry is not text".into()))?;
                let chunk: StreamChunk = serde_json::from_str(&text)
                    .map_err(|e| StoreError::Protocol(format!("log entry: {e}")))?;
                entries.push(chunk);
            }
        }
        let lease_alive = parts.get(4).and_then(|v| v.as_i64()) == Some(1);
        Ok(Some(LogRead {
            state,
            last_seq,
            owner,
            entries,
            lease_alive,
        }))
    }

    async fn active(&self, session_id: Uuid) -> Result<Vec<ActiveMessage>, StoreError> {
        let prefix = keys::message(&MessageRef::new(session_id, Uuid::nil()));
        let prefix = prefix
            .trim_end_matches(&Uuid::nil().to_string())
            .to_string();
        let reply: Vec<Value> = timed(
            Op::Active,
            self.scripts
                .active
                .run(&self.client, vec![keys::messages(session_id)], vec![prefix]),
        )
        .await?;
        let mut out = Vec::with_capacity(reply.len() / 2);
        for pair in reply.chunks(2) {
            let id = pair.first().and_then(|v| v.as_string()).unwrap_or_default();
            let seq = pair
                .get(1)
                .and_then(|v| v.as_string())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if let Ok(message_id) = Uuid::parse_str(&id) {
                out.push(ActiveMessage {
                    message_id,
                    last_seq: seq,
                });
            }
        }
        Ok(out)
    }

    async fn conversation(&self, session_id: Uuid) -> Result<Vec<ConversationMessage>, StoreError> {
        let prefix = keys::message(&MessageRef::new(session_id, Uuid::nil()));
        let prefix = prefix
            .trim_end_matches(&Uuid::nil().to_string())
            .to_string();
        let reply: Vec<Value> = self
            .scripts
            .conversation
            .run(
                &self.client,
                vec![keys::history(session_id), keys::messages(session_id)],
                vec![prefix, crate::HISTORY_ANSWER_MAX_BYTES.to_string()],
            )
            .await?;
        let list = |i: usize| match reply.get(i) {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        let history = list(0)
            .iter()
            .filter_map(|v| v.as_str())
            .filter_map(|s| serde_json::from_str::<StoredTurn>(&s).ok())
            .collect();
        let running = list(1)
            .chunks(5)
            .filter_map(|r| {
                Some(conversation::RunningMessage {
                    message_id: Uuid::parse_str(&r.first()?.as_string()?).ok()?,
                    content: r.get(1)?.as_string()?,
                    state: MessageState::parse(&r.get(2)?.as_string()?)?,
                    last_seq: r.get(3)?.as_string()?.parse().ok()?,
                    text: r.get(4)?.as_string()?,
                })
            })
            .collect();
        Ok(conversation::assemble(history, running))
    }

    async fn nudge(&self, owner: &str, msg: &MessageRef) -> Result<(), StoreError> {
        let payload = format!("{} {}", msg.session_id, msg.message_id);
        let _: i64 = timed(
            Op::Nudge,
            self.client.spublish(keys::nudge_channel(owner), payload),
        )
        .await?;
        Ok(())
    }

    async fn restore(
        &self,
        msg: &MessageRef,
        snapshot: Snapshot<'_>,
    ) -> Result<Restored, StoreError> {
        let keys = vec![
            keys::message(msg),
            keys::messages(msg.session_id),
            keys::lease(msg),
            keys::log(msg),
            keys::tombstone(msg),
        ];
        let mut args = Vec::with_capacity(6 + snapshot.entries.len());
        args.extend([
            msg.message_id.to_string(),
            snapshot.owner.to_string(),
            snapshot.content.to_string(),
            snapshot.created_ms.to_string(),
            self.stream_ttl_ms.to_string(),
            self.lease_ms.to_string(),
        ]);
        args.extend(snapshot.entries.iter().map(StreamChunk::to_json));
        let reply: Vec<Value> = self.scripts.restore.run(&self.client, keys, args).await?;
        Ok(match int_at(&reply, 0)? {
            1 => Restored::Restored {
                appended: int_at(&reply, 1)?.max(0) as usize,
            },
            2 => Restored::CancelledMeanwhile {
                canceller: str_at(&reply, 2)?,
            },
            0 => Restored::Ended(state_at(&reply, 1)?),
            _ => Restored::Lost,
        })
    }

    async fn charge(&self, user: &str, tokens: u64, budget: Budget) -> Result<Spent, StoreError> {
        let reply: Vec<Value> = self
            .scripts
            .charge
            .run(
                &self.client,
                vec![keys::user_budget(user)],
                vec![
                    tokens.to_string(),
                    budget.limit.to_string(),
                    ms(budget.window).to_string(),
                ],
            )
            .await?;
        let detail = int_at(&reply, 1)?.max(0) as u64;
        Ok(match int_at(&reply, 0)? {
            1 => Spent::Within { used: detail },
            _ => Spent::Exhausted {
                retry_after: Duration::from_millis(detail),
            },
        })
    }

    async fn track(&self, entry: &RunningEntry) -> Result<(), StoreError> {
        let json = serde_json::to_string(entry)
            .map_err(|e| StoreError::Protocol(format!("running entry: {e}")))?;
        let field = RunningEntry::field(&entry.message());
        let _: i64 = self
            .client
            .hset(keys::running_index(), (field, json))
            .await?;
        Ok(())
    }

    async fn untrack(&self, msg: &MessageRef) -> Result<(), StoreError> {
        let _: i64 = self
            .client
            .hdel(keys::running_index(), RunningEntry::field(msg))
            .await?;
        Ok(())
    }

    async fn running_index(&self) -> Result<Vec<RunningEntry>, StoreError> {
        let all: std::collections::HashMap<String, String> =
            self.client.hgetall(keys::running_index()).await?;
        Ok(all
            .into_iter()
            .filter_map(|(field, json)| match serde_json::from_str(&json) {
                Ok(entry) => Some(entry),
                Err(e) => {
                    // Written by another version, or by hand: not ours to interpret.
                    tracing::debug!(%field, error = %e, "unreadable running entry skipped");
                    None
                }
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = timed(Op::Ping, self.client.ping(None)).await?;
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }
}
