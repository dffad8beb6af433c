//! Which messages a connection follows, and exactly-once, in-order delivery of each.
//!
//! Entries reach the gateway two ways: live (the session's channel) and from the log (on
//! resume, after a gap, after a resync). A [`Cursor`] per followed message remembers the next
//! log position the client needs; an entry is written to the client only if it is exactly
//! that position. Anything else is a repeat (dropped) or shows a gap, which starts a
//! *backfill*: read the log from the cursor and deliver in order, again until nothing seen live
//! is still ahead of the cursor. Because an entry is in the log before it is published, this
//! loses nothing, and because delivery checks the position under one lock, nothing repeats.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shared_proto::{ErrorBody, ErrorCode, FinalStatus, ServerFrame, StreamChunk};
use store::{lifecycle, MessageRef, Store};
use tokio::time::Instant;
use uuid::Uuid;

use super::outages::StoreOutages;
use crate::sink::Sink;
use crate::tasks::Tasks;

#[cfg(test)]
mod tests;

#[derive(Debug)]
struct Cursor {
    /// Next log position the client needs.
    next_index: u64,
    /// Live entries are held back (until `ack` was sent).
    held: bool,
    /// A backfill task runs for this cursor.
    backfilling: bool,
    /// Highest position seen live but not deliverable yet.
    max_seen: Option<u64>,
    /// Last time anything was delivered (or the cursor was created).
    last_progress: Instant,
    /// Whether a read that finds no message means "resume_unavailable" (resume) rather than
    /// "the store lost it" (live chat).
    resumed: bool,
    /// A read has found the message at least once.
    confirmed: bool,
}

/// What a backfill pass decided.
enum Retry {
    /// Read again at once.
    Now,
    /// The store is unreachable: read again after a pause.
    Later,
    /// A long replay filled half the client's queue: wait for it to drain, then read on.
    Drain,
}

/// How long a follower waits for a message it cannot read, so that no message is ended for a
/// client while its owner may still restore it.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// The store away, or a followed message missing from it: the owner's outage budget plus a
    /// lease (`STORE_OUTAGE_BUDGET` + `LEASE_TTL`).
    pub unreadable: Duration,
    /// A resumed message never found, soon after the store came back: a lease, the time its
    /// owner takes to notice and restore it (`LEASE_TTL`). Otherwise it is unknown at once.
    pub restore: Duration,
}

/// The messages one connection follows.
pub struct Streams {
    session_id: Uuid,
    sink: Sink,
    store: Arc<dyn Store>,
    tasks: Tasks,
    /// How long to wait for a message that cannot be read (see [`Patience`]).
    patience: Patience,
    outages: Arc<StoreOutages>,
    cursors: Mutex<HashMap<Uuid, Cursor>>,
}

/// What [`Streams::follow`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Follow {
    Started,
    AlreadyFollowing,
}

