//! One generation: provider tokens in, coalesced chunks out to the store.
//!
//! The loop owns the provider stream; returning drops it, which aborts the upstream request.
//! While one chunk is being written, new tokens accumulate and go out together as the next
//! chunk, so a fast model costs one store round trip per write rather than per token, and a
//! lone token is never held back (it is written as soon as the previous write returns).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use shared_proto::{ErrorBody, ErrorCode, FinalStatus, MessageState, StreamChunk, Usage};
use store::{Appended, Finished, Lease, MessageRef, Outcome, Store, StoreError};
use tracing::Instrument;

use crate::provider::{GenerationRequest, Provider, ProviderEvent};
use crate::registry::{StopHandle, StopReason};

/// While a write is in flight, tokens accumulate up to about this many bytes; then the loop
/// stops reading the provider until the write returns. This bounds a generation's memory and
/// chunk size, and makes a very fast model (or `!demo rate=0`) go at the store's pace instead
/// of monopolising a runtime thread and the store's batches: a real upstream is then held
/// back by TCP flow control.
const MAX_PENDING_BYTES: usize = 8 * 1024;

/// How long a producer keeps retrying a write while the store is unreachable before it gives
/// the message up as `redis_unavailable`.
const STORE_OUTAGE_BUDGET: Duration = Duration::from_secs(10);

/// Everything a generation needs.
pub struct Generation {
    pub store: Arc<dyn Store>,
    pub provider: Arc<dyn Provider>,
    pub msg: MessageRef,
    /// This replica's id: the lease holder.
    pub owner: String,
    /// How often the lease is renewed (a third of its TTL).
    pub lease_renewal: Duration,
    /// The request; its history is filled from the store when the generation starts.
    pub request: GenerationRequest,
    pub stop: StopHandle,
}

/// How the loop ended.
enum End {
    /// Write this outcome (completed, or failed with a reason).
    Finish(Outcome),
    /// Somebody else already ended the message (cancel, takeover): write nothing.
    Stopped(MessageState),
    /// The store lost the message.
    Lost,
}

impl Generation {
    /// Runs to the end. Never panics; every way out leaves the message terminal in the store
    /// (or the store unreachable, which the readers detect).
    pub async fn run(self) {
        let span = tracing::info_span!(
            "generation",
            session_id = %self.msg.session_id,
            message_id = %self.msg.message_id,
            provider = self.provider.name()
        );
        async move {
            let store = self.store.clone();
            let msg = self.msg;
            let end = self.produce().await;
            match end {
                End::Finish(outcome) => {
                    let status = outcome.status;
                    match finish_with_retry(store.as_ref(), &msg, &outcome).await {
                        Ok(Finished::Done { seq }) => {
                            metrics::counter!("ai_generations_total", "status" => status.as_str()).increment(1);
                            if let Some(e) = &outcome.error {
                                metrics::counter!("ai_upstream_errors_total", "code" => e.code.as_str()).increment(1);
                            }
                            tracing::info!(?status, seq, "generation ended")
                        }
                        Ok(Finished::AlreadyTerminal(state)) => {
                            tracing::info!(?state, "message ended elsewhere first")
                        }
                        Ok(Finished::Missing | Finished::OwnerAlive | Finished::OwnerSuspected) => {
                            tracing::warn!("message vanished from the store")
                        }
                        Err(e) => tracing::warn!(error = %e, "could not write the end of the message"),
                    }
                }
                End::Stopped(state) => tracing::info!(?state, "generation stopped"),
                End::Lost => tracing::warn!("message lost by the store; generation dropped"),
            }
        }
        .instrument(span)
        .await
    }

