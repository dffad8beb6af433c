//! Bodies of the ai-service HTTP API (`/v1/...`), shared by the service, the gateway and tests.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CancelStatus, ErrorBody, MessageState, Usage};

/// `POST /v1/sessions/{session_id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct StartMessageRequest {
    pub message_id: Uuid,
    pub content: String,
    /// The user (the connection's JWT `sub`), passed by a gateway that authenticated it (the
    /// API trusts it: it is protected by `AI_SERVICE_TOKEN`). Anonymous users have none. It
    /// names the generation in the admin API and is what `USER_TOKEN_BUDGET` charges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// 202 answer to [`StartMessageRequest`]: the message's state now. A retry with the same
/// `message_id` answers with the existing message's state and starts nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct StartMessageResponse {
    pub message_id: Uuid,
    pub status: MessageState,
}

/// `POST /v1/sessions/{session_id}/messages/{message_id}/cancel`: 200 or 404, always this body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct CancelResponse {
    pub status: CancelStatus,
}

/// `GET /v1/sessions/{session_id}/messages/{message_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct MessageView {
    pub state: MessageState,
    pub last_seq: u64,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// Body of every other HTTP error: `{"error": {code, message}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ApiError {
    pub error: ErrorBody,
}

/// One running generation in the admin API (`GET /admin/generations` on an ai-service's
/// admin port): whichever replica runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct GenerationView {
    pub session_id: Uuid,
    pub message_id: Uuid,
    /// The chat's user (the JWT `sub` the gateway passed); null for an anonymous one.
    pub user: Option<String>,
    /// The replica that runs it (`REPLICA_ID`).
    pub owner: String,
    /// `queued` or `streaming`.
    pub state: MessageState,
    /// When it started (ms since the epoch).
    pub started_at: u64,
    /// Completion tokens written so far.
    pub completion_tokens: u64,
}

/// `GET /admin/generations[?user=SUB]`: every running generation of the deployment, oldest
/// first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct GenerationsResponse {
    pub generations: Vec<GenerationView>,
}

/// `POST /admin/users/{sub}/cancel` and `POST /admin/sessions/{session_id}/cancel`: how many
/// running generations this call cancelled (each client gets its `done{cancelled}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct BulkCancelResponse {
    pub cancelled: u64,
}
