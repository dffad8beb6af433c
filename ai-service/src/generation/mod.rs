//! One generation: provider tokens in, coalesced chunks out to the store, through store
//! outages.
//!
//! The loop owns the provider stream; returning drops it, which aborts the upstream request.
//! While one chunk is being written, new tokens accumulate and go out together as the next
//! chunk, so a fast model costs one store round trip per write rather than per token. A token
//! of a model faster than one token per `CHUNK_LINGER` also waits up to that long for the ones
//! behind it ([`pacer`]); a slower model's tokens are never held back (each is written as soon
//! as the previous write returns).
//!
//! **Store outages cost a pause, never the answer.** A write the store does not take is
//! retried (with back-off) for up to `STORE_OUTAGE_BUDGET`, and meanwhile the model is still
//! read, into a bounded buffer ([`OUTAGE_BUFFER_BYTES`]), so the model server does not time out
//! on us. The owner keeps every delta it wrote ([`log_copy`]); when the store comes back
//! without the message (or with a shorter log), the owner puts it back
//! (`store::lifecycle::restore`) and the seqs go on where they were. A restore never
//! resurrects a message that ended elsewhere. Only past the budget, or for an answer too long
//! to have been kept, does the message end `failed/redis_unavailable`.

mod charge;
mod log_copy;
mod pacer;
mod pending;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use shared_proto::{
    DeltaKind, ErrorBody, ErrorCode, FinalStatus, MessageState, StreamChunk, Usage,
};
use store::{
    lifecycle, Appended, Finished, Lease, MessageRef, Outcome, Restored, Store, StoreError,
};
use tokio::time::{Instant, Sleep};
use tracing::Instrument;

use crate::provider::{GenerationRequest, Provider, ProviderEvent};
use crate::registry::{StopHandle, StopReason};
pub use charge::Charge;
use charge::Charged;
pub use log_copy::{LogCopy, RESTORE_LOG_MAX_BYTES};
use pacer::Pacer;
use pending::Pending;

/// While a write is in flight, tokens accumulate up to about this many bytes; then the loop
/// stops reading the provider until the write returns. This bounds a generation's memory and
/// chunk size, and makes a very fast model (or `!demo rate=0`) go at the store's pace instead
/// of monopolising a runtime thread and the store's batches: a real upstream is then held
/// back by TCP flow control.
const MAX_PENDING_BYTES: usize = 8 * 1024;

/// While the store is away, the model is read on up to this many bytes, so that it does not
/// time out on us during a restart or a failover. What piles up goes out in chunks of at most
/// [`pending::MAX_CHUNK_BYTES`] once the store is back.
pub const OUTAGE_BUFFER_BYTES: usize = 1024 * 1024;

/// Back-off of a write the store did not take.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Everything a generation needs.
pub struct Generation {
    pub store: Arc<dyn Store>,
    pub provider: Arc<dyn Provider>,
    pub msg: MessageRef,
    /// This replica's id: the lease holder.
    pub owner: String,
    /// How often the lease is renewed (a third of its TTL).
    pub lease_renewal: Duration,
    /// How long the generation goes on through a store outage (`STORE_OUTAGE_BUDGET`).
    pub outage_budget: Duration,
    /// How long a token of a fast model waits for the ones behind it (`CHUNK_LINGER`;
    /// [`pacer`]).
    pub chunk_linger: Duration,
    /// When the message was created (ms since the epoch), for a restore.
    pub created_ms: u64,
    /// The user's budget to charge as chunks are written (None: not charged).
    pub charge: Option<Charge>,
    /// The request; its history is filled from the store when the generation starts.
    pub request: GenerationRequest,
    pub stop: StopHandle,
}

/// How the loop ended.
enum End {
    /// Write this outcome (completed, cancelled while the store was away, or failed).
    Finish(Outcome),
    /// Somebody else already ended the message (cancel, takeover): write nothing.
    Stopped(MessageState),
    /// Another writer owns the message now.
    Lost,
}

/// What the answer to one write means for the loop.
enum Step {
    /// Written: go on.
    Next,
    /// Not written: write this chunk again, now or after `delay`.
    Again(StreamChunk, Option<Duration>),
    Stop(End),
}

/// A store outage seen by this generation.
#[derive(Debug, Clone, Copy)]
struct Outage {
    since: Instant,
    delay: Duration,
}

