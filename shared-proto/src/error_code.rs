//! Stable error codes: what an `error` frame, a failed `done` and an HTTP error body carry.
//!
//! Clients branch on `code`, never on `message` (which is for humans and may change).

use serde::{Deserialize, Serialize};

/// Every error code the stack emits. The snake_case names are part of protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum ErrorCode {
    // Client frames the gateway could not accept (sent as `error`; the connection stays open).
    /// The text frame is not valid JSON (or nests deeper than the parser allows).
    InvalidJson,
    /// The JSON has no `type`, or a `type` this protocol version does not know.
    UnknownType,
    /// A known `type` with a missing or mistyped field.
    InvalidFrame,
    /// A binary frame: protocol v1 is JSON text frames only.
    BinaryNotSupported,
    /// `message_id` is not a UUID.
    InvalidMessageId,
    /// `chat.content` is empty.
    EmptyContent,
    /// `chat.content` is longer than the configured maximum.
    ContentTooLong,
    /// The connection sends messages faster than its allowance.
    RateLimited,
    /// The session already runs as many generations as it may.
    TooManyGenerations,
    /// A `chat` reused the `message_id` of a message this connection is still following.
    DuplicateMessageId,
    /// The gateway could not reach the ai-service.
    AiServiceUnavailable,
    /// The gateway could not reach the store (Redis).
    StoreUnavailable,
    /// `resume` for a message whose log has expired or never existed.
    ResumeUnavailable,
    /// The service is shutting down and takes no new messages.
    ShuttingDown,

    // Reasons a message ended as `done{status:"failed"}`.
    /// The model server failed (5xx, connection error, dropped mid-stream, or the demo
    /// provider's `fail_after`).
    UpstreamError,
    /// The model server refused the credentials (401/403).
    UpstreamAuth,
    /// The model server kept answering 429.
    UpstreamRateLimited,
    /// The model server sent no token in time.
    UpstreamTimeout,
    /// The ai-service replica running the generation died.
    WorkerLost,
    /// Redis was unreachable for longer than the producer could buffer.
    RedisUnavailable,
    /// The ai-service shut down before the generation finished.
    Shutdown,
    /// A bug: something that should not happen did.
    Internal,

    // Refusals of a request as a whole (HTTP status bodies: the `/ws` handshake, the API).
    /// No valid credentials: a missing, malformed, expired or wrongly signed JWT at the `/ws`
    /// handshake, or a missing/wrong `AI_SERVICE_TOKEN` bearer on the ai-service API (401).
    /// Also the `error` answer to an `auth` frame whose token is refused (invalid, or for
    /// another `sub`, or a gateway in anonymous mode); the connection keeps its old token.
    Unauthorized,
    /// The handshake's `Origin` is not in `ALLOWED_ORIGINS` (403).
    OriginNotAllowed,
    /// The gateway holds `MAX_CONNECTIONS`, or the client's IP `MAX_CONNECTIONS_PER_IP` (503).
    TooManyConnections,
    /// The user spent its `USER_TOKEN_BUDGET` for the current window: a `chat` is refused
    /// (`error`, with `retry_after_s`), and a running answer that exhausts it ends `failed`.
    QuotaExceeded,
}

impl ErrorCode {
    /// The stable wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidFrame => "invalid_frame",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::InvalidMessageId => "invalid_message_id",
            ErrorCode::EmptyContent => "empty_content",
            ErrorCode::ContentTooLong => "content_too_long",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyGenerations => "too_many_generations",
            ErrorCode::DuplicateMessageId => "duplicate_message_id",
            ErrorCode::AiServiceUnavailable => "ai_service_unavailable",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::ResumeUnavailable => "resume_unavailable",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::UpstreamAuth => "upstream_auth",
            ErrorCode::UpstreamRateLimited => "upstream_rate_limited",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::WorkerLost => "worker_lost",
            ErrorCode::RedisUnavailable => "redis_unavailable",
            ErrorCode::Shutdown => "shutdown",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::QuotaExceeded => "quota_exceeded",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{code, message}`: the error of a failed `done`, and the body of HTTP errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// When retrying makes sense, in how many seconds (`quota_exceeded`: until the window
    /// frees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_is_the_stable_name() {
        for code in [
            ErrorCode::InvalidJson,
            ErrorCode::UnknownType,
            ErrorCode::InvalidFrame,
            ErrorCode::BinaryNotSupported,
            ErrorCode::InvalidMessageId,
            ErrorCode::EmptyContent,
            ErrorCode::ContentTooLong,
            ErrorCode::RateLimited,
            ErrorCode::TooManyGenerations,
            ErrorCode::DuplicateMessageId,
            ErrorCode::AiServiceUnavailable,
            ErrorCode::StoreUnavailable,
            ErrorCode::ResumeUnavailable,
            ErrorCode::ShuttingDown,
            ErrorCode::UpstreamError,
            ErrorCode::UpstreamAuth,
            ErrorCode::UpstreamRateLimited,
            ErrorCode::UpstreamTimeout,
            ErrorCode::WorkerLost,
            ErrorCode::RedisUnavailable,
            ErrorCode::Shutdown,
            ErrorCode::Internal,
            ErrorCode::Unauthorized,
            ErrorCode::OriginNotAllowed,
            ErrorCode::TooManyConnections,
            ErrorCode::QuotaExceeded,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }
}
