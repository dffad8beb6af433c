//! Frames a browser sends to the gateway.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ErrorCode;

/// A parsed client → gateway frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum ClientFrame {
    /// Start a message. The client may choose `message_id` (a UUID) so that a retry after a
    /// lost `ack` is idempotent; otherwise the gateway assigns one and returns it in `ack`.
    Chat {
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<Uuid>,
    },
    /// Stop a message. Answered with `cancel_ack` (an unknown or finished id is a status, not
    /// an error); only a refused frame (`rate_limited`) or an unreachable service gets `error`.
    Cancel { message_id: Uuid },
    /// Replay a message's log after `after_seq`, then continue live.
    Resume { message_id: Uuid, after_seq: u64 },
    /// Keep-alive; answered with `heartbeat_ack`.
    Heartbeat {},
    /// Asks for the session's messages (user turns, answers, the ones running); answered with
    /// `conversation`.
    Conversation {},
}

/// Why a text frame is not a valid [`ClientFrame`]; maps to a stable [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
}

/// Only the `type` field, to tell "unknown type" from "bad fields of a known type".
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

const KNOWN_TYPES: [&str; 5] = ["chat", "cancel", "resume", "heartbeat", "conversation"];

impl ClientFrame {
    /// Parses one text frame, classifying failures so the client gets a precise code.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| FrameError {
            code: if e.is_data() {
                // Valid JSON but not an object with a string `type`.
                ErrorCode::UnknownType
            } else {
                ErrorCode::InvalidJson
            },
            message: format!("not a JSON object: {e}"),
        })?;
        let Some(kind) = envelope.kind else {
            return Err(FrameError {
                code: ErrorCode::UnknownType,
                message: "missing field `type`".into(),
            });
        };
        if !KNOWN_TYPES.contains(&kind.as_ref()) {
            let mut shown: String = kind.chars().take(40).collect();
            if shown.len() < kind.len() {
                shown.push('…');
            }
            return Err(FrameError {
                code: ErrorCode::UnknownType,
                message: format!(
                    "unknown type `{shown}`; expected one of chat, cancel, resume, heartbeat, conversation"
                ),
            });
        }
        serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let code = if e.is_syntax() || e.is_eof() {
                ErrorCode::InvalidJson
            } else if msg.contains("UUID") || msg.contains("uuid") {
                ErrorCode::InvalidMessageId
            } else {
                ErrorCode::InvalidFrame
            };
            FrameError {
                code,
                message: format!("invalid `{kind}` frame: {msg}"),
            }
        })
    }

    /// The frame's `type`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Chat { .. } => "chat",
            ClientFrame::Cancel { .. } => "cancel",
            ClientFrame::Resume { .. } => "resume",
            ClientFrame::Heartbeat {} => "heartbeat",
            ClientFrame::Conversation {} => "conversation",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_frame() {
        let id = Uuid::new_v4();
        assert_eq!(
            ClientFrame::parse(r#"{"type":"chat","content":"hi"}"#).unwrap(),
            ClientFrame::Chat {
                content: "hi".into(),
                message_id: None
            }
        );
        assert_eq!(
            ClientFrame::parse(&format!(
                r#"{{"type":"chat","content":"hi","message_id":"{id}"}}"#
            ))
            .unwrap(),
            ClientFrame::Chat {
                content: "hi".into(),
                message_id: Some(id)
            }
        );
        assert_eq!(
            ClientFrame::parse(&format!(r#"{{"type":"cancel","message_id":"{id}"}}"#)).unwrap(),
            ClientFrame::Cancel { message_id: id }
        );
        assert_eq!(
            ClientFrame::parse(&format!(
                r#"{{"type":"resume","message_id":"{id}","after_seq":7}}"#
            ))
            .unwrap(),
            ClientFrame::Resume {
                message_id: id,
                after_seq: 7
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"heartbeat"}"#).unwrap(),
            ClientFrame::Heartbeat {}
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"heartbeat","extra":1}"#).unwrap(),
            ClientFrame::Heartbeat {}
        );
    }

    #[test]
    fn classifies_bad_frames() {
        let code = |s: &str| ClientFrame::parse(s).unwrap_err().code;
        assert_eq!(code("not json"), ErrorCode::InvalidJson);
        assert_eq!(code(r#"{"type":"chat""#), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::UnknownType);
        assert_eq!(code("42"), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"content":"x"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"chat"}"#), ErrorCode::InvalidFrame);
        assert_eq!(
            code(r#"{"type":"chat","content":5}"#),
            ErrorCode::InvalidFrame
        );
        assert_eq!(code(r#"{"type":"cancel"}"#), ErrorCode::InvalidFrame);
        assert_eq!(
            code(r#"{"type":"cancel","message_id":"nope"}"#),
            ErrorCode::InvalidMessageId
        );
        // Deep nesting is refused by the parser's recursion limit, never a stack overflow.
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(code(&deep), ErrorCode::UnknownType);
        let deep = format!(
            r#"{{"type":"chat","x":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(code(&deep), ErrorCode::InvalidJson);
    }
}