/// The outcome of a failure for lack of the store.
fn store_lost(why: &str) -> Outcome {
    Outcome {
        status: FinalStatus::Failed,
        error: Some(ErrorBody::new(ErrorCode::RedisUnavailable, why)),
        usage: None,
    }
}

/// The store's side of one generation: the copy of its log, the outage it is in, and the
/// operations that put the message back.
struct Writer {
    store: Arc<dyn Store>,
    msg: MessageRef,
    owner: String,
    copy: LogCopy,
    outage: Option<Outage>,
    budget: Duration,
    /// Completion tokens in the chunks made so far (what a cancel would count too).
    tokens: u64,
    /// Completion tokens in the chunks the log has taken (what the budget was charged for).
    written_tokens: u64,
    /// The prompt's estimated size in tokens.
    prompt_tokens: u64,
    /// When the request reached this service (time to first token, duration).
    received: std::time::Instant,
}

impl Writer {
    /// What the answer cost, when the upstream did not say: what was streamed, and the prompt
    /// estimated.
    fn estimated_usage(&self) -> Usage {
        Usage::estimated(self.prompt_tokens, self.tokens)
    }

    /// Notes a failed store call; returns the delay before the next try, or None when the
    /// outage has lasted longer than the budget.
    fn failed(&mut self, e: &StoreError) -> Option<Duration> {
        let now = Instant::now();
        let outage = self.outage.get_or_insert_with(|| {
            tracing::warn!(error = %e, "store unreachable; holding the answer until it is back");
            metrics::counter!("streamline_ai_store_outages_total").increment(1);
            Outage {
                since: now,
                delay: RETRY_FIRST,
            }
        });
        if now.duration_since(outage.since) > self.budget {
            return None;
        }
        let delay = outage.delay;
        outage.delay = (outage.delay * 2).min(RETRY_MAX);
        Some(delay)
    }

    fn in_outage(&self) -> bool {
        self.outage.is_some() || !self.store.is_connected()
    }

    /// Puts the message back after the store lost it (or part of its log).
    async fn restore(&mut self) -> Result<Restore, StoreError> {
        let Some(snapshot) = self.copy.snapshot(&self.owner) else {
            metrics::counter!("streamline_ai_restores_total", "result" => "too_long").increment(1);
            tracing::warn!(
                max = RESTORE_LOG_MAX_BYTES,
                "the store lost this message and it is too long to restore"
            );
            return Ok(Restore::Impossible);
        };
        let restored = lifecycle::restore(self.store.as_ref(), &self.msg, snapshot).await?;
        let (label, next) = match restored {
            Restored::Restored { appended } => {
                tracing::info!(appended, "the store lost this message; restored it");
                ("restored", Restore::Done)
            }
            Restored::CancelledMeanwhile { .. } => ("cancelled", Restore::Cancelled),
            Restored::Ended(state) => ("ended", Restore::Ended(state)),
            Restored::Lost => ("lost", Restore::Lost),
        };
        metrics::counter!("streamline_ai_restores_total", "result" => label).increment(1);
        Ok(next)
    }

    /// What a restore's result means for the loop, with `chunk` (the write that found the
    /// message missing) to write again.
    async fn restore_then(&mut self, chunk: StreamChunk) -> Step {
        match self.restore().await {
            Ok(Restore::Done) => Step::Again(chunk, None),
            Ok(Restore::Cancelled) => Step::Stop(End::Finish(Outcome::cancelled())),
            Ok(Restore::Ended(state)) => Step::Stop(End::Stopped(state)),
            Ok(Restore::Lost) => Step::Stop(End::Lost),
            Ok(Restore::Impossible) => Step::Stop(End::Finish(store_lost(
                "the store lost this answer, which was too long to restore",
            ))),
            Err(e) => match self.failed(&e) {
                Some(delay) => Step::Again(chunk, Some(delay)),
                None => Step::Stop(End::Finish(store_lost(
                    "the store was unreachable for too long",
                ))),
            },
        }
    }

    /// The tokens `chunk` adds to what the log has taken (what its charge is).
    fn new_tokens(&self, chunk: &StreamChunk) -> u64 {
        chunk
            .tokens
            .unwrap_or(0)
            .saturating_sub(self.written_tokens)
    }

