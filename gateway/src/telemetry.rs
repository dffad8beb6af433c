//! The gateway's metric series, registered at zero when the gateway starts so that every one
//! shows up in `/metrics` before its first event. The table of every series (name, type,
//! labels, meaning, unit) is `docs/OBSERVABILITY.md`.
//!
//! The series touched per frame (frames in, the send queue gauge, connections) are resolved
//! once here ([`hot`]): `metrics::counter!` with a label builds a key and looks it up in the
//! registry on every call. The sink resolves its own per-frame series the same way.

use std::sync::OnceLock;

use shared_proto::{CancelStatus, ErrorCode, ServerFrame};

/// Kinds of client frame counted in `streamline_gateway_frames_in_total{type}`.
pub const FRAMES_IN: [&str; 8] = [
    "chat",
    "cancel",
    "resume",
    "heartbeat",
    "conversation",
    "auth",
    "invalid",
    "binary",
];

/// Series written per frame or per connection, resolved once.
pub struct Hot {
    /// `streamline_gateway_frames_in_total` by the index of its kind in [`FRAMES_IN`].
    frames_in: [metrics::Counter; FRAMES_IN.len()],
    pub send_queue_bytes: metrics::Gauge,
    pub connections: metrics::Gauge,
}

impl Hot {
    /// Counts one client frame of `kind` (one of [`FRAMES_IN`]).
    pub fn frame_in(&self, kind: &str) {
        match FRAMES_IN.iter().position(|k| *k == kind) {
            Some(i) => self.frames_in[i].increment(1),
            None => {
                metrics::counter!("streamline_gateway_frames_in_total", "type" => kind.to_string())
                    .increment(1)
            }
        }
    }
}

/// The per-frame series (resolved on first use, after `server::start` installed the recorder).
pub fn hot() -> &'static Hot {
    static HOT: OnceLock<Hot> = OnceLock::new();
    HOT.get_or_init(|| Hot {
        frames_in: FRAMES_IN
            .map(|kind| metrics::counter!("streamline_gateway_frames_in_total", "type" => kind)),
        send_queue_bytes: metrics::gauge!("streamline_gateway_send_queue_bytes"),
        connections: metrics::gauge!("streamline_gateway_connections"),
    })
}

/// Registers every series at zero (idempotent).
pub fn register() {
    let hot = hot();
    hot.connections.increment(0.0);
    hot.send_queue_bytes.increment(0.0);
    for reason in [
        "draining",
        "origin",
        "auth",
        "max_connections",
        "max_connections_per_ip",
        "resume",
        "store",
    ] {
        metrics::counter!("streamline_gateway_connections_refused_total", "reason" => reason)
            .increment(0);
    }
    for reason in crate::security::jwt::JwtError::ALL {
        metrics::counter!("streamline_gateway_auth_failures_total", "reason" => reason.as_str())
            .increment(0);
    }
    for kind in ServerFrame::KINDS {
        metrics::counter!("streamline_gateway_frames_out_total", "type" => kind).increment(0);
    }
    metrics::counter!("streamline_gateway_slow_consumer_closes_total").increment(0);
    for bucket in ["requests", "cancels"] {
        metrics::counter!("streamline_gateway_rate_limited_total", "bucket" => bucket).increment(0);
    }
    metrics::counter!("streamline_gateway_too_many_generations_total").increment(0);
    for status in CancelStatus::ALL {
        metrics::counter!("streamline_gateway_cancels_total", "status" => status.as_str())
            .increment(0);
    }
    for code in [
        ErrorCode::AiServiceUnavailable,
        ErrorCode::StoreUnavailable,
        ErrorCode::ShuttingDown,
        ErrorCode::EmptyContent,
    ] {
        metrics::counter!("streamline_gateway_ai_errors_total", "code" => code.as_str())
            .increment(0);
    }
    let _ = metrics::histogram!("streamline_gateway_delivery_lag_seconds");
    let _ = metrics::histogram!("streamline_gateway_readiness_probe_seconds");
    metrics::counter!("streamline_gateway_readiness_probe_failures_total").increment(0);
    metrics::gauge!("streamline_gateway_ready").set(0.0);
    for result in ["accepted", "refused", "anonymous"] {
        metrics::counter!("streamline_gateway_token_refreshes_total", "result" => result)
            .increment(0);
    }
    metrics::counter!("streamline_gateway_token_expired_closes_total").increment(0);
    for result in ["ok", "error"] {
        metrics::counter!("streamline_gateway_jwks_fetches_total", "result" => result).increment(0);
    }
    metrics::counter!("streamline_gateway_jwks_refetches_refused_total").increment(0);
    metrics::gauge!("streamline_gateway_jwks_keys").increment(0.0);
    store::register_metrics();
}
