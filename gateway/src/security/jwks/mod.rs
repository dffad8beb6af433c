//! `JWT_JWKS_URL`: the identity provider's key set, fetched at start, cached, and refreshed.
//!
//! - **Periodic refresh**: every `JWT_JWKS_REFRESH`, or sooner when the answer's
//!   `Cache-Control: max-age` says so (never sooner than `JWT_JWKS_MIN_REFRESH`; see
//!   [`cache_control`]).
//! - **Unknown `kid`**: a token naming a key we do not hold asks for a refetch
//!   ([`Jwks::refetch_for_unknown_kid`]); fetches (of any cause) are at least
//!   `JWT_JWKS_MIN_REFRESH` apart and never concurrent, so a flood of made-up `kid`s costs the
//!   provider at most one request per `JWT_JWKS_MIN_REFRESH`, and a key the provider rotated
//!   in is accepted within that time.
//! - **Provider down**: a failed fetch (unreachable, non-200, too large, no usable key) keeps
//!   the last good set in force and is retried after `JWT_JWKS_MIN_REFRESH`. Before the first
//!   good fetch there is no key: those tokens are refused and, when the JWKS is the only key
//!   source, `/readyz` says not ready.

pub mod cache_control;
pub mod fetch;
pub mod url;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::security::jwt::key::VerificationKey;
use fetch::{ClientError, FetchError, JwksClient};
use url::JwksUrl;

/// What a refetch for an unknown `kid` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetch {
    /// A fetch ended (this one, or one that ran while we waited): look the key up again.
    Fetched,
    /// The last fetch was less than `JWT_JWKS_MIN_REFRESH` ago.
    TooSoon,
    /// The fetch failed; the last good set stays.
    Failed,
}

/// When fetches happen (serialized by the mutex around it).
#[derive(Debug)]
struct Schedule {
    last_attempt: Option<Instant>,
    /// When the periodic refresh is due.
    next_due: Instant,
    /// The last failure's text, to log a cause once rather than per retry.
    last_error: Option<String>,
}

/// A provider's key set and its refresh policy.
pub struct Jwks {
    client: JwksClient,
    keys: RwLock<Arc<Vec<VerificationKey>>>,
    schedule: tokio::sync::Mutex<Schedule>,
    /// Fetches ended so far (tells a waiter that one ran while it waited).
    fetches: AtomicU64,
    refresh: Duration,
    min_refresh: Duration,
}

impl Jwks {
    /// `refresh`: `JWT_JWKS_REFRESH`; `min_refresh`: `JWT_JWKS_MIN_REFRESH`. Fetches nothing
    /// yet (see [`Jwks::fetch_now`] and [`Jwks::run`]).
    pub fn new(
        url: JwksUrl,
        refresh: Duration,
        min_refresh: Duration,
    ) -> Result<Self, ClientError> {
        Ok(Jwks {
            client: JwksClient::new(url)?,
            keys: RwLock::new(Arc::new(Vec::new())),
            schedule: tokio::sync::Mutex::new(Schedule {
                last_attempt: None,
                next_due: Instant::now(),
                last_error: None,
            }),
            fetches: AtomicU64::new(0),
            refresh,
            min_refresh,
        })
    }

    /// The keys in force now.
    pub fn keys(&self) -> Arc<Vec<VerificationKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn url(&self) -> &JwksUrl {
        self.client.url()
    }

    /// Puts `keys` in force as if fetched (unit tests of the verifier).
    #[cfg(test)]
    pub(crate) fn hold_for_test(&self, keys: Vec<VerificationKey>) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }

    /// A token named a `kid` we do not hold: fetch again, unless the last fetch was less than
    /// `JWT_JWKS_MIN_REFRESH` ago. Waits for a fetch in flight rather than starting another.
    pub async fn refetch_for_unknown_kid(&self) -> Refetch {
        let seen = self.fetches.load(Ordering::Acquire);
        let mut schedule = self.schedule.lock().await;
        if self.fetches.load(Ordering::Acquire) != seen {
            return Refetch::Fetched;
        }
        if schedule
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.min_refresh)
        {
            metrics::counter!("streamline_gateway_jwks_refetches_refused_total").increment(1);
            return Refetch::TooSoon;
        }
        self.fetch(&mut schedule, "unknown kid").await
    }

    /// Fetches now (at start), whatever the schedule.
    pub async fn fetch_now(&self) -> Refetch {
        let mut schedule = self.schedule.lock().await;
        self.fetch(&mut schedule, "start").await
    }

    /// The periodic refresh, until `shutdown` (which also abandons a fetch in flight).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let refresh = async {
            loop {
                let due = self.schedule.lock().await.next_due;
                tokio::time::sleep_until(due).await;
                let mut schedule = self.schedule.lock().await;
                // A fetch for an unknown kid may have moved the schedule meanwhile.
                if schedule.next_due <= Instant::now() {
                    self.fetch(&mut schedule, "refresh").await;
                }
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = refresh => {}
        }
    }

    /// One fetch, with the schedule held: replaces the keys on success, keeps them otherwise.
    async fn fetch(&self, schedule: &mut Schedule, cause: &'static str) -> Refetch {
        let started = Instant::now();
        schedule.last_attempt = Some(started);
        let result = self.client.fetch().await;
        let outcome = match result {
            Ok(fetched) => {
                let keep = cache_control::keep_for(fetched.max_age, self.min_refresh, self.refresh);
                schedule.next_due = Instant::now() + keep;
                let count = fetched.keys.len();
                let kids: Vec<&str> = fetched.keys.iter().filter_map(|k| k.kid()).collect();
                if schedule.last_error.take().is_some() {
                    tracing::info!(url = %self.url(), keys = count, "JWKS fetched again");
                }
                tracing::debug!(cause, keys = count, skipped = fetched.skipped, ?kids, next_in = ?keep, "JWKS fetched");
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fetched.keys);
                metrics::gauge!("streamline_gateway_jwks_keys").set(count as f64);
                metrics::counter!("streamline_gateway_jwks_fetches_total", "result" => "ok")
                    .increment(1);
                Refetch::Fetched
            }
            Err(e) => {
                schedule.next_due = Instant::now() + self.min_refresh;
                self.report(schedule, cause, &e);
                metrics::counter!("streamline_gateway_jwks_fetches_total", "result" => "error")
                    .increment(1);
                Refetch::Failed
            }
        };
        self.fetches.fetch_add(1, Ordering::AcqRel);
        outcome
    }

    /// Logs a failed fetch once per cause (retries of the same failure go to debug).
    fn report(&self, schedule: &mut Schedule, cause: &'static str, e: &FetchError) {
        let text = e.to_string();
        let held = self.keys().len();
        if schedule.last_error.as_deref() == Some(text.as_str()) {
            tracing::debug!(url = %self.url(), cause, error = %text, "JWKS fetch failed again");
        } else {
            tracing::warn!(
                url = %self.url(),
                cause,
                error = %text,
                keys_in_force = held,
                retry_in = ?self.min_refresh,
                "JWKS fetch failed; the last good key set stays in force"
            );
            schedule.last_error = Some(text);
        }
    }
}