    /// The log took `chunk`: keep its copy; stop if its charge spent the user's budget.
    fn taken(&mut self, chunk: StreamChunk, charged: Charged) -> Step {
        self.outage = None;
        self.written_tokens = self.written_tokens.max(chunk.tokens.unwrap_or(0));
        self.copy.push(chunk);
        match charged {
            Charged::Fine => Step::Next,
            Charged::Exhausted => {
                tracing::info!(
                    tokens = self.tokens,
                    "the user's token budget is spent; stopping"
                );
                crate::telemetry::record_quota_stop();
                Step::Stop(End::Finish(Outcome {
                    status: FinalStatus::Failed,
                    error: Some(ErrorBody::new(
                        ErrorCode::QuotaExceeded,
                        "this user's token budget is spent",
                    )),
                    usage: None,
                }))
            }
        }
    }

    /// The answer to the write of `chunk` (and to its charge).
    async fn written(
        &mut self,
        chunk: StreamChunk,
        result: Result<Appended, StoreError>,
        charged: Charged,
    ) -> Step {
        match result {
            Ok(Appended::Written) => {
                if chunk.seq == 1 {
                    crate::telemetry::record_first_token(self.received);
                }
                self.taken(chunk, charged)
            }
            // A retry of a write that did land before its answer was lost.
            Ok(Appended::OutOfOrder { last_seq }) if last_seq == chunk.seq => {
                self.taken(chunk, charged)
            }
            // The store has lost the tail of the log (a failover, an AOF tail).
            Ok(Appended::OutOfOrder { last_seq }) if last_seq + 1 < chunk.seq => {
                self.restore_then(chunk).await
            }
            Ok(Appended::OutOfOrder { last_seq }) => {
                tracing::warn!(
                    seq = chunk.seq,
                    last_seq,
                    "another writer owns this message now"
                );
                Step::Stop(End::Lost)
            }
            Ok(Appended::Missing) => self.restore_then(chunk).await,
            Ok(Appended::Stopped(state)) => Step::Stop(End::Stopped(state)),
            Err(e) => match self.failed(&e) {
                Some(delay) => Step::Again(chunk, Some(delay)),
                None => Step::Stop(End::Finish(store_lost(
                    "the store was unreachable for too long",
                ))),
            },
        }
    }

    /// Writes the end, through outages and a store that lost the message (restored first).
    async fn finish(&mut self, mut outcome: Outcome) -> Result<Finished, StoreError> {
        let mut outage: Option<Outage> = None;
        loop {
            let err = match self.store.finish(&self.msg, &outcome).await {
                Ok(Finished::Missing) => match self.restore().await {
                    Ok(Restore::Done) => continue,
                    Ok(Restore::Cancelled) => {
                        outcome = Outcome {
                            usage: outcome.usage,
                            ..Outcome::cancelled()
                        };
                        continue;
                    }
                    Ok(Restore::Ended(state)) => return Ok(Finished::AlreadyTerminal(state)),
                    Ok(Restore::Lost | Restore::Impossible) => return Ok(Finished::Missing),
                    Err(e) => e,
                },
                Err(e) => e,
                Ok(done) => return Ok(done),
            };
            let now = Instant::now();
            let o = outage.get_or_insert(Outage {
                since: now,
                delay: RETRY_FIRST,
            });
            if now.duration_since(o.since) > self.budget {
                return Err(err);
            }
            tracing::debug!(error = %err, "finish failed; retrying");
            tokio::time::sleep(o.delay).await;
            o.delay = (o.delay * 2).min(RETRY_MAX);
        }
    }
}

/// What a restore did.
enum Restore {
    Done,
    /// A cancel's tombstone was waiting: end the message as cancelled.
    Cancelled,
    Ended(MessageState),
    Lost,
    /// The answer was too long to keep a copy of.
    Impossible,
}

/// The prompt's size in tokens, estimated as a quarter of its bytes (the user's content and
/// the history sent with it), rounded up; the store uses the same rule for a message that
/// ended before its first chunk.
fn estimate_prompt_tokens(request: &GenerationRequest) -> u64 {
    let bytes = request.content.len()
        + request
            .history
            .iter()
            .map(|t| t.content.len())
            .sum::<usize>();
    (bytes as u64).div_ceil(4)
}

type Write = BoxFuture<'static, (StreamChunk, Result<Appended, StoreError>, Charged)>;

