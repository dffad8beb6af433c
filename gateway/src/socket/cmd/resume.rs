//! `resume`: replay a message's log after `after_seq`, then follow it live (see
//! `delivery::streams`). A resumed message counts toward `MAX_GENERATIONS_PER_SESSION` on this
//! connection from now on, instead of as an inherited one.

use uuid::Uuid;

use super::{lock, Commands};

impl Commands {
    pub(super) fn resume(&self, message_id: Uuid, after_seq: u64) {
        lock(&self.inherited).forget(message_id);
        self.streams.resume(message_id, after_seq)
    }
}