    async fn produce(self) -> End {
        let Generation {
            store,
            provider,
            msg,
            owner,
            lease_renewal,
            mut request,
            stop,
        } = self;
        match store.history(msg.session_id).await {
            Ok(history) => request.history = history,
            Err(e) => tracing::warn!(error = %e, "history unavailable; answering without it"),
        }
        let mut stream = provider.stream(request);
        let mut renewal = tokio::time::interval_at(
            tokio::time::Instant::now() + lease_renewal,
            lease_renewal.max(Duration::from_millis(50)),
        );
        renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending = String::new();
        let mut seq: u64 = 0;
        let mut usage: Option<Usage> = None;
        let mut upstream_end: Option<Option<ErrorBody>> = None;
        let mut inflight: Option<BoxFuture<'static, Result<Appended, StoreError>>> = None;
        // Created once: a fresh `stopped()` per loop turn would re-register with the token on
        // every token.
        let stopped = stop.stopped();
        tokio::pin!(stopped);

        loop {
            if inflight.is_none() && !pending.is_empty() {
                seq += 1;
                let chunk = StreamChunk::delta(
                    msg.session_id,
                    msg.message_id,
                    seq,
                    std::mem::take(&mut pending),
                    shared_proto::now_ms(),
                );
                let store = store.clone();
                inflight = Some(
                    async move { append_with_retry(store.as_ref(), &msg, &chunk).await }.boxed(),
                );
            }
            if inflight.is_none() {
                if let Some(error) = upstream_end.take() {
                    let status = if error.is_some() {
                        FinalStatus::Failed
                    } else {
                        FinalStatus::Completed
                    };
                    return End::Finish(Outcome {
                        status,
                        error,
                        usage,
                    });
                }
            }
            tokio::select! {
                biased;
                reason = &mut stopped => {
                    return match reason {
                        StopReason::Cancelled => End::Stopped(MessageState::Cancelled),
                        StopReason::Shutdown => End::Finish(Outcome {
                            status: FinalStatus::Failed,
                            error: Some(ErrorBody::new(ErrorCode::Shutdown, "the ai-service shut down before the answer finished")),
                            usage,
                        }),
                    };
                }
                written = async { match inflight.as_mut() { Some(f) => f.await, None => std::future::pending().await } }, if inflight.is_some() => {
                    inflight = None;
                    match written {
                        Ok(Appended::Written) => {}
                        Ok(Appended::Stopped(state)) => return End::Stopped(state),
                        Ok(Appended::OutOfOrder { last_seq }) => {
                            tracing::warn!(seq, last_seq, "another writer owns this message now");
                            return End::Stopped(MessageState::Failed);
                        }
                        Ok(Appended::Missing) => return End::Lost,
                        Err(e) => {
                            tracing::warn!(error = %e, "store unreachable; giving the message up");
                            return End::Finish(Outcome {
                                status: FinalStatus::Failed,
                                error: Some(ErrorBody::new(ErrorCode::RedisUnavailable, "the store was unreachable for too long")),
                                usage,
                            });
                        }
                    }
                }
                _ = renewal.tick() => {
                    match store.renew_lease(&msg, &owner).await {
                        Ok(Lease::Renewed) => {}
                        Ok(Lease::Ended(state)) => return End::Stopped(state),
                        Ok(Lease::Lost | Lease::Missing) => return End::Lost,
                        // The store is away: keep going; appends will tell.
                        Err(e) => tracing::debug!(error = %e, "lease renewal failed"),
                    }
                }
                event = stream.next(), if upstream_end.is_none() && pending.len() < MAX_PENDING_BYTES => {
                    match event {
                        Some(Ok(ProviderEvent::Token(t))) => pending.push_str(&t),
                        Some(Ok(ProviderEvent::Usage(u))) => usage = Some(u),
                        Some(Err(e)) => {
                            tracing::warn!(code = %e.code, error = %e.message, "provider failed");
                            upstream_end = Some(Some(e.body()));
                        }
                        None => upstream_end = Some(None),
                    }
                }
            }
        }
    }
}

/// Appends, retrying while the store is briefly away. A retry of a write that did land
/// answers `OutOfOrder` with our own seq: that is success.
async fn append_with_retry(
    store: &dyn Store,
    msg: &MessageRef,
    chunk: &StreamChunk,
) -> Result<Appended, StoreError> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut retried = false;
    loop {
        match store.append(msg, chunk).await {
            Ok(Appended::OutOfOrder { last_seq }) if retried && last_seq == chunk.seq => {
                return Ok(Appended::Written)
            }
            Ok(a) => return Ok(a),
            Err(e) if started.elapsed() + delay < STORE_OUTAGE_BUDGET => {
                tracing::debug!(error = %e, "append failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
                retried = true;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn finish_with_retry(
    store: &dyn Store,
    msg: &MessageRef,
    outcome: &Outcome,
) -> Result<Finished, StoreError> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        match store.finish(msg, outcome).await {
            Err(e) if started.elapsed() + delay < STORE_OUTAGE_BUDGET => {
                tracing::debug!(error = %e, "finish failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}