impl Generation {
    /// Runs to the end. Never panics; every way out leaves the message terminal in the store
    /// (or the store unreachable past the budget, which the readers detect).
    pub async fn run(self) {
        let span = tracing::info_span!(
            "generation",
            session_id = %self.msg.session_id,
            message_id = %self.msg.message_id,
            provider = self.provider.name()
        );
        async move {
            let mut writer = Writer {
                store: self.store.clone(),
                msg: self.msg,
                owner: self.owner.clone(),
                copy: LogCopy::new(self.request.content.clone(), self.created_ms),
                outage: None,
                budget: self.outage_budget,
                tokens: 0,
                written_tokens: 0,
                prompt_tokens: 0,
                received: self.request.origin.received,
            };
            let end = self.produce(&mut writer).await;
            match end {
                End::Finish(mut outcome) => {
                    // Every end carries usage: the upstream's, or counted here.
                    if outcome.usage.is_none() {
                        outcome.usage = Some(writer.estimated_usage());
                    }
                    let status = outcome.status;
                    match writer.finish(outcome.clone()).await {
                        Ok(Finished::Done { seq }) => {
                            crate::telemetry::record_generation_end(
                                status,
                                outcome.error.as_ref().map(|e| e.code),
                                writer.received,
                            );
                            if let Some(u) = &outcome.usage {
                                crate::telemetry::record_usage(u);
                            }
                            tracing::info!(?status, seq, "generation ended")
                        }
                        Ok(Finished::AlreadyTerminal(state)) => {
                            tracing::info!(?state, "message ended elsewhere first")
                        }
                        Ok(Finished::Missing | Finished::OwnerAlive | Finished::OwnerSuspected) => {
                            tracing::warn!("message vanished from the store")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not write the end of the message")
                        }
                    }
                }
                End::Stopped(state) => {
                    // A cancel (written by the canceller) ends the generation here too.
                    if state == MessageState::Cancelled {
                        crate::telemetry::record_generation_end(
                            FinalStatus::Cancelled,
                            None,
                            writer.received,
                        );
                    }
                    tracing::info!(?state, "generation stopped")
                }
                End::Lost => tracing::warn!("another writer owns the message; generation dropped"),
            }
        }
        .instrument(span)
        .await
    }

