//! Appends of many streams share one script call.
//!
//! Each generation waits for its previous append before sending the next (that is how tokens
//! coalesce per stream), so per-stream batching alone cannot beat one round trip per chunk.
//! This batcher collects the appends of *all* streams that arrive while a batch is in flight
//! and sends them as one `append_many.lua` call ([`Grouping`]: on a Cluster, one call per hash
//! slot, since the keys of one call must share a slot; on a standalone server or behind
//! Sentinel, one call for all). When the store is idle a lone append
//! goes out at once: nothing is ever held back waiting for company. A few calls may be in
//! flight at once (`MAX_IN_FLIGHT`), pipelined on the one connection.

use std::collections::HashMap;

use fred::prelude::*;
use fred::util::redis_keyslot;
use futures_util::stream::{FuturesUnordered, StreamExt};
use shared_proto::{MessageState, StreamChunk};
use tokio::sync::{mpsc, oneshot};

use super::command_metrics::Op;
use super::scripts::Lua;
use crate::keys;
use crate::{Appended, MessageRef, StoreError};

/// Most appends in one script call (bounds the script's run time, so one batch never blocks
/// Redis for long).
const MAX_BATCH: usize = 256;

/// Script calls in flight at once. With one at a time, Redis sat idle while this process
/// decoded a reply and built the next call, and with more streams than `MAX_BATCH` a stream
/// waited for several calls in a row: measured at 1,266 streams of 50 tokens/s, Redis was at
/// 40 % CPU while tokens waited 40 ms. Several in flight keep Redis busy. Per-stream order
/// does not depend on this: each stream has at most one append in flight.
const MAX_IN_FLIGHT: usize = 4;

/// How the appends of one batch are split into script calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// One call per hash slot: a Cluster refuses a script whose keys span slots. Each session
    /// is its own slot, so a batch of many sessions is many calls (pipelined).
    PerSlot,
    /// One call for the whole batch: a standalone server (or Sentinel's master) takes keys of
    /// any slot in one script. Grouping by slot there too made every chunk its own call
    /// (measured: 228,793 `EVALSHA` for 225,900 appended entries at 600 chats).
    OneCall,
}

/// One append, with its keys already built by the caller's task (not the batcher's, which is
/// the one serial step of the path).
struct Pending {
    slot: u16,
    message_key: String,
    log_key: String,
    channel: String,
    seq: String,
    json: String,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// Handle to the batcher task.
#[derive(Clone)]
pub(crate) struct AppendBatcher {
    tx: mpsc::UnboundedSender<Pending>,
    grouping: Grouping,
}

impl AppendBatcher {
    /// Starts the batcher task; it ends when every handle is dropped.
    pub fn start(client: Client, script: Lua, ttl_ms: u64, grouping: Grouping) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(client, script, ttl_ms.to_string(), rx));
        AppendBatcher { tx, grouping }
    }

    /// Appends one chunk (see [`crate::Store::append`]).
    pub async fn append(
        &self,
        msg: &MessageRef,
        chunk: &StreamChunk,
    ) -> Result<Appended, StoreError> {
        let (reply, rx) = oneshot::channel();
        let message_key = keys::message(msg);
        let slot = match self.grouping {
            Grouping::PerSlot => redis_keyslot(message_key.as_bytes()),
            Grouping::OneCall => 0,
        };
        let pending = Pending {
            slot,
            message_key,
            log_key: keys::log(msg),
            channel: keys::session_channel(msg.session_id),
            seq: chunk.seq.to_string(),
            json: chunk.to_json(),
            reply,
        };
        self.tx
            .send(pending)
            .map_err(|_| StoreError::Protocol("append batcher stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Protocol("append batcher dropped a request".into()))?
    }
}

async fn run(
    client: Client,
    script: Lua,
    ttl_ms: String,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            biased;
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            received = rx.recv(), if open && in_flight.len() < MAX_IN_FLIGHT => match received {
                None => open = false,
                Some(first) => {
                    for group in take_batch(first, &mut rx) {
                        in_flight.push(run_group(&client, &script, &ttl_ms, group));
                    }
                }
            },
        }
    }
}

/// `streamline_store_append_batch_size`, resolved once (recorded per batch, on the token path).
fn batch_size() -> &'static metrics::Histogram {
    static H: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();
    H.get_or_init(|| metrics::histogram!("streamline_store_append_batch_size"))
}

