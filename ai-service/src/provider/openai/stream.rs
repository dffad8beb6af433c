//! Decoding an upstream answer into steps: tokens, usage, completion or failure.
//!
//! Contract: [`Decoder`] turns the server-sent events of a chat-completions stream (as split
//! by `super::super::sse`) into [`Step`]s, in order, and [`decode_completion`] does the same
//! for a server that ignored `stream: true` and sent one JSON completion. Decoding is pure:
//! no I/O and no clock. What the steps mean for timers and retries is `generation.rs`'s
//! business; the decoder only reports that the upstream showed signs of life
//! ([`Thinking::Seen`]) without producing answer text.
//!
//! What counts as what (the dialects of OpenAI, vLLM, llama-server and Ollama):
//! - `[DONE]` completes the answer; so does the end of the body after a `finish_reason`;
//! - an `error` event, or a JSON chunk with a non-null `error`, fails it (scrubbed by
//!   `redact.rs`); events after a terminal step are ignored;
//! - text is `choices[0].delta.content`; empty or null content is no token; other choices
//!   are not ours (we never ask for `n > 1`);
//! - `reasoning_content` / `reasoning` is not answer text: it becomes reasoning events (and a
//!   sign of life);
//! - a non-JSON event is skipped (a proxy's ping must not kill an answer).

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;
use shared_proto::{ErrorCode, Usage};

use super::chunk::{Chunk, RawUsage};
use super::redact::{error_text, upstream_message};
use super::OpenAiConfig;
use crate::provider::sse::SseEvent;
use crate::provider::{ProviderError, ProviderEvent};

/// One decoded unit of an answer, handed out by the generation in order.
pub(super) enum Step {
    Event(ProviderEvent),
    /// The answer is complete (`[DONE]`, or the end of the body after a `finish_reason`).
    Complete,
    Fail(Failure),
}

/// Why an attempt failed, and whether trying again might help.
pub(super) struct Failure {
    pub(super) error: ProviderError,
    /// Whether another attempt may fix it (only used before the first token).
    pub(super) retryable: bool,
    /// The server's `Retry-After`, if it sent one.
    pub(super) retry_after: Option<Duration>,
}

impl Failure {
    /// The failure of a generation that reached its first-token deadline (waiting for a
    /// response, for a body, or between retries).
    pub(super) fn first_token_timeout(cfg: &OpenAiConfig) -> Failure {
        Failure::fatal(
            ErrorCode::UpstreamTimeout,
            format!(
                "no first token from the upstream within {}",
                humantime::format_duration(cfg.first_token_timeout)
            ),
        )
    }

    pub(super) fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            error: ProviderError::new(code, message),
            retryable: false,
            retry_after: None,
        }
    }

    pub(super) fn transient(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            error: ProviderError::new(code, message),
            retryable: true,
            retry_after: None,
        }
    }
}
/// Whether a batch of events ended the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BatchEnd {
    /// No terminal step yet: keep reading.
    Open,
    /// A terminal step (complete or failed) was queued; the rest of the batch was ignored.
    Terminal,
}

/// Whether a batch carried reasoning text (`reasoning_content`): not part of the answer, but
/// proof that the upstream is alive, so a long think is not mistaken for a stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Thinking {
    NotSeen,
    Seen,
}

/// What [`Decoder::push_events`] learnt from one batch, besides the steps it queued.
pub(super) struct Decoded {
    pub(super) end: BatchEnd,
    pub(super) thinking: Thinking,
}

/// What has been decoded from the current attempt's body so far.
#[derive(Default)]
pub(super) struct Decoder {
    /// The `finish_reason` of the answer, once seen: the answer is complete.
    pub(super) finish_reason: Option<String>,
    /// The latest token counts; handed out once, just before the end.
    pub(super) usage: Option<Usage>,
    /// Decoded steps not yet handed out, in order.
    pub(super) queue: VecDeque<Step>,
}

impl Decoder {
    /// Turns parsed events into queued steps, up to and including the first terminal one
    /// (events after it are ignored).
    pub(super) fn push_events(
        &mut self,
        events: impl IntoIterator<Item = SseEvent>,
        cfg: &OpenAiConfig,
    ) -> Decoded {
        let mut thinking = Thinking::NotSeen;
        for event in events {
            if let Some(step) = self.handle_event(event, cfg, &mut thinking) {
                self.queue.push_back(step);
                return Decoded {
                    end: BatchEnd::Terminal,
                    thinking,
                };
            }
        }
        Decoded {
            end: BatchEnd::Open,
            thinking,
        }
    }

