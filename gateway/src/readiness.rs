//! `/readyz` that tells the truth: a publish/subscribe round trip through the store.
//!
//! At its first probe the gateway subscribes to a nudge channel of its own (a random probe
//! replica name, `gw-probe-<id>`), then each probe publishes a nudge carrying a fresh nonce to
//! that channel with [`Store::nudge`] and waits for it to come back through the [`Feed`] (the
//! same subscriber connection and reader task that deliver every chunk). Ready means: not
//! draining, the subscriber is connected, and the nonce came back within [`PROBE_TIMEOUT`]. A
//! wedged subscriber (reader task stuck, subscription lost, server paused) therefore turns the
//! gateway not-ready, which a plain `PING` on the command connection would not notice.
//!
//! A gateway whose only JWT keys come from `JWT_JWKS_URL` is also not ready until a fetch of
//! the key set succeeded (it would refuse every token).
//!
//! Results are cached for [`CACHE_FOR`], and concurrent probes share one round trip, so a busy
//! health checker costs at most one publish per second or so. Only existing store methods are
//! used (`nudge`, `subscribe_nudges`), so any store implementation works unchanged; nudges to a
//! gateway's probe name are never sent by anything else, and [`ProbeFeed`] keeps them away from
//! the hub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use store::{Feed, FeedEvent, FeedHandler, MessageRef, Store};
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use crate::state::AppState;

/// How long a probe waits for its nonce to come back.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a probe result is reused.
pub const CACHE_FOR: Duration = Duration::from_millis(1500);

/// The probe of one gateway.
pub struct Probe {
    /// The nudge channel's replica name.
    replica: String,
    /// The `session_id` of every probe nudge (the nonce is the `message_id`).
    marker: Uuid,
    waiting: Mutex<HashMap<Uuid, oneshot::Sender<()>>>,
    subscribed: AtomicBool,
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Default for Probe {
    fn default() -> Self {
        Self::new()
    }
}

impl Probe {
    pub fn new() -> Self {
        Probe {
            replica: format!("gw-probe-{}", Uuid::new_v4().simple()),
            marker: Uuid::new_v4(),
            waiting: Mutex::new(HashMap::new()),
            subscribed: AtomicBool::new(false),
            last: tokio::sync::Mutex::new(None),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, oneshot::Sender<()>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A feed event: whether it was one of this probe's nudges (consumed).
    pub fn on_event(&self, event: &FeedEvent) -> bool {
        match event {
            FeedEvent::Nudge(msg) if msg.session_id == self.marker => {
                if let Some(tx) = self.waiting().remove(&msg.message_id) {
                    let _ = tx.send(());
                }
                true
            }
            _ => false,
        }
    }

    /// Ready or why not, from cache when fresh.
    pub async fn check(&self, store: &dyn Store, feed: &dyn Feed) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return result.clone();
            }
        }
        let started = Instant::now();
        let result = self.round_trip(store, feed).await;
        metrics::histogram!("streamline_gateway_readiness_probe_seconds")
            .record(started.elapsed().as_secs_f64());
        if let Err(why) = &result {
            metrics::counter!("streamline_gateway_readiness_probe_failures_total").increment(1);
            tracing::warn!(why, "readiness probe failed");
        }
        *last = Some((Instant::now(), result.clone()));
        result
    }

    async fn round_trip(&self, store: &dyn Store, feed: &dyn Feed) -> Result<(), String> {
        if !feed.is_connected() {
            return Err("redis subscriber disconnected".into());
        }
        if !self.subscribed.load(Ordering::Acquire) {
            match tokio::time::timeout(PROBE_TIMEOUT, feed.subscribe_nudges(&self.replica)).await {
                Ok(Ok(())) => self.subscribed.store(true, Ordering::Release),
                Ok(Err(e)) => return Err(format!("cannot subscribe the probe channel: {e}")),
                Err(_) => return Err("subscribing the probe channel timed out".into()),
            }
        }
        let nonce = Uuid::new_v4();
        let (tx, rx) = oneshot::channel();
        self.waiting().insert(nonce, tx);
        let msg = MessageRef::new(self.marker, nonce);
        let result = tokio::time::timeout(PROBE_TIMEOUT, async {
            store
                .nudge(&self.replica, &msg)
                .await
                .map_err(|e| format!("publish failed: {e}"))?;
            rx.await
                .map_err(|_| "probe dropped".to_string())
                .map(|_| ())
        })
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no publish/subscribe round trip within {PROBE_TIMEOUT:?} (subscriber wedged?)"
            ))
        });
        self.waiting().remove(&nonce);
        result
    }
}

/// Wraps the gateway's feed handler: the probe's nudges are answered here, everything else
/// goes to `inner`.
pub struct ProbeFeed<H> {
    probe: Arc<Probe>,
    inner: H,
}

impl<H> ProbeFeed<H> {
    pub fn new(probe: Arc<Probe>, inner: H) -> Self {
        ProbeFeed { probe, inner }
    }
}

impl<H: FeedHandler> FeedHandler for ProbeFeed<H> {
    fn on_event(&self, event: FeedEvent) {
        if !self.probe.on_event(&event) {
            self.inner.on_event(event);
        }
    }
}

/// Ready, or why not: draining, or the probe's verdict. Also sets `streamline_gateway_ready`
/// (1 or 0), so that the scrape and the alert rules see what `/readyz` answers.
pub async fn current(state: &AppState, probe: &Probe) -> Result<(), String> {
    let no_key = state
        .security
        .jwt
        .as_ref()
        .is_some_and(|jwt| !jwt.has_keys());
    let result = if state.is_draining() {
        Err("draining".to_string())
    } else if no_key {
        // Every token would be refused: keep the balancer's traffic away.
        Err("no JWT verification key yet (JWT_JWKS_URL not fetched)".to_string())
    } else {
        probe.check(state.store.as_ref(), state.feed.as_ref()).await
    };
    metrics::gauge!("streamline_gateway_ready").set(if result.is_ok() { 1.0 } else { 0.0 });
    result
}

/// `GET /readyz`: 200 "ready", or 503 with the reason.
pub async fn readyz(state: web::Data<AppState>, probe: web::Data<Probe>) -> HttpResponse {
    match current(&state, &probe).await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(why) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(why),
    }
}

/// `GET /metrics`: readiness first (cached, so at most one round trip per [`CACHE_FOR`]),
/// then every series.
pub async fn metrics_route(state: web::Data<AppState>, probe: web::Data<Probe>) -> HttpResponse {
    let _ = current(&state, &probe).await;
    service_kit::metrics_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_probes_own_nudges_are_consumed() {
        let p = Probe::new();
        let (tx, mut rx) = oneshot::channel();
        let nonce = Uuid::new_v4();
        p.waiting().insert(nonce, tx);
        assert!(!p.on_event(&FeedEvent::Nudge(MessageRef::new(Uuid::new_v4(), nonce))));
        assert!(!p.on_event(&FeedEvent::Resync));
        assert!(rx.try_recv().is_err());
        assert!(p.on_event(&FeedEvent::Nudge(MessageRef::new(p.marker, nonce))));
        assert!(rx.try_recv().is_ok());
        // An unknown nonce (a late answer) is consumed and ignored.
        assert!(p.on_event(&FeedEvent::Nudge(MessageRef::new(p.marker, Uuid::new_v4()))));
    }
}