/// `first` and everything queued behind it (up to `MAX_BATCH`), grouped by `slot` (all 0 with
/// [`Grouping::OneCall`]).
fn take_batch(first: Pending, rx: &mut mpsc::UnboundedReceiver<Pending>) -> Vec<Vec<Pending>> {
    let mut groups: HashMap<u16, Vec<Pending>> = HashMap::new();
    let mut n = 0;
    let mut next = Some(first);
    while let Some(p) = next {
        groups.entry(p.slot).or_default().push(p);
        n += 1;
        next = if n < MAX_BATCH {
            rx.try_recv().ok()
        } else {
            None
        };
    }
    batch_size().record(n as f64);
    groups.into_values().collect()
}

async fn run_group(client: &Client, script: &Lua, ttl_ms: &str, group: Vec<Pending>) {
    let mut keys = Vec::with_capacity(group.len() * 2);
    let mut args = Vec::with_capacity(group.len() * 3 + 1);
    let mut replies = Vec::with_capacity(group.len());
    args.push(ttl_ms.to_string());
    for p in group {
        keys.push(p.message_key);
        keys.push(p.log_key);
        args.push(p.seq);
        // The chunk's JSON moves into the command: no per-chunk copy.
        args.push(p.json);
        args.push(p.channel);
        replies.push(p.reply);
    }
    let result: Result<Vec<Value>, StoreError> =
        super::command_metrics::timed(Op::AppendBatch, script.run(client, keys, args)).await;
    match result {
        Ok(reply) => {
            for (i, tx) in replies.into_iter().enumerate() {
                let _ = tx.send(decode(reply.get(2 * i), reply.get(2 * i + 1)));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for tx in replies {
                let _ = tx.send(Err(StoreError::Protocol(message.clone())));
            }
        }
    }
}

fn decode(code: Option<&Value>, detail: Option<&Value>) -> Result<Appended, StoreError> {
    let code = code
        .and_then(|v| v.as_i64())
        .ok_or_else(|| StoreError::Protocol("append_many: missing code".into()))?;
    let detail = detail.and_then(|v| v.as_string()).unwrap_or_default();
    Ok(match code {
        1 => Appended::Written,
        0 => Appended::Stopped(
            MessageState::parse(&detail)
                .ok_or_else(|| StoreError::Protocol(format!("unknown state {detail:?}")))?,
        ),
        -1 => Appended::Missing,
        _ => Appended::OutOfOrder {
            last_seq: detail.parse().unwrap_or(0),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;

    use super::*;
    use uuid::Uuid;

    /// What [`AppendBatcher::append`] queues for a chunk of a new session.
    fn queued(batcher: &AppendBatcher, rx: &mut mpsc::UnboundedReceiver<Pending>) -> Pending {
        let msg = MessageRef::new(Uuid::new_v4(), Uuid::new_v4());
        let chunk = StreamChunk::delta(msg.session_id, msg.message_id, 1, "x".into(), 0);
        let b = batcher.clone();
        // The append's future queues its request on the first poll, then waits for a reply
        // that never comes here: poll it once, and read what it queued.
        let mut fut = Box::pin(async move { b.append(&msg, &chunk).await });
        let waker = futures_util::task::noop_waker();
        let _ = fut
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        rx.try_recv().expect("the append queued a request")
    }

    fn groups_of(grouping: Grouping) -> usize {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let batcher = AppendBatcher { tx, grouping };
        let first = queued(&batcher, &mut rx);
        let more: Vec<Pending> = (0..7).map(|_| queued(&batcher, &mut rx)).collect();
        // Queue them again behind `first`, as the batcher task finds them.
        for p in more {
            batcher.tx.send(p).ok();
        }
        let groups = take_batch(first, &mut rx);
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 8);
        groups.len()
    }

    #[test]
    fn a_standalone_batch_of_many_sessions_is_one_call() {
        assert_eq!(groups_of(Grouping::OneCall), 1);
    }

    #[test]
    fn a_cluster_batch_is_one_call_per_slot() {
        // Eight random sessions almost surely hash to eight slots (of 16,384).
        assert!(groups_of(Grouping::PerSlot) > 1);
    }
}
