//! One message's frames as a client received them, and the checks every suite makes on them.

use shared_proto::{ErrorBody, FinalStatus, ServerFrame};
use uuid::Uuid;

/// One message's frames, as received.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    pub message_id: Uuid,
    pub seqs: Vec<u64>,
    /// The answer text (chunks without a kind).
    pub text: String,
    /// The reasoning (chunks of kind `reasoning`), apart from the answer.
    pub reasoning: String,
    pub done: Option<(u64, FinalStatus, Option<ErrorBody>)>,
    /// Frames of this message after its `done` (must stay empty).
    pub after_done: Vec<ServerFrame>,
}

impl Transcript {
    /// An empty transcript of one message.
    pub fn new(message_id: Uuid) -> Self {
        Transcript {
            message_id,
            ..Default::default()
        }
    }

    /// Asserts seq 1..n without gap or repeat and exactly one `done` whose seq is n.
    pub fn assert_well_formed(&self) {
        let expected: Vec<u64> = (1..=self.seqs.len() as u64).collect();
        assert_eq!(
            self.seqs, expected,
            "seqs must be 1..n without gap or repeat"
        );
        let (seq, _, _) = self.done.as_ref().expect("a done frame");
        assert_eq!(
            *seq,
            self.seqs.len() as u64,
            "done.seq is the last chunk's seq"
        );
        assert!(
            self.after_done.is_empty(),
            "frames after done: {:?}",
            self.after_done
        );
    }

    pub fn status(&self) -> Option<FinalStatus> {
        self.done.as_ref().map(|d| d.1)
    }
}

/// Adds a frame to a transcript if it belongs to its message; returns whether it did.
pub fn absorb(t: &mut Transcript, f: &ServerFrame) -> bool {
    match f {
        ServerFrame::Chunk {
            message_id,
            seq,
            first_seq,
            delta,
            kind,
            ..
        } if *message_id == t.message_id => {
            if t.done.is_some() {
                t.after_done.push(f.clone());
            } else {
                // A merged frame (`caps=merge`) covers `first_seq..=seq`.
                t.seqs.extend(first_seq.unwrap_or(*seq)..=*seq);
                match kind {
                    shared_proto::DeltaKind::Text => t.text.push_str(delta),
                    shared_proto::DeltaKind::Reasoning => t.reasoning.push_str(delta),
                }
            }
            true
        }
        ServerFrame::Done {
            message_id,
            seq,
            status,
            error,
            ..
        } if *message_id == t.message_id => {
            if t.done.is_some() {
                t.after_done.push(f.clone());
            } else {
                t.done = Some((*seq, *status, error.clone()));
            }
            true
        }
        _ => false,
    }
}
