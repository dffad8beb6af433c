//! Frames the gateway sends to a browser.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CancelStatus, ErrorBody, ErrorCode, FinalStatus, MessageState};

/// What an answer cost, on every `done`: the counts the upstream model server reported
/// (`estimated: false`), or, where it reported none (a cancelled or failed stream, the demo
/// model, a server that does not report), counted from what was streamed with the prompt
/// estimated (`estimated: true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// True when counted by the stack rather than reported by the upstream.
    #[serde(default)]
    pub estimated: bool,
}

impl Usage {
    /// Counts the upstream reported.
    pub fn reported(prompt_tokens: u64, completion_tokens: u64, total_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens,
            estimated: false,
        }
    }

    /// Counts the stack made: what was streamed, and the prompt estimated.
    pub fn estimated(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            estimated: true,
        }
    }
}

/// A message of this session that has not finished, listed in `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ActiveMessage {
    pub message_id: Uuid,
    pub last_seq: u64,
}

/// What a `chunk`'s delta is: answer text (the default, omitted on the wire, so clients that
/// know no kinds keep working) or the model's reasoning (`"kind":"reasoning"`), which is shown
/// apart and is not part of the answer (nor of the history the model sees).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum DeltaKind {
    #[default]
    Text,
    Reasoning,
}

impl DeltaKind {
    pub fn is_text(&self) -> bool {
        *self == DeltaKind::Text
    }
}

/// One message of a session as `conversation` lists it: the user's turn and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ConversationMessage {
    pub message_id: Uuid,
    /// What the user sent.
    pub content: String,
    /// `queued`/`streaming` for an answer that runs (resume it from `last_seq`), else its end.
    pub state: MessageState,
    /// The answer's text so far (reasoning not included).
    pub text: String,
    /// The last seq of the answer's log (running answers: resume after it).
    pub last_seq: u64,
    /// How it ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<FinalStatus>,
}

/// A gateway → client frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum ServerFrame {
    /// First frame of every connection.
    Welcome {
        session_id: Uuid,
        resume_token: String,
        protocol: u32,
        heartbeat_interval_ms: u64,
        #[serde(default)]
        active: Vec<ActiveMessage>,
    },
    /// The `chat` was accepted; its chunks follow.
    Ack { message_id: Uuid },
    /// One piece of the answer. `seq` is 1, 2, 3, … per message, without gap or repeat.
    /// `ts` is the producer's clock (ms since the epoch) when the chunk's first token arrived.
    Chunk {
        message_id: Uuid,
        seq: u64,
        /// Only to a client that sent `caps=merge`, and only when this frame carries several
        /// chunks: `delta` is chunks `first_seq..=seq` concatenated (a backlog the gateway
        /// merged before writing it), and `ts` is the first one's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_seq: Option<u64>,
        delta: String,
        /// Text (omitted) or reasoning.
        #[serde(default, skip_serializing_if = "DeltaKind::is_text")]
        kind: DeltaKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
    },
    /// The last frame of a message, exactly once. `seq` is the last chunk's seq (0: none).
    Done {
        message_id: Uuid,
        seq: u64,
        status: FinalStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    /// The answer to a `cancel`.
    CancelAck {
        message_id: Uuid,
        status: CancelStatus,
    },
    /// The answer to a `heartbeat`.
    HeartbeatAck {},
    /// A message of this session was started by another socket (another tab or device); this
    /// connection follows it from now on (its chunks and `done` follow).
    Started { message_id: Uuid, content: String },
    /// The answer to `conversation`: the session's messages, oldest first.
    Conversation { messages: Vec<ConversationMessage> },
    /// The answer to an accepted `auth`: the connection now runs on the new token, which
    /// expires at `exp` (seconds since the epoch).
    AuthAck { exp: u64 },
    /// Something the client sent could not be served; the connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<Uuid>,
        /// When retrying makes sense, in how many seconds (`quota_exceeded`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
    },
}

impl ServerFrame {
    /// An `error` frame.
    pub fn error(code: ErrorCode, message: impl Into<String>, message_id: Option<Uuid>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            message_id,
            retry_after_s: None,
        }
    }

    /// An `error` frame with `retry_after_s` (`quota_exceeded`); other frames are unchanged.
    pub fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        if let ServerFrame::Error { retry_after_s, .. } = &mut self {
            *retry_after_s = secs;
        }
        self
    }

    /// Serializes the frame. Serializing these types cannot fail (no maps with non-string
    /// keys, no foreign `Serialize` impls), so this returns the JSON text directly.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            // Unreachable in practice; keep the socket protocol-valid if it ever happens.
            format!(r#"{{"type":"error","code":"internal","message":"encode: {e}"}}"#)
        })
    }

    /// Every frame `type`, in the order of [`ServerFrame::kind_index`].
    pub const KINDS: [&'static str; 10] = [
        "welcome",
        "ack",
        "chunk",
        "done",
        "cancel_ack",
        "heartbeat_ack",
        "error",
        "started",
        "conversation",
        "auth_ack",
    ];

    /// The frame's `type`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }

    /// The position of the frame's `type` in [`ServerFrame::KINDS`] (for per-type tables).
    pub fn kind_index(&self) -> usize {
        match self {
            ServerFrame::Welcome { .. } => 0,
            ServerFrame::Ack { .. } => 1,
            ServerFrame::Chunk { .. } => 2,
            ServerFrame::Done { .. } => 3,
            ServerFrame::CancelAck { .. } => 4,
            ServerFrame::HeartbeatAck {} => 5,
            ServerFrame::Error { .. } => 6,
            ServerFrame::Started { .. } => 7,
            ServerFrame::Conversation { .. } => 8,
            ServerFrame::AuthAck { .. } => 9,
        }
    }
}

impl From<ErrorBody> for (ErrorCode, String) {
    fn from(e: ErrorBody) -> Self {
        (e.code, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_documented_shape() {
        let id = Uuid::nil();
        let v: serde_json::Value = serde_json::from_str(
            &ServerFrame::Done {
                message_id: id,
                seq: 0,
                status: FinalStatus::Cancelled,
                error: None,
                usage: None,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"done","message_id":id,"seq":0,"status":"cancelled"})
        );
        let v: serde_json::Value =
            serde_json::from_str(&ServerFrame::HeartbeatAck {}.to_json()).unwrap();
        assert_eq!(v, serde_json::json!({"type":"heartbeat_ack"}));
        let v: serde_json::Value = serde_json::from_str(
            &ServerFrame::CancelAck {
                message_id: id,
                status: CancelStatus::AlreadyCompleted,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"cancel_ack","message_id":id,"status":"already_completed"})
        );
        let v: serde_json::Value =
            serde_json::from_str(&ServerFrame::AuthAck { exp: 1_700_000_000 }.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"auth_ack","exp":1_700_000_000u64})
        );
    }

    #[test]
    fn kinds_follow_kind_index() {
        let frames = [
            ServerFrame::HeartbeatAck {},
            ServerFrame::AuthAck { exp: 1 },
            ServerFrame::error(ErrorCode::Internal, "x", None),
        ];
        for f in frames {
            let v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
            assert_eq!(v["type"], f.kind());
        }
    }
}
