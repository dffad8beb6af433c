//! What the owner of a running message keeps of it: every delta it has written, so that it can
//! put the message back if the store loses it (a restart without persistence, a failover that
//! lost asynchronously replicated writes, an AOF tail). Bounded: an answer longer than
//! [`RESTORE_LOG_MAX_BYTES`] stops being kept, and such a message cannot be restored (it then
//! ends `failed/redis_unavailable` if the store loses it, and a metric says so).

use shared_proto::StreamChunk;
use store::Snapshot;

/// The most answer text one running message keeps for a restore.
pub const RESTORE_LOG_MAX_BYTES: usize = 1024 * 1024;

/// The owner's copy of one message.
#[derive(Debug)]
pub struct LogCopy {
    content: String,
    created_ms: u64,
    entries: Vec<StreamChunk>,
    bytes: usize,
    /// The answer outgrew the bound: nothing is kept any more.
    overflowed: bool,
}

impl LogCopy {
    pub fn new(content: String, created_ms: u64) -> Self {
        LogCopy {
            content,
            created_ms,
            entries: Vec::new(),
            bytes: 0,
            overflowed: false,
        }
    }

    /// A delta the store accepted.
    pub fn push(&mut self, chunk: StreamChunk) {
        if self.overflowed {
            return;
        }
        self.bytes += chunk.text.len();
        if self.bytes > RESTORE_LOG_MAX_BYTES {
            self.overflowed = true;
            self.entries = Vec::new();
            return;
        }
        self.entries.push(chunk);
    }

    /// The snapshot to restore from, or None once the answer outgrew the bound.
    pub fn snapshot<'a>(&'a self, owner: &'a str) -> Option<Snapshot<'a>> {
        (!self.overflowed).then_some(Snapshot {
            owner,
            content: &self.content,
            created_ms: self.created_ms,
            entries: &self.entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn keeps_every_delta_up_to_the_bound() {
        let (s, m) = (Uuid::new_v4(), Uuid::new_v4());
        let mut copy = LogCopy::new("q".into(), 7);
        copy.push(StreamChunk::delta(s, m, 1, "a".into(), 0));
        copy.push(StreamChunk::delta(s, m, 2, "b".into(), 0));
        let snap = copy.snapshot("me").unwrap();
        assert_eq!((snap.owner, snap.content, snap.created_ms), ("me", "q", 7));
        assert_eq!(snap.entries.len(), 2);
        copy.push(StreamChunk::delta(
            s,
            m,
            3,
            "x".repeat(RESTORE_LOG_MAX_BYTES),
            0,
        ));
        assert!(copy.snapshot("me").is_none(), "too long to restore");
    }
}