impl Streams {
    pub fn new(
        session_id: Uuid,
        sink: Sink,
        store: Arc<dyn Store>,
        tasks: Tasks,
        patience: Patience,
        outages: Arc<StoreOutages>,
    ) -> Arc<Self> {
        Arc::new(Streams {
            session_id,
            sink,
            store,
            tasks,
            patience,
            outages,
            cursors: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Cursor>> {
        self.cursors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts following a new message from its first entry, holding live entries back until
    /// [`Streams::release`] (so `ack` precedes the first chunk).
    pub fn follow_held(&self, message_id: Uuid) -> Follow {
        let mut map = self.lock();
        if map.contains_key(&message_id) {
            return Follow::AlreadyFollowing;
        }
        map.insert(message_id, Cursor::new(0, true, false));
        Follow::Started
    }

    /// Stops holding a message back and delivers whatever arrived meanwhile (or, with
    /// `read_log`, whatever its log already holds: a retried chat of a running or finished
    /// message).
    pub fn release(self: &Arc<Self>, message_id: Uuid, read_log: bool) {
        let mut map = self.lock();
        if let Some(c) = map.get_mut(&message_id) {
            c.held = false;
            if (read_log || c.max_seen.is_some()) && !c.backfilling {
                c.backfilling = true;
                drop(map);
                self.spawn_backfill(message_id);
            }
        }
    }

    /// Forgets a message (its start failed).
    pub fn unfollow(&self, message_id: Uuid) {
        self.lock().remove(&message_id);
    }

    /// Replays a message after `after_seq` and then follows it live.
    pub fn resume(self: &Arc<Self>, message_id: Uuid, after_seq: u64) {
        let mut map = self.lock();
        let cursor = map
            .entry(message_id)
            .or_insert_with(|| Cursor::new(after_seq, false, true));
        // A resume repositions an existing cursor too: the client knows what it has.
        cursor.next_index = after_seq;
        cursor.held = false;
        cursor.resumed = true;
        if !cursor.backfilling {
            cursor.backfilling = true;
            drop(map);
            self.spawn_backfill(message_id);
        }
    }

    /// A live entry of this session.
    pub fn on_live(self: &Arc<Self>, chunk: StreamChunk) {
        let mut map = self.lock();
        let Some(c) = map.get_mut(&chunk.message_id) else {
            return; // Not followed by this connection.
        };
        let index = chunk.log_index();
        if index < c.next_index {
            return; // Already delivered.
        }
        if index == c.next_index && !c.held && !c.backfilling {
            let (terminal, message_id) = (chunk.is_terminal(), chunk.message_id);
            c.next_index += 1;
            c.last_progress = Instant::now();
            self.sink.send(&chunk.into_frame());
            if terminal {
                map.remove(&message_id);
            }
            return;
        }
        c.max_seen = Some(c.max_seen.map_or(index, |m| m.max(index)));
        if !c.held && !c.backfilling {
            c.backfilling = true;
            drop(map);
            self.spawn_backfill(chunk.message_id);
        }
    }

    /// A message of the session was started by another socket (or another gateway's): follow
    /// it from its first entry, and tell the client. One this connection follows already (it
    /// started it, or resumed it) changes nothing.
    pub fn on_started(self: &Arc<Self>, message_id: Uuid, content: &str) {
        let mut map = self.lock();
        if map.contains_key(&message_id) {
            return;
        }
        map.insert(message_id, Cursor::new(0, false, false));
        self.sink.send(&ServerFrame::Started {
            message_id,
            content: content.to_string(),
        });
    }

    /// Live entries may have been lost: re-read every followed message's log.
    pub fn resync(self: &Arc<Self>) {
        self.backfill_where(|_| true);
    }

    /// Re-reads the logs of messages that made no progress for `idle` (a safety net for any
    /// live entry lost without a visible gap, e.g. the last one).
    pub fn check_idle(self: &Arc<Self>, idle: Duration) {
        let now = Instant::now();
        self.backfill_where(|c| now.duration_since(c.last_progress) >= idle);
    }

    fn backfill_where(self: &Arc<Self>, pred: impl Fn(&Cursor) -> bool) {
        let ids: Vec<Uuid> = {
            let mut map = self.lock();
            map.iter_mut()
                .filter(|(_, c)| !c.held && !c.backfilling && pred(c))
                .map(|(id, c)| {
                    c.backfilling = true;
                    c.last_progress = Instant::now();
                    *id
                })
                .collect()
        };
        for id in ids {
            self.spawn_backfill(id);
        }
    }

    /// Number of messages followed.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn spawn_backfill(self: &Arc<Self>, message_id: Uuid) {
        let this = self.clone();
        self.tasks
            .spawn(async move { this.backfill(message_id).await });
    }

    async fn backfill(&self, message_id: Uuid) {
        let msg = MessageRef::new(self.session_id, message_id);
        // Since when the message could not be read (the store away, or the message missing).
        let mut trouble: Option<Instant> = None;
        let mut delay = Duration::from_millis(50);
        loop {
            if self.sink.is_finished() {
                // The connection is gone: nobody to deliver to.
                return;
            }
            let from = match self.lock().get(&message_id) {
                Some(c) => c.next_index,
                None => return,
            };
            // A message whose owner is lost is ended `worker_lost` by this read (see
            // `store::lifecycle`), and the read shows that end.
            let read = lifecycle::read_as_follower(self.store.as_ref(), &msg, from).await;
            let retry = {
                let mut map = self.lock();
                let Some(c) = map.get_mut(&message_id) else {
                    return;
                };
                match read {
                    Ok(Some(read)) => {
                        trouble = None;
                        let log_len = read.last_seq + u64::from(read.state.is_terminal());
                        if c.next_index > read.last_seq {
                            // The client claims more than exists (a bogus after_seq): it
                            // cannot have seen more than the log holds. Whatever the read
                            // returned (the store may answer a position past the end with the
                            // last entry), the next entry is the one after `last_seq`: a
                            // finished message's `done` (its position is `last_seq`), or a
                            // running one's next chunk.
                            c.next_index = read.last_seq;
                            continue;
                        }
                        let mut paused = false;
                        for entry in read.entries {
                            if entry.log_index() != c.next_index {
                                continue;
                            }
                            if self.sink.queued_bytes() > self.sink.max_queue_bytes() / 2 {
                                // A long replay goes out at the pace the client reads, not
                                // all at once into its bounded queue: pause and read on.
                                paused = true;
                                break;
                            }
                            c.next_index += 1;
                            c.last_progress = Instant::now();
                            let terminal = entry.is_terminal();
                            self.sink.send(&entry.into_frame());
                            if terminal {
                                map.remove(&message_id);
                                return;
                            }
                        }
                        c.confirmed = true;
                        if paused && c.next_index < log_len {
                            Retry::Drain
                        } else if c.max_seen.is_some_and(|m| m >= c.next_index) {
                            // Something seen live was written after our read: read again.
                            Retry::Now
                        } else {
                            c.max_seen = None;
                            c.backfilling = false;
                            return;
                        }
                    }
                    Ok(None) if c.resumed && !c.confirmed => {
                        // Resumed and never found: unknown or expired, unless the store came
                        // back lately and its owner may be about to restore it.
                        let since = *trouble.get_or_insert_with(Instant::now);
                        if self.outages.back_within(self.patience.unreadable)
                            && since.elapsed() <= self.patience.restore
                        {
                            Retry::Later
                        } else {
                            map.remove(&message_id);
                            self.sink.send(&ServerFrame::error(
                                ErrorCode::ResumeUnavailable,
                                "this answer is no longer available (expired or unknown)",
                                Some(message_id),
                            ));
                            return;
                        }
                    }
                    // Missing, or the store away: its owner may still put it back (a restore
                    // after the store lost it). Wait for that, within the patience.
                    other => {
                        let since = *trouble.get_or_insert_with(Instant::now);
                        if since.elapsed() > self.patience.unreadable {
                            let why = match other {
                                Ok(_) => "the store lost this message",
                                Err(_) => "the store is unreachable",
                            };
                            tracing::warn!(session_id = %self.session_id, %message_id, why,
                                "ending the message for this client");
                            let frame = if c.resumed && !c.confirmed {
                                ServerFrame::error(
                                    ErrorCode::ResumeUnavailable,
                                    "this answer is no longer available (expired or unknown)",
                                    Some(message_id),
                                )
                            } else {
                                lost_frame(message_id, c.next_index, why)
                            };
                            map.remove(&message_id);
                            self.sink.send(&frame);
                            return;
                        }
                        Retry::Later
                    }
                }
            };
            match retry {
                Retry::Now => {}
                Retry::Drain => self.sink.wait_below(self.sink.max_queue_bytes() / 2).await,
                Retry::Later => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

impl Cursor {
    fn new(next_index: u64, held: bool, resumed: bool) -> Self {
        Cursor {
            next_index,
            held,
            backfilling: false,
            max_seen: None,
            last_progress: Instant::now(),
            resumed,
            confirmed: false,
        }
    }
}

/// A `done{failed, redis_unavailable}` for a message whose log cannot be read: the client must
/// not wait forever. `seq` is the last seq the client got.
fn lost_frame(message_id: Uuid, next_index: u64, why: &str) -> ServerFrame {
    ServerFrame::Done {
        message_id,
        seq: next_index,
        status: FinalStatus::Failed,
        error: Some(ErrorBody::new(ErrorCode::RedisUnavailable, why)),
        usage: None,
    }
}
