//! Naming a message: it always belongs to a session.

use uuid::Uuid;

/// A message of a session. Every key of a session shares the session's hash tag, so a message
/// is always addressed together with its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageRef {
    pub session_id: Uuid,
    pub message_id: Uuid,
}

impl MessageRef {
    pub fn new(session_id: Uuid, message_id: Uuid) -> Self {
        MessageRef {
            session_id,
            message_id,
        }
    }
}

impl std::fmt::Display for MessageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.session_id, self.message_id)
    }
}
