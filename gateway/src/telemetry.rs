//! The gateway's metric series, registered at zero when the gateway starts so that every one
//! shows up in `/metrics` before its first event.
//!
//! | series | type | labels |
//! |---|---|---|
//! | `gateway_connections` | gauge | open WebSocket connections |
//! | `gateway_connections_refused_total` | counter | `reason`: draining, origin, auth, max_connections, max_connections_per_ip, resume, store |
//! | `gateway_auth_failures_total` | counter | `reason` (see [`crate::security::jwt::JwtError`]), at the handshake and for `auth` frames |
//! | `gateway_frames_in_total` / `gateway_frames_out_total` | counter | `type` |
//! | `gateway_send_queue_bytes` | gauge | bytes queued for all clients (sampled per frame and heartbeat) |
//! | `gateway_slow_consumer_closes_total` | counter | |
//! | `gateway_rate_limited_total` | counter | `bucket`: requests, cancels |
//! | `gateway_too_many_generations_total` | counter | |
//! | `gateway_cancels_total` | counter | `status` (a cancel_ack's status) |
//! | `gateway_ai_errors_total` | counter | `code`: what a failed ai-service call answered the client |
//! | `gateway_token_latency_seconds` | histogram | producer timestamp → written to the socket |
//! | `gateway_readiness_probe_seconds`, `gateway_readiness_probe_failures_total` | | |
//! | `streamline_gateway_token_refreshes_total` | counter | `result`: accepted, refused, anonymous (`auth` frames) |
//! | `streamline_gateway_token_expired_closes_total` | counter | connections closed with 4003 |
//! | `streamline_gateway_jwks_fetches_total` | counter | `result`: ok, error |
//! | `streamline_gateway_jwks_refetches_refused_total` | counter | unknown-`kid` refetches within `JWT_JWKS_MIN_REFRESH` |
//! | `streamline_gateway_jwks_keys` | gauge | keys of the JWKS in force |
//! | `store_redis_errors_total`, `store_redis_reconnects_total` | counter | (from the store) |

use shared_proto::{CancelStatus, ErrorCode, ServerFrame};

/// Registers every series at zero (idempotent).
pub fn register() {
    metrics::gauge!("gateway_connections").increment(0.0);
    metrics::gauge!("gateway_send_queue_bytes").increment(0.0);
    for reason in [
        "draining",
        "origin",
        "auth",
        "max_connections",
        "max_connections_per_ip",
        "resume",
        "store",
    ] {
        metrics::counter!("gateway_connections_refused_total", "reason" => reason).increment(0);
    }
    for reason in crate::security::jwt::JwtError::ALL {
        metrics::counter!("gateway_auth_failures_total", "reason" => reason.as_str()).increment(0);
    }
    for kind in [
        "chat",
        "cancel",
        "resume",
        "heartbeat",
        "auth",
        "invalid",
        "binary",
    ] {
        metrics::counter!("gateway_frames_in_total", "type" => kind).increment(0);
    }
    for kind in ServerFrame::KINDS {
        metrics::counter!("gateway_frames_out_total", "type" => kind).increment(0);
    }
    metrics::counter!("gateway_slow_consumer_closes_total").increment(0);
    for bucket in ["requests", "cancels"] {
        metrics::counter!("gateway_rate_limited_total", "bucket" => bucket).increment(0);
    }
    metrics::counter!("gateway_too_many_generations_total").increment(0);
    for status in CancelStatus::ALL {
        metrics::counter!("gateway_cancels_total", "status" => status.as_str()).increment(0);
    }
    for code in [
        ErrorCode::AiServiceUnavailable,
        ErrorCode::StoreUnavailable,
        ErrorCode::ShuttingDown,
        ErrorCode::EmptyContent,
    ] {
        metrics::counter!("gateway_ai_errors_total", "code" => code.as_str()).increment(0);
    }
    metrics::counter!("gateway_readiness_probe_failures_total").increment(0);
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
