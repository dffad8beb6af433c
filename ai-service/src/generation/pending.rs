//! The text a generation has read from its model and not yet written: answer text and
//! reasoning, in the order the model produced them. Consecutive pieces of one kind coalesce;
//! a chunk is always one kind (the next chunk's text is the front run of one kind). Each run
//! counts the tokens (provider events) it holds, so each chunk can say how many it carries,
//! and when its first token arrived, so each chunk's `ts` is when the model produced its oldest
//! text rather than when the chunk was built: a token held back (while a write is in flight,
//! or by `CHUNK_LINGER`) shows in every latency measured from `ts`.

use std::collections::VecDeque;

use shared_proto::DeltaKind;

/// The largest chunk written at once: what piled up during an outage goes out in pieces of at
/// most this (far above what piles up between two writes otherwise, so the normal path never
/// splits).
pub const MAX_CHUNK_BYTES: usize = 16 * 1024;

/// One run of one kind: its text, how many tokens it holds, and when the first arrived.
#[derive(Debug)]
struct Run {
    kind: DeltaKind,
    text: String,
    tokens: u64,
    first_ms: u64,
}

/// A chunk's worth of pending text.
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    pub kind: DeltaKind,
    pub text: String,
    pub tokens: u64,
    /// When its first token arrived (ms since the epoch): the chunk's `ts`.
    pub first_ms: u64,
}

/// Unwritten text, by kind, in order.
#[derive(Debug, Default)]
pub struct Pending {
    runs: VecDeque<Run>,
    bytes: usize,
}

impl Pending {
    /// Adds one token (a provider event) the model produced, now.
    pub fn push(&mut self, kind: DeltaKind, text: &str) {
        self.push_with(kind, text, shared_proto::now_ms);
    }

    /// Adds one token; `clock` (ms since the epoch) is read only for a run's first token.
    fn push_with(&mut self, kind: DeltaKind, text: &str, clock: impl FnOnce() -> u64) {
        self.bytes += text.len();
        match self.runs.back_mut() {
            Some(run) if run.kind == kind => {
                run.text.push_str(text);
                run.tokens += 1;
            }
            _ => self.runs.push_back(Run {
                kind,
                text: text.to_string(),
                tokens: 1,
                first_ms: clock(),
            }),
        }
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The next chunk: the front run, or at most [`MAX_CHUNK_BYTES`] of it (cut at a character
    /// boundary, its tokens shared out by bytes).
    pub fn take_chunk(&mut self) -> Option<Piece> {
        let run = self.runs.front_mut()?;
        let piece = if run.text.len() <= MAX_CHUNK_BYTES {
            let run = self.runs.pop_front()?;
            Piece {
                kind: run.kind,
                text: run.text,
                tokens: run.tokens,
                first_ms: run.first_ms,
            }
        } else {
            let mut cut = MAX_CHUNK_BYTES;
            while !run.text.is_char_boundary(cut) {
                cut -= 1;
            }
            let share = (run.tokens * cut as u64 / run.text.len() as u64).clamp(1, run.tokens);
            let rest = run.text.split_off(cut);
            run.tokens -= share;
            Piece {
                kind: run.kind,
                text: std::mem::replace(&mut run.text, rest),
                tokens: share,
                first_ms: run.first_ms,
            }
        };
        self.bytes -= piece.text.len();
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keep_their_order_kind_and_first_arrival() {
        let mut p = Pending::default();
        p.push_with(DeltaKind::Reasoning, "think ", || 10);
        p.push_with(DeltaKind::Reasoning, "more", || 11);
        p.push_with(DeltaKind::Text, "The", || 12);
        p.push_with(DeltaKind::Text, " answer", || 13);
        p.push_with(DeltaKind::Reasoning, "again", || 14);
        assert_eq!(p.len(), 25);
        let piece = |kind, text: &str, tokens, first_ms| {
            Some(Piece {
                kind,
                text: text.into(),
                tokens,
                first_ms,
            })
        };
        assert_eq!(
            p.take_chunk(),
            piece(DeltaKind::Reasoning, "think more", 2, 10)
        );
        assert_eq!(p.take_chunk(), piece(DeltaKind::Text, "The answer", 2, 12));
        assert_eq!(p.take_chunk(), piece(DeltaKind::Reasoning, "again", 1, 14));
        assert_eq!(p.take_chunk(), None);
        assert_eq!(p.len(), 0);
        assert!(p.is_empty());
    }

    #[test]
    fn a_pile_up_goes_out_in_bounded_chunks_cut_at_characters() {
        let mut p = Pending::default();
        for _ in 0..MAX_CHUNK_BYTES {
            p.push(DeltaKind::Text, "é"); // two bytes each
        }
        let mut sizes = Vec::new();
        let mut tokens = 0;
        while let Some(c) = p.take_chunk() {
            assert!(c.text.len() <= MAX_CHUNK_BYTES);
            sizes.push(c.text.len());
            tokens += c.tokens;
        }
        assert_eq!(sizes, vec![MAX_CHUNK_BYTES, MAX_CHUNK_BYTES]);
        assert_eq!(tokens, MAX_CHUNK_BYTES as u64, "every token counted once");
    }
}
