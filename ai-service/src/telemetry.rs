//! The ai-service's metric series: registered at zero when the service starts (so each shows up
//! in `/metrics` before its first event), and the functions that record a generation's life.
//! The table of every series (name, type, labels, meaning, unit) is `docs/OBSERVABILITY.md`.
//!
//! Every handle is resolved once ([`series`]); recording is an atomic update, never a registry
//! lookup, so these may be called on the token path.
//!
//! Where each recording happens:
//! - [`record_first_token`]: when a generation's first chunk is written to the store;
//! - [`record_generation_end`]: when a generation's end is written (the status it wrote);
//! - [`record_tokens`]: with the usage of that end, when the upstream reported one;
//! - [`UpstreamTimer`]: around each upstream HTTP request (the OpenAI provider);
//! - `streamline_ai_generations_running`: set at each scrape (`api.rs`);
//! - [`record_quota_refusal`], [`record_quota_stop`], [`record_budget_charge_error`]: where
//!   the user's token budget refuses a chat, stops a generation, or could not be charged;
//! - `streamline_ai_cancels_total`, `streamline_ai_api_unauthorized_total`,
//!   `streamline_ai_store_errors_total`: in the API handlers.

use std::sync::OnceLock;
use std::time::Instant;

use shared_proto::{CancelStatus, ErrorCode, FinalStatus, Usage};

/// The codes of `streamline_ai_upstream_errors_total{code}` (registered at zero): how a
/// generation can fail.
pub const UPSTREAM_ERROR_CODES: [ErrorCode; 8] = [
    ErrorCode::UpstreamError,
    ErrorCode::UpstreamAuth,
    ErrorCode::UpstreamRateLimited,
    ErrorCode::UpstreamTimeout,
    ErrorCode::WorkerLost,
    ErrorCode::RedisUnavailable,
    ErrorCode::Shutdown,
    ErrorCode::Internal,
];

/// The handles, by [`FinalStatus::ALL`] and [`UPSTREAM_ERROR_CODES`] index.
struct Series {
    generations: [metrics::Counter; FinalStatus::ALL.len()],
    duration: [metrics::Histogram; FinalStatus::ALL.len()],
    upstream_errors: [metrics::Counter; UPSTREAM_ERROR_CODES.len()],
    time_to_first_token: metrics::Histogram,
    upstream_request: metrics::Histogram,
    prompt_tokens: metrics::Counter,
    completion_tokens: metrics::Counter,
    running: metrics::Gauge,
    quota_refusals: metrics::Counter,
    quota_stops: metrics::Counter,
    budget_charge_errors: metrics::Counter,
}

/// Resolved on first use (after `server::start` installed the recorder).
fn series() -> &'static Series {
    static SERIES: OnceLock<Series> = OnceLock::new();
    SERIES.get_or_init(|| {
        Series {
        generations: FinalStatus::ALL.map(|s| {
            metrics::counter!("streamline_ai_generations_total", "status" => s.as_str())
        }),
        duration: FinalStatus::ALL.map(|s| {
            metrics::histogram!("streamline_ai_generation_duration_seconds", "status" => s.as_str())
        }),
        upstream_errors: UPSTREAM_ERROR_CODES.map(|c| {
            metrics::counter!("streamline_ai_upstream_errors_total", "code" => c.as_str())
        }),
        time_to_first_token: metrics::histogram!("streamline_ai_time_to_first_token_seconds"),
        upstream_request: metrics::histogram!("streamline_ai_upstream_request_seconds"),
        prompt_tokens: metrics::counter!("streamline_ai_tokens_total", "kind" => "prompt"),
        completion_tokens: metrics::counter!("streamline_ai_tokens_total", "kind" => "completion"),
        running: metrics::gauge!("streamline_ai_generations_running"),
        quota_refusals: metrics::counter!("streamline_ai_quota_refusals_total"),
        quota_stops: metrics::counter!("streamline_ai_quota_stops_total"),
        budget_charge_errors: metrics::counter!("streamline_ai_budget_charge_errors_total"),
    }
    })
}

