//! One generation: the state machine behind the stream an [`OpenAiProvider`] returns.
//!
//! Contract: each call of [`Generation::next`] yields the next token or usage, `None` once
//! the answer is complete, or one error after which it yields nothing more. In between it
//! sends requests, reads the body through the SSE parser and `stream.rs`'s decoder, and keeps
//! these promises:
//!
//! # Bounded waiting
//!
//! Every await is bounded: connecting by `connect_timeout` (the client's); everything up to
//! the first token (including retries and their back-off) by one `first_token_timeout`
//! deadline measured from the first poll; each wait for a further token by `idle_timeout`
//! since the previous token. Reasoning text pushes the current deadline back without counting
//! as a token. The consumer's own pace does not count against the timers, since the deadline
//! is only checked while we wait on the network.
//!
//! # Retries
//!
//! A request is retried (exponential back-off with jitter, at least `Retry-After` when the
//! server sends one) on 429, 5xx, connection failures and bodies that end before any token, but
//! only while no token has been handed to the caller: after that a retry would produce a
//! second, different answer glued to the first. A retry that could not start before the
//! first-token deadline is not attempted: the real error is reported at once.
//!
//! # Connections
//!
//! A failed attempt's response is dropped before any back-off (its connection closes); a
//! complete one is read to its end, briefly, so hyper can reuse the connection.
//!
//! [`OpenAiProvider`]: super::OpenAiProvider

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::Response;
use shared_proto::ErrorCode;
use tokio::time::{timeout_at, Instant};
use uuid::Uuid;

use super::attempt::{self, Answer};
use super::redact::describe_reqwest;
use super::stream::{BatchEnd, Decoder, Failure, Step, Thinking};
use super::{Inner, OpenAiConfig};
use crate::provider::sse::{SseEvent, SseParser};
use crate::provider::{ProviderError, ProviderEvent};

/// Longest exponential back-off step (a `Retry-After` may ask for more; the first-token
/// deadline still bounds it).
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// After `[DONE]`, how long we keep reading for the end of the body. Reading the body to its
/// end is what lets hyper put the connection back into the pool; servers normally end it
/// right after `[DONE]`, so this only costs time with a server that keeps the body open.
const DRAIN_AFTER_DONE: Duration = Duration::from_millis(500);
const MAX_DRAIN_BYTES: usize = 64 * 1024;

/// One generation: the state machine behind the stream.
pub(super) struct Generation {
    inner: Arc<Inner>,
    body: Bytes,
    message_id: Uuid,
    phase: Phase,
    progress: Progress,
}

// One `Phase` per generation, inside a stream that is boxed anyway: the size difference
// between variants costs nothing worth an extra allocation per attempt.
#[allow(clippy::large_enum_variant)]
enum Phase {
    /// The next step is to send a request (first attempt or retry).
    Request,
    /// Reading the SSE body of a successful response.
    Reading {
        response: Response,
        parser: SseParser,
    },
    /// Nothing more will be read; the queue holds whatever is left to hand out.
    Ended,
}

/// What has been learnt from the upstream so far; kept apart from [`Phase`] so that both can be
/// borrowed at once.
#[derive(Default)]
struct Progress {
    /// When the current wait gives up: first-token deadline, then last token + idle timeout.
    /// Set on first poll, so that building a stream that is never polled starts no clock.
    deadline: Option<Instant>,
    /// Requests sent so far.
    attempts: u32,
    /// Whether a token has been handed to the caller; from then on nothing is retried.
    got_token: bool,
    /// What the current attempt's body said so far, and the steps not yet handed out.
    decoder: Decoder,
}

impl Progress {
    /// Queues the steps of a batch of events; reasoning text pushes the current deadline
    /// back, as a token would, without counting as one.
    fn take_events(
        &mut self,
        events: impl IntoIterator<Item = SseEvent>,
        cfg: &OpenAiConfig,
    ) -> BatchEnd {
        let decoded = self.decoder.push_events(events, cfg);
        if decoded.thinking == Thinking::Seen {
            let wait = if self.got_token {
                cfg.idle_timeout
            } else {
                cfg.first_token_timeout
            };
            self.deadline = Some(after(wait));
        }
        decoded.end
    }
}

impl Generation {
    /// A generation that sends `body` on its first poll.
    pub(super) fn new(inner: Arc<Inner>, body: Bytes, message_id: Uuid) -> Self {
        Generation {
            inner,
            body,
            message_id,
            phase: Phase::Request,
            progress: Progress::default(),
        }
    }

