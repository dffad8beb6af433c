//! [`StreamChunk`]: what the ai-service writes into a message's log and publishes live.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DeltaKind, ErrorBody, FinalStatus, ServerFrame, Usage};

/// Version of the [`StreamChunk`] encoding (field `v`).
pub const STREAM_CHUNK_VERSION: u32 = 1;

/// What an entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkKind {
    /// Answer text.
    Delta,
    /// The model's reasoning: in the log and delivered like text, never part of the answer.
    Reasoning,
    /// The end of the message.
    Done,
    /// "This message was created" (`text` = the user's content): published on the session's
    /// channel so that every socket of the session learns of it; never in the log.
    Start,
}

/// One entry of a message's log.
///
/// Log layout: delta `seq` n sits at index n-1; the single terminal entry (kind `done`) sits at
/// index `seq` (its `seq` repeats the last delta's, 0 when there was none). So every entry has a
/// position ([`StreamChunk::log_index`]) and a reader can tell a gap from a repeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamChunk {
    pub v: u32,
    pub session_id: Uuid,
    pub message_id: Uuid,
    pub seq: u64,
    pub kind: ChunkKind,
    /// The delta text (empty for `done`).
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<FinalStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Text entries: the completion tokens streamed so far, this entry's included (answer and
    /// reasoning), so that whoever ends the message (a cancel, a takeover) can say what it
    /// cost without asking the producer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// The first entry only: the prompt's estimated token count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Producer clock, ms since the epoch, when the chunk's first token arrived from the model.
    pub ts: u64,
}

impl StreamChunk {
    /// A text chunk.
    pub fn delta(session_id: Uuid, message_id: Uuid, seq: u64, text: String, ts: u64) -> Self {
        StreamChunk {
            v: STREAM_CHUNK_VERSION,
            session_id,
            message_id,
            seq,
            kind: ChunkKind::Delta,
            text,
            status: None,
            error: None,
            usage: None,
            tokens: None,
            prompt_tokens: None,
            ts,
        }
    }

    /// The same entry with its token counts (see [`StreamChunk::tokens`]).
    pub fn with_tokens(mut self, tokens: u64, prompt_tokens: Option<u64>) -> Self {
        self.tokens = Some(tokens);
        self.prompt_tokens = prompt_tokens;
        self
    }

    /// The terminal entry; `seq` is the last delta's seq.
    pub fn done(
        session_id: Uuid,
        message_id: Uuid,
        seq: u64,
        status: FinalStatus,
        error: Option<ErrorBody>,
        usage: Option<Usage>,
        ts: u64,
    ) -> Self {
        StreamChunk {
            v: STREAM_CHUNK_VERSION,
            session_id,
            message_id,
            seq,
            kind: ChunkKind::Done,
            text: String::new(),
            status: Some(status),
            error,
            usage,
            tokens: None,
            prompt_tokens: None,
            ts,
        }
    }

    /// Reasoning from the model (the same as [`StreamChunk::delta`] but for its kind).
    pub fn reasoning(session_id: Uuid, message_id: Uuid, seq: u64, text: String, ts: u64) -> Self {
        StreamChunk {
            kind: ChunkKind::Reasoning,
            ..StreamChunk::delta(session_id, message_id, seq, text, ts)
        }
    }

    /// The announcement that a message was created, with the user's `content`.
    pub fn start(session_id: Uuid, message_id: Uuid, content: String, ts: u64) -> Self {
        StreamChunk {
            kind: ChunkKind::Start,
            ..StreamChunk::delta(session_id, message_id, 0, content, ts)
        }
    }

    /// Position of this entry in the message's log (0-based). A start has none (it is never
    /// in the log): `u64::MAX`.
    pub fn log_index(&self) -> u64 {
        match self.kind {
            ChunkKind::Delta | ChunkKind::Reasoning => self.seq.saturating_sub(1),
            ChunkKind::Done => self.seq,
            ChunkKind::Start => u64::MAX,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.kind == ChunkKind::Done
    }

    /// Whether this entry is answer text (part of the answer and of the history).
    pub fn is_text(&self) -> bool {
        self.kind == ChunkKind::Delta
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The frame a browser receives for this entry. Consumes the entry: this runs once per
    /// delivered chunk, and the text moves into the frame instead of being copied.
    pub fn into_frame(self) -> ServerFrame {
        match self.kind {
            ChunkKind::Delta | ChunkKind::Reasoning => ServerFrame::Chunk {
                message_id: self.message_id,
                seq: self.seq,
                first_seq: None,
                delta: self.text,
                kind: if self.kind == ChunkKind::Reasoning {
                    DeltaKind::Reasoning
                } else {
                    DeltaKind::Text
                },
                ts: Some(self.ts),
            },
            ChunkKind::Start => ServerFrame::Started {
                message_id: self.message_id,
                content: self.text,
            },
            ChunkKind::Done => ServerFrame::Done {
                message_id: self.message_id,
                seq: self.seq,
                status: self.status.unwrap_or(FinalStatus::Failed),
                error: self.error,
                usage: self.usage,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_positions_are_contiguous() {
        let (s, m) = (Uuid::new_v4(), Uuid::new_v4());
        let d1 = StreamChunk::delta(s, m, 1, "a".into(), 0);
        let d2 = StreamChunk::delta(s, m, 2, "b".into(), 0);
        let end = StreamChunk::done(s, m, 2, FinalStatus::Completed, None, None, 0);
        assert_eq!([d1.log_index(), d2.log_index(), end.log_index()], [0, 1, 2]);
        let empty = StreamChunk::done(s, m, 0, FinalStatus::Cancelled, None, None, 0);
        assert_eq!(empty.log_index(), 0);
    }

    #[test]
    fn round_trips() {
        let c = StreamChunk::delta(Uuid::new_v4(), Uuid::new_v4(), 3, "x\"y".into(), 12);
        let back: StreamChunk = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(back, c);
    }
}