    /// Handles one event: queues tokens, records finish/usage/thinking, returns a terminal
    /// step.
    fn handle_event(
        &mut self,
        event: SseEvent,
        cfg: &OpenAiConfig,
        thinking: &mut Thinking,
    ) -> Option<Step> {
        let data = event.data.trim();
        if event.event == "error" {
            return Some(Step::Fail(Failure::fatal(
                ErrorCode::UpstreamError,
                format!(
                    "the upstream reported an error: {}",
                    upstream_message(data.as_bytes(), cfg)
                ),
            )));
        }
        if data == "[DONE]" {
            return Some(Step::Complete);
        }
        if data.is_empty() {
            return None;
        }
        let chunk = match Chunk::parse(data) {
            Ok(c) => c,
            Err(e) => {
                // Not fatal: a proxy's ping or a vendor extension must not kill the answer.
                // A truly broken stream still fails, as it never reaches a finish.
                tracing::debug!(error = %e, "ignoring a non-JSON upstream event");
                return None;
            }
        };
        if let Some(error) = &chunk.error {
            return Some(Step::Fail(Failure::fatal(
                ErrorCode::UpstreamError,
                format!("the upstream reported an error: {}", error_text(error, cfg)),
            )));
        }
        if let Some(usage) = chunk.usage.as_ref().and_then(RawUsage::to_usage) {
            self.usage = Some(usage);
        }
        for choice in chunk.choices.into_iter().flatten() {
            // We never ask for `n > 1`; anything but the first choice is not ours.
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            let delta = choice.delta.unwrap_or_default();
            // A reasoning model "thinks" (`reasoning_content`: vLLM, DeepSeek, llama.cpp;
            // `reasoning`: gpt-oss, OpenRouter) before (and between) answer tokens. That text is
            // forwarded apart, and it proves the upstream is alive (the generation pushes its
            // timeout back, see [`Thinking`]).
            let reasoning = [delta.reasoning_content, delta.reasoning]
                .into_iter()
                .flatten()
                .next()
                .filter(|t| !t.is_empty());
            if let Some(text) = reasoning {
                *thinking = Thinking::Seen;
                self.queue
                    .push_back(Step::Event(ProviderEvent::Reasoning(text.into_owned())));
            }
            // Role-only first deltas, `"content": null` (llama-server) and `""` (Ollama's last
            // chunk) carry no text.
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                self.queue
                    .push_back(Step::Event(ProviderEvent::Token(text.into_owned())));
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason.into_owned());
            }
        }
        None
    }

    /// The body ended (cleanly or not) without `[DONE]`: complete if a `finish_reason` was
    /// seen, otherwise the answer was cut off.
    pub(super) fn end_of_body(&self, message: &str) -> Step {
        if self.finish_reason.is_some() {
            Step::Complete
        } else {
            // Retryable only matters before the first token: nothing reached the caller yet.
            Step::Fail(Failure::transient(ErrorCode::UpstreamError, message))
        }
    }
}

/// The steps of a server that ignored `stream: true` and answered with one JSON completion
/// (`body`, already read whole): its text as one token, its usage, then completion.
pub(super) fn decode_completion(body: &[u8], cfg: &OpenAiConfig) -> Result<Vec<Step>, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Failure::transient(
            ErrorCode::UpstreamError,
            format!("the upstream sent invalid JSON: {e}"),
        )
    })?;
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        return Err(Failure::fatal(
            ErrorCode::UpstreamError,
            format!("the upstream reported an error: {}", error_text(error, cfg)),
        ));
    }
    let content = value
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut steps = Vec::new();
    if !content.is_empty() {
        steps.push(Step::Event(ProviderEvent::Token(content.to_owned())));
    }
    if let Some(usage) = value
        .get("usage")
        .and_then(RawUsage::from_value)
        .and_then(|u| u.to_usage())
    {
        steps.push(Step::Event(ProviderEvent::Usage(usage)));
    }
    steps.push(Step::Complete);
    Ok(steps)
}