    /// The next item of the stream; `None` once the answer is complete or has failed.
    pub(super) async fn next(&mut self) -> Option<Result<ProviderEvent, ProviderError>> {
        let cfg = &self.inner.cfg;
        if self.progress.deadline.is_none() {
            self.progress.deadline = Some(after(cfg.first_token_timeout));
        }
        loop {
            if let Some(step) = self.progress.decoder.queue.pop_front() {
                match step {
                    Step::Event(event) => {
                        match &event {
                            ProviderEvent::Token(_) => {
                                self.progress.got_token = true;
                                self.progress.deadline = Some(after(cfg.idle_timeout));
                            }
                            // Reasoning reached the client too: no retry from now on (its
                            // deadline was pushed back when it was decoded).
                            ProviderEvent::Reasoning(_) => self.progress.got_token = true,
                            ProviderEvent::Usage(_) => {}
                        }
                        return Some(Ok(event));
                    }
                    Step::Complete => {
                        if let Phase::Reading { response, .. } = &mut self.phase {
                            drain(response).await;
                        }
                        self.phase = Phase::Ended;
                        self.progress.decoder.queue.clear();
                        tracing::debug!(
                            message_id = %self.message_id,
                            finish_reason = self.progress.decoder.finish_reason.as_deref().unwrap_or("-"),
                            "upstream answer complete"
                        );
                        return self
                            .progress
                            .decoder
                            .usage
                            .take()
                            .map(|u| Ok(ProviderEvent::Usage(u)));
                    }
                    Step::Fail(failure) => {
                        // Drop the connection before any back-off.
                        self.phase = Phase::Ended;
                        self.progress.decoder.queue.clear();
                        match self.retry_delay(&failure) {
                            Some(delay) => {
                                tracing::debug!(
                                    message_id = %self.message_id,
                                    attempt = self.progress.attempts,
                                    delay_ms = delay.as_millis() as u64,
                                    error = %failure.error,
                                    "retrying upstream request"
                                );
                                tokio::time::sleep(delay).await;
                                self.progress.decoder.finish_reason = None;
                                self.progress.decoder.usage = None;
                                self.phase = Phase::Request;
                                continue;
                            }
                            None => {
                                let mut error = failure.error;
                                if self.progress.attempts > 1 {
                                    error.message.push_str(&format!(
                                        " (after {} attempts)",
                                        self.progress.attempts
                                    ));
                                }
                                return Some(Err(error));
                            }
                        }
                    }
                }
            }

            let deadline = self.progress.deadline.unwrap_or_else(Instant::now);
            match &mut self.phase {
                Phase::Ended => return None,
                Phase::Request => {
                    self.progress.attempts = self.progress.attempts.saturating_add(1);
                    match attempt::send(&self.inner, &self.body, deadline, self.progress.attempts)
                        .await
                    {
                        Ok(Answer::Sse(response)) => {
                            self.phase = Phase::Reading {
                                response,
                                parser: SseParser::new(),
                            }
                        }
                        Ok(Answer::Steps(steps)) => {
                            self.phase = Phase::Ended;
                            self.progress.decoder.queue.extend(steps);
                        }
                        Err(failure) => self.progress.decoder.queue.push_back(Step::Fail(failure)),
                    }
                }
                Phase::Reading { response, parser } => {
                    let read = timeout_at(deadline, response.chunk()).await;
                    let progress = &mut self.progress;
                    match read {
                        Ok(Ok(Some(bytes))) => match parser.push(&bytes) {
                            Ok(events) => {
                                progress.take_events(events, &self.inner.cfg);
                            }
                            Err(e) => progress.decoder.queue.push_back(Step::Fail(Failure::fatal(
                                ErrorCode::UpstreamError,
                                format!("unreadable event stream: {e}"),
                            ))),
                        },
                        Ok(Ok(None)) => {
                            let events = parser.finish();
                            if progress.take_events(events, &self.inner.cfg) == BatchEnd::Open {
                                progress
                                    .decoder
                                    .queue
                                    .push_back(progress.decoder.end_of_body(
                                    "the upstream closed the stream before the answer was complete",
                                ));
                            }
                        }
                        Ok(Err(e)) => {
                            let msg = format!(
                                "connection to the upstream lost mid-answer: {}",
                                describe_reqwest(e, &self.inner.cfg)
                            );
                            progress
                                .decoder
                                .queue
                                .push_back(progress.decoder.end_of_body(&msg));
                        }
                        Err(_elapsed) => {
                            self.phase = Phase::Ended;
                            let step = if progress.decoder.finish_reason.is_some() {
                                // The answer is complete; only the usage/[DONE] tail is late.
                                Step::Complete
                            } else if progress.got_token {
                                Step::Fail(Failure::fatal(
                                    ErrorCode::UpstreamTimeout,
                                    format!(
                                        "no token from the upstream for {}",
                                        humantime::format_duration(cfg.idle_timeout)
                                    ),
                                ))
                            } else {
                                Step::Fail(Failure::first_token_timeout(cfg))
                            };
                            progress.decoder.queue.push_back(step);
                        }
                    }
                }
            }
        }
    }

    /// How long to wait before retrying after `failure`, or `None` to give up.
    fn retry_delay(&self, failure: &Failure) -> Option<Duration> {
        let cfg = &self.inner.cfg;
        let attempts = self.progress.attempts;
        if !failure.retryable || self.progress.got_token || attempts > cfg.max_retries {
            return None;
        }
        let exp = cfg
            .retry_base_delay
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
            .min(MAX_BACKOFF);
        // Jitter in [exp/2, exp] so that many generations failing together do not retry in
        // lockstep.
        let half = exp / 2;
        let jitter = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        let mut delay = half + Duration::from_millis(jitter);
        if let Some(after) = failure.retry_after {
            delay = delay.max(after);
        }
        // A retry that cannot produce a token before the deadline is pointless: fail now with
        // the real reason rather than later with a timeout.
        let deadline = self.progress.deadline?;
        if after(delay) >= deadline {
            return None;
        }
        Some(delay)
    }
}

/// `now + duration`, saturating: an absurdly large configured timeout means "never", not a
/// panic on overflow.
fn after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// Reads the rest of the body after `[DONE]`, briefly, so the connection can be reused.
async fn drain(response: &mut Response) {
    let deadline = Instant::now() + DRAIN_AFTER_DONE;
    let mut read = 0usize;
    while let Ok(Ok(Some(bytes))) = timeout_at(deadline, response.chunk()).await {
        read += bytes.len();
        if read > MAX_DRAIN_BYTES {
            break;
        }
    }
}
