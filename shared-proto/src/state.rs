//! The message lifecycle as the wire sees it.
//!
//! ```text
//! queued ──► streaming ──► completed
//!    │           ├───────► cancelled
//!    │           └───────► failed
//!    ├──────────────────► completed   (an answer with no text)
//!    ├──────────────────► cancelled   (a cancel before the first token wins)
//!    └──────────────────► failed
//! ```
//! The three terminal states never change; the store enforces that with an atomic
//! compare-and-set, this module only names the states.

use serde::{Deserialize, Serialize};

/// Where a message is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum MessageState {
    Queued,
    Streaming,
    Completed,
    Cancelled,
    Failed,
}

impl MessageState {
    /// The stable wire name (also the value stored in Redis).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Streaming => "streaming",
            MessageState::Completed => "completed",
            MessageState::Cancelled => "cancelled",
            MessageState::Failed => "failed",
        }
    }

    /// Parses the stable wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => MessageState::Queued,
            "streaming" => MessageState::Streaming,
            "completed" => MessageState::Completed,
            "cancelled" => MessageState::Cancelled,
            "failed" => MessageState::Failed,
            _ => return None,
        })
    }

    /// Terminal states never change once reached.
    pub fn is_terminal(self) -> bool {
        self.final_status().is_some()
    }

    /// The final status of a terminal state.
    pub fn final_status(self) -> Option<FinalStatus> {
        match self {
            MessageState::Completed => Some(FinalStatus::Completed),
            MessageState::Cancelled => Some(FinalStatus::Cancelled),
            MessageState::Failed => Some(FinalStatus::Failed),
            MessageState::Queued | MessageState::Streaming => None,
        }
    }
}

/// How a message ended: the `status` of a `done` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum FinalStatus {
    Completed,
    Cancelled,
    Failed,
}

impl FinalStatus {
    /// Every status (metrics register one series per status).
    pub const ALL: [FinalStatus; 3] = [
        FinalStatus::Completed,
        FinalStatus::Cancelled,
        FinalStatus::Failed,
    ];

    /// The terminal [`MessageState`] with the same name.
    pub fn state(self) -> MessageState {
        match self {
            FinalStatus::Completed => MessageState::Completed,
            FinalStatus::Cancelled => MessageState::Cancelled,
            FinalStatus::Failed => MessageState::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.state().as_str()
    }
}

/// The answer to a cancel, over HTTP (`{status}`) and over the socket (`cancel_ack`).
///
/// Every cancel gets one of these; none is an error. A duplicate cancel, or one that arrives
/// just after the answer finished, is a success with a status that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum CancelStatus {
    /// It was queued or streaming; it stops, and its `done{cancelled}` follows.
    Cancelling,
    /// An earlier cancel already stopped it.
    AlreadyCancelled,
    /// It had already finished (completed or failed) within the grace period.
    AlreadyCompleted,
    /// Unknown id, another session's id, or finished longer ago than the grace period.
    NotFound,
}

impl CancelStatus {
    /// Every status (metrics register one series per status).
    pub const ALL: [CancelStatus; 4] = [
        CancelStatus::Cancelling,
        CancelStatus::AlreadyCancelled,
        CancelStatus::AlreadyCompleted,
        CancelStatus::NotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CancelStatus::Cancelling => "cancelling",
            CancelStatus::AlreadyCancelled => "already_cancelled",
            CancelStatus::AlreadyCompleted => "already_completed",
            CancelStatus::NotFound => "not_found",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cancelling" => CancelStatus::Cancelling,
            "already_cancelled" => CancelStatus::AlreadyCancelled,
            "already_completed" => CancelStatus::AlreadyCompleted,
            "not_found" => CancelStatus::NotFound,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            MessageState::Queued,
            MessageState::Streaming,
            MessageState::Completed,
            MessageState::Cancelled,
            MessageState::Failed,
        ] {
            assert_eq!(MessageState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for s in CancelStatus::ALL {
            assert_eq!(CancelStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn only_three_states_are_terminal() {
        assert!(!MessageState::Queued.is_terminal());
        assert!(!MessageState::Streaming.is_terminal());
        assert!(MessageState::Completed.is_terminal());
        assert!(MessageState::Cancelled.is_terminal());
        assert!(MessageState::Failed.is_terminal());
    }
}
