//! Conversation history: the earlier turns a provider receives.

use serde::{Deserialize, Serialize};

use crate::FinalStatus;

/// Who said a turn of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One earlier turn of the conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub content: String,
}

/// A turn as the store keeps it: an assistant turn remembers how its answer ended (a
/// cancelled answer is kept as its partial text, marked `cancelled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTurn {
    pub role: Role,
    pub content: String,
    /// The message the turn belongs to (its user turn and its answer share it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<uuid::Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<FinalStatus>,
}

impl From<StoredTurn> for Turn {
    fn from(t: StoredTurn) -> Self {
        Turn {
            role: t.role,
            content: t.content,
        }
    }
}