    async fn produce(self, writer: &mut Writer) -> End {
        let Generation {
            store,
            provider,
            msg,
            owner,
            lease_renewal,
            mut request,
            stop,
            charge,
            chunk_linger,
            ..
        } = self;
        match store.history(msg.session_id).await {
            Ok(history) => request.history = history,
            Err(e) => tracing::warn!(error = %e, "history unavailable; answering without it"),
        }
        writer.prompt_tokens = estimate_prompt_tokens(&request);
        let mut stream = provider.stream(request);
        let mut renewal = tokio::time::interval_at(
            Instant::now() + lease_renewal,
            lease_renewal.max(Duration::from_millis(50)),
        );
        renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending = Pending::default();
        let mut pacer = Pacer::new(chunk_linger);
        let mut seq: u64 = 0;
        let mut usage: Option<Usage> = None;
        let mut upstream_end: Option<Option<ErrorBody>> = None;
        let mut inflight: Option<Write> = None;
        // A chunk the store did not take, and when to try it again.
        let mut retry: Option<(StreamChunk, std::pin::Pin<Box<Sleep>>)> = None;
        // Created once: a fresh `stopped()` per loop turn would re-register with the token on
        // every token.
        let stopped = stop.stopped();
        tokio::pin!(stopped);
        let charge = charge.map(Arc::new);
        // `tokens`: what the chunk adds to what the log has taken, charged once it is in.
        let write = |chunk: StreamChunk, tokens: u64| -> Write {
            let store = store.clone();
            let charge = charge.clone();
            async move {
                let result = store.append(&msg, &chunk).await;
                let charged = match (&result, &charge) {
                    (Ok(appended), Some(charge)) => {
                        charge
                            .after_append(&store, &msg, chunk.seq, appended, tokens)
                            .await
                    }
                    _ => Charged::Fine,
                };
                (chunk, result, charged)
            }
            .boxed()
        };

        loop {
            if inflight.is_none() && retry.is_none() {
                // The last text, and a full buffer, go at once; the rest when the pacer says.
                let hurry = upstream_end.is_some() || pending.len() >= MAX_PENDING_BYTES;
                let piece = if !pending.is_empty() && (hurry || pacer.ready()) {
                    pending.take_chunk()
                } else {
                    None
                };
                if let Some(piece) = piece {
                    pacer.wrote();
                    seq += 1;
                    writer.tokens += piece.tokens;
                    let (sid, mid, ts) = (msg.session_id, msg.message_id, piece.first_ms);
                    let chunk = match piece.kind {
                        DeltaKind::Text => StreamChunk::delta(sid, mid, seq, piece.text, ts),
                        DeltaKind::Reasoning => {
                            StreamChunk::reasoning(sid, mid, seq, piece.text, ts)
                        }
                    };
                    // Counts in the log, so whoever ends the message can say what it cost.
                    let prompt = (seq == 1).then_some(writer.prompt_tokens);
                    let chunk = chunk.with_tokens(writer.tokens, prompt);
                    inflight = Some(write(chunk, piece.tokens));
                }
                if pending.is_empty() && inflight.is_none() {
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
            }
            let read_limit = if writer.in_outage() {
                OUTAGE_BUFFER_BYTES
            } else {
                MAX_PENDING_BYTES
            };
            tokio::select! {
                biased;
                reason = &mut stopped => {
                    return match reason {
                        StopReason::Cancelled => End::Stopped(MessageState::Cancelled),
                        // The cancel could not reach the store: this owner writes its end.
                        StopReason::CancelPending => End::Finish(Outcome { usage, ..Outcome::cancelled() }),
                        StopReason::Shutdown => End::Finish(Outcome {
                            status: FinalStatus::Failed,
                            error: Some(ErrorBody::new(ErrorCode::Shutdown, "the ai-service shut down before the answer finished")),
                            usage,
                        }),
                    };
                }
                (chunk, result, charged) = async { match inflight.as_mut() { Some(f) => f.await, None => std::future::pending().await } }, if inflight.is_some() => {
                    inflight = None;
                    match writer.written(chunk, result, charged).await {
                        Step::Next => {}
                        Step::Again(chunk, None) => {
                            let tokens = writer.new_tokens(&chunk);
                            inflight = Some(write(chunk, tokens));
                        }
                        Step::Again(chunk, Some(delay)) => {
                            retry = Some((chunk, Box::pin(tokio::time::sleep(delay))));
                        }
                        Step::Stop(end) => return end,
                    }
                }
                () = async { match retry.as_mut() { Some((_, sleep)) => sleep.as_mut().await, None => std::future::pending().await } }, if retry.is_some() => {
                    if let Some((chunk, _)) = retry.take() {
                        let tokens = writer.new_tokens(&chunk);
                        inflight = Some(write(chunk, tokens));
                    }
                }
                () = pacer.wait() => {}
                _ = renewal.tick() => {
                    match store.renew_lease(&msg, &owner).await {
                        Ok(Lease::Renewed) => {}
                        Ok(Lease::Ended(state)) => return End::Stopped(state),
                        Ok(Lease::Lost) => return End::Lost,
                        // The store lost the message while the model is quiet: put it back now
                        // (with a write pending, the write's answer does it).
                        Ok(Lease::Missing) if inflight.is_none() && retry.is_none() => {
                            match writer.restore().await {
                                Ok(Restore::Done) => {}
                                Ok(Restore::Cancelled) => return End::Finish(Outcome { usage, ..Outcome::cancelled() }),
                                Ok(Restore::Ended(state)) => return End::Stopped(state),
                                Ok(Restore::Lost) => return End::Lost,
                                Ok(Restore::Impossible) => return End::Finish(store_lost("the store lost this answer, which was too long to restore")),
                                Err(e) => tracing::debug!(error = %e, "restore failed; the next renewal tries again"),
                            }
                        }
                        Ok(Lease::Missing) => {}
                        // The store is away: keep going; writes will tell, and retry.
                        Err(e) => tracing::debug!(error = %e, "lease renewal failed"),
                    }
                }
                event = stream.next(), if upstream_end.is_none() && pending.len() < read_limit => {
                    match event {
                        Some(Ok(ProviderEvent::Token(t))) => {
                            pacer.arrived();
                            pending.push(DeltaKind::Text, &t);
                        }
                        Some(Ok(ProviderEvent::Reasoning(t))) => {
                            pacer.arrived();
                            pending.push(DeltaKind::Reasoning, &t);
                        }
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
