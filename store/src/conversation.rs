//! A session's conversation as a client redraws it: the finished turns of its history, grouped
//! by message, then the messages still running with their text so far. Both stores gather the
//! raw parts (one atomic read each); this assembles them the same way.

use shared_proto::{ConversationMessage, MessageState, Role, StoredTurn};
use uuid::Uuid;

/// A running message, as the store read it.
#[derive(Debug, Clone)]
pub struct RunningMessage {
    pub message_id: Uuid,
    pub content: String,
    pub state: MessageState,
    pub last_seq: u64,
    pub text: String,
}

/// Oldest first: the history's messages (a turn without a message id, written before ids were
/// recorded, is left out), then the running ones. A message in both (it ended between the two
/// reads) is listed once, ended.
pub fn assemble(
    history: Vec<StoredTurn>,
    running: Vec<RunningMessage>,
) -> Vec<ConversationMessage> {
    let mut out: Vec<ConversationMessage> = Vec::new();
    for turn in history {
        let Some(message_id) = turn.message_id else {
            continue;
        };
        let status = turn.status;
        match turn.role {
            Role::User => out.push(ConversationMessage {
                message_id,
                content: turn.content,
                state: status.map_or(MessageState::Completed, |s| s.state()),
                text: String::new(),
                last_seq: 0,
                status,
            }),
            Role::Assistant => {
                if let Some(m) = out.iter_mut().rev().find(|m| m.message_id == message_id) {
                    m.text = turn.content;
                    if let Some(s) = status {
                        m.state = s.state();
                        m.status = Some(s);
                    }
                }
            }
            Role::System => {}
        }
    }
    for r in running {
        if out.iter().any(|m| m.message_id == r.message_id) {
            continue;
        }
        out.push(ConversationMessage {
            message_id: r.message_id,
            content: r.content,
            state: r.state,
            text: r.text,
            last_seq: r.last_seq,
            status: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::FinalStatus;

    fn turn(
        role: Role,
        id: Option<Uuid>,
        content: &str,
        status: Option<FinalStatus>,
    ) -> StoredTurn {
        StoredTurn {
            role,
            content: content.into(),
            message_id: id,
            status,
        }
    }

    #[test]
    fn groups_turns_by_message_and_appends_the_running_ones() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let history = vec![
            turn(Role::User, None, "old, no id", None),
            turn(Role::User, Some(a), "q1", Some(FinalStatus::Completed)),
            turn(Role::Assistant, Some(a), "a1", Some(FinalStatus::Completed)),
            // Cancelled before its first token: no assistant turn.
            turn(Role::User, Some(b), "q2", Some(FinalStatus::Cancelled)),
        ];
        let running = vec![
            RunningMessage {
                message_id: b,
                content: "q2".into(),
                state: MessageState::Streaming,
                last_seq: 3,
                text: "raced".into(),
            },
            RunningMessage {
                message_id: c,
                content: "q3".into(),
                state: MessageState::Streaming,
                last_seq: 2,
                text: "so far".into(),
            },
        ];
        let conv = assemble(history, running);
        let ids: Vec<Uuid> = conv.iter().map(|m| m.message_id).collect();
        assert_eq!(ids, vec![a, b, c]);
        assert_eq!(
            (conv[0].text.as_str(), conv[0].status),
            ("a1", Some(FinalStatus::Completed))
        );
        assert_eq!(
            (conv[1].state, conv[1].text.as_str()),
            (MessageState::Cancelled, "")
        );
        assert_eq!(
            (conv[2].state, conv[2].last_seq, conv[2].status),
            (MessageState::Streaming, 2, None)
        );
    }
}