/// Registers every series of the ai-service (and the store's) at zero; idempotent.
pub fn register() {
    let s = series();
    for c in s.generations.iter().chain(&s.upstream_errors) {
        c.increment(0);
    }
    s.prompt_tokens.increment(0);
    s.completion_tokens.increment(0);
    s.running.increment(0.0);
    s.quota_refusals.increment(0);
    s.quota_stops.increment(0);
    s.budget_charge_errors.increment(0);
    for status in CancelStatus::ALL {
        metrics::counter!("streamline_ai_cancels_total", "status" => status.as_str()).increment(0);
    }
    metrics::counter!("streamline_ai_api_unauthorized_total").increment(0);
    metrics::counter!("streamline_ai_store_errors_total").increment(0);
    metrics::gauge!("streamline_ai_ready").set(0.0);
    store::register_metrics();
}

/// `streamline_ai_time_to_first_token_seconds`: from `received` (the request reached this
/// service, [`crate::origin::Origin::received`]) to now, when the generation's first chunk has
/// been written to the store. Call once per generation.
pub fn record_first_token(received: Instant) {
    series()
        .time_to_first_token
        .record(received.elapsed().as_secs_f64());
}

/// A generation's end was written with `status` (and `error`, for a failure):
/// `streamline_ai_generations_total{status}`, `streamline_ai_generation_duration_seconds{status}`
/// (from `received`), and `streamline_ai_upstream_errors_total{code}` for a failure. Call once
/// per generation, when its end is in the store (`Finished::Done`).
pub fn record_generation_end(status: FinalStatus, error: Option<ErrorCode>, received: Instant) {
    let s = series();
    let i = FinalStatus::ALL
        .iter()
        .position(|x| *x == status)
        .unwrap_or(0);
    s.generations[i].increment(1);
    s.duration[i].record(received.elapsed().as_secs_f64());
    if let Some(code) = error {
        match UPSTREAM_ERROR_CODES.iter().position(|c| *c == code) {
            Some(j) => s.upstream_errors[j].increment(1),
            // A code outside the list: a lookup, on a path taken once per failed generation.
            None => {
                metrics::counter!("streamline_ai_upstream_errors_total", "code" => code.as_str())
                    .increment(1)
            }
        }
    }
}

/// `streamline_ai_tokens_total{kind}`: the token counts the upstream reported for one
/// generation (its final usage; call once per generation that has one).
pub fn record_tokens(prompt: u64, completion: u64) {
    let s = series();
    s.prompt_tokens.increment(prompt);
    s.completion_tokens.increment(completion);
}

/// [`record_tokens`] from a [`Usage`].
pub fn record_usage(usage: &Usage) {
    record_tokens(usage.prompt_tokens, usage.completion_tokens);
}

/// `streamline_ai_generations_running`, set at each scrape.
pub fn set_running(n: usize) {
    series().running.set(n as f64);
}

/// `streamline_ai_quota_refusals_total`: a chat was refused 429 `quota_exceeded`.
pub fn record_quota_refusal() {
    series().quota_refusals.increment(1);
}

/// `streamline_ai_quota_stops_total`: a running generation was stopped because a chunk spent
/// the user's budget.
pub fn record_quota_stop() {
    series().quota_stops.increment(1);
}

/// `streamline_ai_budget_charge_errors_total`: a chunk's charge got no answer from Redis (the
/// budget undercounts by that chunk).
pub fn record_budget_charge_error() {
    series().budget_charge_errors.increment(1);
}

/// Times one upstream HTTP request (`streamline_ai_upstream_request_seconds`): from the send
/// to its response headers, or to its failure. Recorded when dropped, so every way out of
/// the request counts (a cancelled generation drops it mid-request).
pub struct UpstreamTimer {
    started: Instant,
}

impl UpstreamTimer {
    pub fn start() -> Self {
        UpstreamTimer {
            started: Instant::now(),
        }
    }
}

impl Drop for UpstreamTimer {
    fn drop(&mut self) {
        series()
            .upstream_request
            .record(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_final_status_and_failure_code_has_a_handle() {
        // Runs on the no-op recorder: only the indexing is checked.
        for status in FinalStatus::ALL {
            record_generation_end(status, Some(ErrorCode::UpstreamTimeout), Instant::now());
        }
        record_generation_end(
            FinalStatus::Failed,
            Some(ErrorCode::InvalidFrame),
            Instant::now(),
        );
        record_first_token(Instant::now());
        record_tokens(1, 2);
        record_quota_refusal();
        record_quota_stop();
        record_budget_charge_error();
        drop(UpstreamTimer::start());
    }
}
