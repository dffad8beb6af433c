//! [`Store`] and [`Feed`] in memory, for the single-process (embedded) mode.
//!
//! Same contract as the Redis implementation (`redis/lua/*.lua` is the reference): every
//! operation is one atomic step under one mutex, terminal states never change, a cancel before
//! the first token wins, the terminal entry is written into the log, and an entry is in the log
//! before it is published. Expiry follows Redis: messages and logs live `stream_ttl` after their
//! last write or lease renewal, the grace marker `cancel_grace` after the terminal transition, leases `lease_ttl`
//! after their last renewal, history `session_ttl` after its last turn. Expired data is dropped
//! lazily when touched, and by a periodic sweep so that memory does not grow forever.
//!
//! Live delivery: [`MemoryStore::feed`] registers a handler (one per component, like one
//! subscriber connection per process with Redis). Recipients are chosen under the state lock,
//! at the moment of the write (as `SPUBLISH` does), and the events are queued in that order;
//! handlers are called after the lock is released, by one drainer at a time, so per-session
//! order is the order of the writes and a handler may call back into the store.

mod feed;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use shared_proto::{
    ActiveMessage, CancelStatus, ConversationMessage, FinalStatus, MessageState, Role, StoredTurn,
    StreamChunk, Turn,
};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    Appended, Budget, Cancelled, Created, FeedEvent, FeedHandler, Finished, Lease, LogRead,
    MessageRef, Outcome, Restored, RunningEntry, Snapshot, Spent, Store, StoreError,
};
pub use feed::MemoryFeed;

/// Data-retention settings (the same as [`crate::RedisStoreConfig`]'s, minus the connection).
#[derive(Debug, Clone)]
pub struct MemoryStoreConfig {
    /// How long a message's log and state live after their last write (the resume window).
    pub stream_ttl: Duration,
    /// How long a finished message answers cancels with `already_*` instead of `not_found`.
    pub cancel_grace: Duration,
    /// How long an owner's lease lives without renewal.
    pub lease_ttl: Duration,
    /// Turn pairs kept per session (0: no history).
    pub history_turns: u32,
    /// How long a session's history lives after its last turn.
    pub session_ttl: Duration,
    /// How often expired data is swept (it is also dropped whenever it is touched).
    pub sweep_interval: Duration,
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        MemoryStoreConfig {
            stream_ttl: Duration::from_secs(600),
            cancel_grace: Duration::from_secs(30),
            lease_ttl: crate::DEFAULT_LEASE_TTL,
            history_turns: 20,
            session_ttl: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(10),
        }
    }
}

/// One message: the `s:{sid}:m:{mid}` hash, its log, grace marker and lease.
#[derive(Debug)]
struct Message {
    state: MessageState,
    seq: u64,
    owner: String,
    content: String,
    /// Shared entries: a read copies pointers under the lock and the entries after it.
    log: Vec<Arc<StreamChunk>>,
    /// Message and log expire together, `stream_ttl` after the last write.
    expires_at: Instant,
    /// The grace marker (set by the terminal transition).
    grace_until: Option<Instant>,
    /// The owner's lease (dropped by the terminal transition).
    lease_until: Option<Instant>,
    /// When a follower first saw the lease expired (the `:suspect` marker).
    suspect_since: Option<Instant>,
}

impl Message {
    fn running(&self) -> bool {
        matches!(self.state, MessageState::Queued | MessageState::Streaming)
    }

    fn lease_alive(&self, now: Instant) -> bool {
        self.lease_until.is_some_and(|t| t > now)
    }

    fn grace_alive(&self, now: Instant) -> bool {
        self.grace_until.is_some_and(|t| t > now)
    }
}

/// A session: its message index (creation order) and its history.
#[derive(Debug, Default)]
struct Session {
    messages: Vec<Uuid>,
    history: VecDeque<StoredTurn>,
    history_expires_at: Option<Instant>,
}

/// Subscriptions of one feed.
struct Subscriber {
    handler: Arc<dyn FeedHandler>,
}

#[derive(Default)]
struct State {
    messages: HashMap<MessageRef, Message>,
    sessions: HashMap<Uuid, Session>,
    subscribers: HashMap<u64, Subscriber>,
    next_subscriber: u64,
    /// Session → feeds subscribed to its channel.
    session_subs: HashMap<Uuid, HashSet<u64>>,
    /// Replica → feeds subscribed to its nudges.
    replica_subs: HashMap<String, HashSet<u64>>,
    /// Cancels of messages that did not exist yet (`s:{sid}:m:{mid}:tomb`): the canceller and
    /// when the tombstone expires.
    tombstones: HashMap<MessageRef, (String, Instant)>,
    /// Users' budget counters (`u:{user}:tokens`): tokens used, and when the window ends.
    budgets: HashMap<String, (u64, Instant)>,
    /// The running index (`g:{running}`): not expiring, cleaned by the listing.
    running: HashMap<MessageRef, RunningEntry>,
}

impl State {
    /// The message, unless unknown or expired (an expired one is dropped now).
    fn message(&mut self, msg: &MessageRef, now: Instant) -> Option<&mut Message> {
        if self.messages.get(msg).is_some_and(|m| m.expires_at <= now) {
            self.messages.remove(msg);
        }
        self.messages.get_mut(msg)
    }

    /// Who receives a live entry of `session_id` now.
    fn session_recipients(&self, session_id: Uuid) -> Vec<Arc<dyn FeedHandler>> {
        self.recipients(self.session_subs.get(&session_id))
    }

    fn recipients(&self, ids: Option<&HashSet<u64>>) -> Vec<Arc<dyn FeedHandler>> {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.subscribers.get(id))
            .map(|s| s.handler.clone())
            .collect()
    }

    /// The tombstone of `msg`, taken (consumed) unless it has expired.
    fn take_tombstone(&mut self, msg: &MessageRef, now: Instant) -> Option<String> {
        match self.tombstones.remove(msg) {
            Some((canceller, expires_at)) if expires_at > now => Some(canceller),
            _ => None,
        }
    }

    /// Drops everything that has expired.
    fn sweep(&mut self, now: Instant) {
        self.messages.retain(|_, m| m.expires_at > now);
        self.tombstones
            .retain(|_, (_, expires_at)| *expires_at > now);
        let messages = &self.messages;
        self.sessions.retain(|sid, s| {
            s.messages
                .retain(|mid| messages.contains_key(&MessageRef::new(*sid, *mid)));
            if s.history_expires_at.is_some_and(|t| t <= now) {
                s.history.clear();
                s.history_expires_at = None;
            }
            !s.messages.is_empty() || !s.history.is_empty()
        });
    }
}

/// What a handler receives, shared until delivery.
enum Live {
    Chunk(Arc<StreamChunk>),
    Nudge(MessageRef),
}

/// A queued delivery: the handler and what it receives.
type Delivery = (Arc<dyn FeedHandler>, Live);

/// Deliveries in write order, drained by one caller at a time.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Delivery>,
    draining: bool,
}

pub(crate) struct Inner {
    cfg: MemoryStoreConfig,
    state: Mutex<State>,
    outbox: Mutex<Outbox>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues deliveries. Must be called while the state lock is held, so that the queue
    /// order is the write order.
    fn enqueue(&self, deliveries: impl IntoIterator<Item = Delivery>) {
        self.lock_outbox().queue.extend(deliveries);
    }

    /// Delivers queued events, in order, with no lock held while a handler runs. If another
    /// caller is already draining, it delivers ours too (after the ones queued before them).
    fn drain(&self) {
        {
            let mut outbox = self.lock_outbox();
            if outbox.draining {
                return;
            }
            outbox.draining = true;
        }
        loop {
            let next = {
                let mut outbox = self.lock_outbox();
                match outbox.queue.pop_front() {
                    Some(d) => d,
                    None => {
                        outbox.draining = false;
                        return;
                    }
                }
            };
            let (handler, live) = next;
            let event = match live {
                Live::Chunk(c) => FeedEvent::Chunk(StreamChunk::clone(&c)),
                Live::Nudge(m) => FeedEvent::Nudge(m),
            };
            // A panicking handler must not leave the outbox stuck in `draining`.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_event(event)))
                .is_err()
            {
                tracing::error!("a feed handler panicked; event dropped");
            }
        }
    }

    pub(crate) fn subscribe(&self, handler: Arc<dyn FeedHandler>) -> u64 {
        let mut st = self.lock();
        st.next_subscriber += 1;
        let id = st.next_subscriber;
        st.subscribers.insert(id, Subscriber { handler });
        id
    }

    pub(crate) fn unsubscribe_all(&self, id: u64) {
        let mut st = self.lock();
        st.subscribers.remove(&id);
        st.session_subs.retain(|_, ids| {
            ids.remove(&id);
            !ids.is_empty()
        });
        st.replica_subs.retain(|_, ids| {
            ids.remove(&id);
            !ids.is_empty()
        });
    }

    pub(crate) fn subscribe_session(&self, id: u64, session_id: Uuid) {
        let mut st = self.lock();
        if st.subscribers.contains_key(&id) {
            st.session_subs.entry(session_id).or_default().insert(id);
        }
    }

    pub(crate) fn unsubscribe_session(&self, id: u64, session_id: Uuid) {
        let mut st = self.lock();
        if let Some(ids) = st.session_subs.get_mut(&session_id) {
            ids.remove(&id);
            if ids.is_empty() {
                st.session_subs.remove(&session_id);
            }
        }
    }

    pub(crate) fn subscribe_replica(&self, id: u64, replica: &str) {
        let mut st = self.lock();
        if st.subscribers.contains_key(&id) {
            st.replica_subs
                .entry(replica.to_string())
                .or_default()
                .insert(id);
        }
    }

    /// The terminal transition (`finish.lua`): compare-and-set from queued/streaming, terminal
    /// entry into the log, grace marker, history, lease dropped, entry published.
    fn transition(&self, msg: &MessageRef, outcome: &Outcome, mode: Mode<'_>) -> Transition {
        let now = Instant::now();
        let cfg = &self.cfg;
        let mut st = self.lock();
        let Some(m) = st.message(msg, now) else {
            let Mode::Cancel { canceller } = mode else {
                return Transition::Missing;
            };
            // As finish.lua: the first cancel of an unknown id is remembered (SET NX PX).
            let first = match st.tombstones.get(msg) {
                Some((_, expires_at)) if *expires_at > now => false,
                _ => {
                    st.tombstones
                        .insert(*msg, (canceller.to_string(), now + cfg.cancel_grace));
                    true
                }
            };
            return Transition::Remembered { first };
        };
        if !m.running() {
            return Transition::AlreadyTerminal {
                state: m.state,
                grace: m.grace_alive(now),
            };
        }
        if matches!(mode, Mode::Reap) {
            // As finish.lua: the first sight of an expired lease only notes the time; the
            // takeover needs half a lease more of silence (see `Store::reap`).
            if m.lease_alive(now) {
                m.suspect_since = None;
                return Transition::OwnerAlive;
            }
            match m.suspect_since {
                Some(since) if now.duration_since(since) >= cfg.lease_ttl / 2 => {}
                Some(_) => return Transition::OwnerSuspected,
                None => {
                    m.suspect_since = Some(now);
                    return Transition::OwnerSuspected;
                }
            }
        }
        let seq = m.seq;
        // As finish.lua: an end without usage (a cancel, a takeover) is counted from the log.
        let usage = outcome.usage.or_else(|| Some(usage_from_log(m)));
        let entry = StreamChunk::done(
            msg.session_id,
            msg.message_id,
            seq,
            outcome.status,
            outcome.error.clone(),
            usage,
            shared_proto::now_ms(),
        );
        let entry = Arc::new(entry);
        m.state = outcome.status.state();
        m.log.push(entry.clone());
        m.expires_at = now + cfg.stream_ttl;
        m.grace_until = Some(now + cfg.cancel_grace);
        m.lease_until = None;
        m.suspect_since = None;
        let owner = m.owner.clone();
        let turns = (cfg.history_turns > 0).then(|| {
            // Whole entries until at least HISTORY_ANSWER_MAX_BYTES, as finish.lua does.
            let mut answer = String::new();
            for c in m.log.iter().filter(|c| c.is_text()) {
                if answer.len() >= crate::HISTORY_ANSWER_MAX_BYTES {
                    break;
                }
                answer.push_str(&c.text);
            }
            let user = StoredTurn {
                role: Role::User,
                content: m.content.clone(),
                message_id: Some(msg.message_id),
                status: Some(outcome.status),
            };
            // An answer without text is left out (models reject empty assistant turns).
            let assistant = (!answer.is_empty()).then_some(StoredTurn {
                role: Role::Assistant,
                content: answer,
                message_id: Some(msg.message_id),
                status: Some(outcome.status),
            });
            std::iter::once(user).chain(assistant)
        });
        if let Some(turns) = turns {
            let session = st.sessions.entry(msg.session_id).or_default();
            record_history(session, turns, cfg, now);
        }
        let recipients = st.session_recipients(msg.session_id);
        self.enqueue(
            recipients
                .into_iter()
                .map(|h| (h, Live::Chunk(entry.clone()))),
        );
        drop(st);
        self.drain();
        Transition::Done { seq, owner }
    }
}

/// What a running message cost so far, from its log (the last text entry's running token
/// count, the first's prompt estimate; without any, a quarter of the content's bytes).
fn usage_from_log(m: &Message) -> shared_proto::Usage {
    let completion = m.log.last().and_then(|c| c.tokens).unwrap_or(0);
    let prompt = m
        .log
        .first()
        .and_then(|c| c.prompt_tokens)
        .unwrap_or_else(|| (m.content.len() as u64).div_ceil(4));
    shared_proto::Usage::estimated(prompt, completion)
}

/// Appends turns to a session's history, as `finish.lua` does: an expired history starts over,
/// at most `2 × history_turns` entries are kept, and the history lives `session_ttl` more.
fn record_history(
    session: &mut Session,
    turns: impl IntoIterator<Item = StoredTurn>,
    cfg: &MemoryStoreConfig,
    now: Instant,
) {
    if session.history_expires_at.is_some_and(|t| t <= now) {
        session.history.clear();
    }
    session.history.extend(turns);
    let cap = 2 * cfg.history_turns as usize;
    while session.history.len() > cap {
        session.history.pop_front();
    }
    session.history_expires_at = Some(now + cfg.session_ttl);
}

/// Which terminal transition [`Inner::transition`] makes (`finish.lua`'s modes).
#[derive(Clone, Copy)]
enum Mode<'a> {
    /// The producer ends its message.
    Finish,
    /// The `worker_lost` takeover: only while the owner's lease has expired.
    Reap,
    /// A cancel: leaves a tombstone naming `canceller` when the message does not exist.
    Cancel { canceller: &'a str },
}

/// What the terminal transition did.
enum Transition {
    Done {
        seq: u64,
        owner: String,
    },
    AlreadyTerminal {
        state: MessageState,
        grace: bool,
    },
    OwnerAlive,
    /// The lease expired, but not long enough ago (see `Store::reap`).
    OwnerSuspected,
    Missing,
    /// The message does not exist; a cancel's tombstone remembers it (`first`: written now).
    Remembered {
        first: bool,
    },
}

/// The in-memory store: cheap to clone (every clone shares the same data). Create feeds for it
/// with [`MemoryStore::feed`].
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl MemoryStore {
    /// A new, empty store. Inside a Tokio runtime it also starts the periodic sweep (which
    /// ends when the last clone of the store is dropped).
    pub fn new(cfg: MemoryStoreConfig) -> Result<Self, StoreError> {
        if cfg.cancel_grace > cfg.stream_ttl {
            return Err(StoreError::Config(
                "CANCEL_GRACE must not exceed STREAM_TTL".into(),
            ));
        }
        let sweep_interval = cfg.sweep_interval.max(Duration::from_millis(10));
        let store = MemoryStore {
            inner: Arc::new(Inner {
                cfg,
                state: Mutex::new(State::default()),
                outbox: Mutex::new(Outbox::default()),
            }),
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(sweeper(Arc::downgrade(&store.inner), sweep_interval));
        }
        Ok(store)
    }

    /// A feed of this store: `handler` receives the entries of the sessions the feed
    /// subscribes, and the nudges addressed to the replicas it subscribes.
    pub fn feed(&self, handler: Arc<dyn FeedHandler>) -> MemoryFeed {
        MemoryFeed::new(self.inner.clone(), handler)
    }

    /// Drops everything that has expired now (the periodic sweep does this on its own).
    pub fn sweep(&self) {
        self.inner.lock().sweep(Instant::now());
    }

    /// How many messages and sessions the store holds (expired ones included until swept).
    pub fn size(&self) -> (usize, usize) {
        let st = self.inner.lock();
        (st.messages.len(), st.sessions.len())
    }
}

async fn sweeper(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.lock().sweep(Instant::now());
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create(
        &self,
        msg: &MessageRef,
        owner: &str,
        content: &str,
    ) -> Result<Created, StoreError> {
        let now = Instant::now();
        let cfg = &self.inner.cfg;
        let mut st = self.inner.lock();
        if let Some(m) = st.message(msg, now) {
            return Ok(Created::Exists(m.state));
        }
        let canceller = st.take_tombstone(msg, now);
        let mut message = Message {
            state: MessageState::Queued,
            seq: 0,
            owner: owner.to_string(),
            content: content.to_string(),
            log: Vec::new(),
            expires_at: now + cfg.stream_ttl,
            grace_until: None,
            lease_until: Some(now + cfg.lease_ttl),
            suspect_since: None,
        };
        // As create.lua: a cancel that came first ends the message at once (terminal entry,
        // grace marker, the user turn in the history, the entry published).
        let cancelled = canceller.as_ref().map(|_| {
            let entry = Arc::new(StreamChunk::done(
                msg.session_id,
                msg.message_id,
                0,
                FinalStatus::Cancelled,
                None,
                None,
                shared_proto::now_ms(),
            ));
            message.state = MessageState::Cancelled;
            message.log.push(entry.clone());
            message.grace_until = Some(now + cfg.cancel_grace);
            message.lease_until = None;
            entry
        });
        st.messages.insert(*msg, message);
        let session = st.sessions.entry(msg.session_id).or_default();
        session.messages.retain(|id| *id != msg.message_id);
        session.messages.push(msg.message_id);
        // As create.lua: every socket of the session learns of the message.
        let start = Arc::new(StreamChunk::start(
            msg.session_id,
            msg.message_id,
            content.to_string(),
            shared_proto::now_ms(),
        ));
        let recipients = st.session_recipients(msg.session_id);
        self.inner.enqueue(
            recipients
                .iter()
                .map(|h| (h.clone(), Live::Chunk(start.clone()))),
        );
        let (Some(canceller), Some(entry)) = (canceller, cancelled) else {
            drop(st);
            self.inner.drain();
            return Ok(Created::New);
        };
        let session = st.sessions.entry(msg.session_id).or_default();
        if cfg.history_turns > 0 {
            record_history(
                session,
                [StoredTurn {
                    role: Role::User,
                    content: content.to_string(),
                    message_id: Some(msg.message_id),
                    status: Some(FinalStatus::Cancelled),
                }],
                cfg,
                now,
            );
        }
        let recipients = st.session_recipients(msg.session_id);
        self.inner.enqueue(
            recipients
                .into_iter()
                .map(|h| (h, Live::Chunk(entry.clone()))),
        );
        drop(st);
        self.inner.drain();
        Ok(Created::CancelledFirst { canceller })
    }

    async fn append(&self, msg: &MessageRef, chunk: &StreamChunk) -> Result<Appended, StoreError> {
        let now = Instant::now();
        let mut st = self.inner.lock();
        let stream_ttl = self.inner.cfg.stream_ttl;
        let Some(m) = st.message(msg, now) else {
            return Ok(Appended::Missing);
        };
        if !m.running() {
            return Ok(Appended::Stopped(m.state));
        }
        if m.seq + 1 != chunk.seq {
            return Ok(Appended::OutOfOrder { last_seq: m.seq });
        }
        let chunk = Arc::new(chunk.clone());
        m.state = MessageState::Streaming;
        m.seq = chunk.seq;
        m.log.push(chunk.clone());
        m.expires_at = now + stream_ttl;
        let recipients = st.session_recipients(msg.session_id);
        self.inner.enqueue(
            recipients
                .into_iter()
                .map(|h| (h, Live::Chunk(chunk.clone()))),
        );
        drop(st);
        self.inner.drain();
        Ok(Appended::Written)
    }

    async fn finish(&self, msg: &MessageRef, outcome: &Outcome) -> Result<Finished, StoreError> {
        Ok(match self.inner.transition(msg, outcome, Mode::Finish) {
            Transition::Done { seq, .. } => Finished::Done { seq },
            Transition::AlreadyTerminal { state, .. } => Finished::AlreadyTerminal(state),
            // Not a takeover (the lease is not checked), not a cancel (no tombstone).
            Transition::OwnerAlive
            | Transition::OwnerSuspected
            | Transition::Missing
            | Transition::Remembered { .. } => Finished::Missing,
        })
    }

    async fn cancel(&self, msg: &MessageRef, canceller: &str) -> Result<Cancelled, StoreError> {
        let outcome = Outcome::cancelled();
        Ok(
            match self
                .inner
                .transition(msg, &outcome, Mode::Cancel { canceller })
            {
                Transition::Done { owner, .. } => Cancelled::Ended {
                    owner: Some(owner).filter(|o| !o.is_empty()),
                },
                Transition::AlreadyTerminal { grace: false, .. } => Cancelled::GraceOver,
                Transition::AlreadyTerminal {
                    state: MessageState::Cancelled,
                    ..
                } => Cancelled::AlreadyEnded(CancelStatus::AlreadyCancelled),
                Transition::AlreadyTerminal { .. } => {
                    Cancelled::AlreadyEnded(CancelStatus::AlreadyCompleted)
                }
                Transition::Remembered { first } => Cancelled::Remembered { first },
                // A cancel never checks the lease and always remembers an unknown id.
                Transition::OwnerAlive | Transition::OwnerSuspected | Transition::Missing => {
                    Cancelled::Remembered { first: false }
                }
            },
        )
    }

    async fn read(&self, msg: &MessageRef, from_index: u64) -> Result<Option<LogRead>, StoreError> {
        let now = Instant::now();
        let mut st = self.inner.lock();
        let Some(m) = st.message(msg, now) else {
            return Ok(None);
        };
        let from = usize::try_from(from_index).unwrap_or(usize::MAX);
        let entries: Vec<Arc<StreamChunk>> =
            m.log.get(from..).map(<[_]>::to_vec).unwrap_or_default();
        let read = LogRead {
            state: m.state,
            last_seq: m.seq,
            owner: m.owner.clone(),
            entries: Vec::new(),
            lease_alive: m.lease_alive(now),
        };
        drop(st);
        Ok(Some(LogRead {
            entries: entries.iter().map(|c| StreamChunk::clone(c)).collect(),
            ..read
        }))
    }

    async fn renew_lease(&self, msg: &MessageRef, owner: &str) -> Result<Lease, StoreError> {
        let now = Instant::now();
        let lease_ttl = self.inner.cfg.lease_ttl;
        let mut st = self.inner.lock();
        let Some(m) = st.message(msg, now) else {
            return Ok(Lease::Missing);
        };
        if !m.running() {
            return Ok(Lease::Ended(m.state));
        }
        if m.owner != owner {
            return Ok(Lease::Lost);
        }
        m.lease_until = Some(now + lease_ttl);
        m.suspect_since = None;
        // As `renew.lua`: a running message (and its log) never expires mid-stream.
        m.expires_at = now + self.inner.cfg.stream_ttl;
        Ok(Lease::Renewed)
    }

    async fn reap(&self, msg: &MessageRef) -> Result<Finished, StoreError> {
        let outcome = Outcome::worker_lost();
        Ok(match self.inner.transition(msg, &outcome, Mode::Reap) {
            Transition::Done { seq, .. } => Finished::Done { seq },
            Transition::AlreadyTerminal { state, .. } => Finished::AlreadyTerminal(state),
            Transition::OwnerAlive => Finished::OwnerAlive,
            Transition::OwnerSuspected => Finished::OwnerSuspected,
            Transition::Missing | Transition::Remembered { .. } => Finished::Missing,
        })
    }

    async fn history(&self, session_id: Uuid) -> Result<Vec<Turn>, StoreError> {
        let now = Instant::now();
        let st = self.inner.lock();
        Ok(match st.sessions.get(&session_id) {
            Some(s) if s.history_expires_at.is_some_and(|t| t > now) => {
                s.history.iter().cloned().map(Turn::from).collect()
            }
            _ => Vec::new(),
        })
    }

    async fn active(&self, session_id: Uuid) -> Result<Vec<ActiveMessage>, StoreError> {
        let now = Instant::now();
        let mut st = self.inner.lock();
        let ids = match st.sessions.get(&session_id) {
            Some(s) => s.messages.clone(),
            None => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        let mut expired = Vec::new();
        for id in ids {
            match st.message(&MessageRef::new(session_id, id), now) {
                None => expired.push(id),
                Some(m) if m.running() => out.push(ActiveMessage {
                    message_id: id,
                    last_seq: m.seq,
                }),
                Some(_) => {}
            }
        }
        if !expired.is_empty() {
            if let Some(s) = st.sessions.get_mut(&session_id) {
                s.messages.retain(|id| !expired.contains(id));
            }
        }
        Ok(out)
    }

    async fn conversation(&self, session_id: Uuid) -> Result<Vec<ConversationMessage>, StoreError> {
        let now = Instant::now();
        let mut st = self.inner.lock();
        let history = match st.sessions.get(&session_id) {
            Some(s) if s.history_expires_at.is_some_and(|t| t > now) => {
                s.history.iter().cloned().collect()
            }
            _ => Vec::new(),
        };
        let ids = st
            .sessions
            .get(&session_id)
            .map(|s| s.messages.clone())
            .unwrap_or_default();
        let mut running = Vec::new();
        for id in ids {
            if let Some(m) = st.message(&MessageRef::new(session_id, id), now) {
                if m.running() {
                    let mut text = String::new();
                    for c in m.log.iter().filter(|c| c.is_text()) {
                        if text.len() >= crate::HISTORY_ANSWER_MAX_BYTES {
                            break;
                        }
                        text.push_str(&c.text);
                    }
                    running.push(crate::conversation::RunningMessage {
                        message_id: id,
                        content: m.content.clone(),
                        state: m.state,
                        last_seq: m.seq,
                        text,
                    });
                }
            }
        }
        Ok(crate::conversation::assemble(history, running))
    }

    async fn nudge(&self, owner: &str, msg: &MessageRef) -> Result<(), StoreError> {
        let st = self.inner.lock();
        let recipients = st.recipients(st.replica_subs.get(owner));
        self.inner
            .enqueue(recipients.into_iter().map(|h| (h, Live::Nudge(*msg))));
        drop(st);
        self.inner.drain();
        Ok(())
    }

    async fn restore(
        &self,
        msg: &MessageRef,
        snapshot: Snapshot<'_>,
    ) -> Result<Restored, StoreError> {
        // The same rules as restore.lua, although this store never loses a running message.
        let now = Instant::now();
        let cfg = &self.inner.cfg;
        let mut st = self.inner.lock();
        let n = snapshot.entries.len();
        let appended = match st.message(msg, now) {
            Some(m) if !m.running() => return Ok(Restored::Ended(m.state)),
            Some(m) if m.owner != snapshot.owner || m.log.len() > n => return Ok(Restored::Lost),
            Some(m) => {
                let have = m.log.len();
                m.log
                    .extend(snapshot.entries[have..].iter().cloned().map(Arc::new));
                if n > 0 {
                    m.state = MessageState::Streaming;
                }
                m.seq = n as u64;
                m.expires_at = now + cfg.stream_ttl;
                m.lease_until = Some(now + cfg.lease_ttl);
                n - have
            }
            None => {
                st.messages.insert(
                    *msg,
                    Message {
                        state: if n > 0 {
                            MessageState::Streaming
                        } else {
                            MessageState::Queued
                        },
                        seq: n as u64,
                        owner: snapshot.owner.to_string(),
                        content: snapshot.content.to_string(),
                        log: snapshot.entries.iter().cloned().map(Arc::new).collect(),
                        expires_at: now + cfg.stream_ttl,
                        grace_until: None,
                        lease_until: Some(now + cfg.lease_ttl),
                        suspect_since: None,
                    },
                );
                let session = st.sessions.entry(msg.session_id).or_default();
                if !session.messages.contains(&msg.message_id) {
                    session.messages.push(msg.message_id);
                }
                n
            }
        };
        Ok(match st.take_tombstone(msg, now) {
            Some(canceller) => Restored::CancelledMeanwhile { canceller },
            None => Restored::Restored { appended },
        })
    }

    async fn charge(&self, user: &str, tokens: u64, budget: Budget) -> Result<Spent, StoreError> {
        // As charge.lua: a fixed window from the first charge.
        let now = Instant::now();
        let mut st = self.inner.lock();
        if st.budgets.get(user).is_some_and(|(_, until)| *until <= now) {
            st.budgets.remove(user);
        }
        let used = match st.budgets.get_mut(user) {
            Some((used, _)) => {
                *used += tokens;
                *used
            }
            None if tokens > 0 => {
                st.budgets
                    .insert(user.to_string(), (tokens, now + budget.window));
                tokens
            }
            None => 0,
        };
        if used >= budget.limit {
            let until = st.budgets.get(user).map_or(now, |(_, until)| *until);
            return Ok(Spent::Exhausted {
                retry_after: until.saturating_duration_since(now),
            });
        }
        Ok(Spent::Within { used })
    }

    async fn track(&self, entry: &RunningEntry) -> Result<(), StoreError> {
        let mut st = self.inner.lock();
        st.running.insert(entry.message(), entry.clone());
        Ok(())
    }

    async fn untrack(&self, msg: &MessageRef) -> Result<(), StoreError> {
        self.inner.lock().running.remove(msg);
        Ok(())
    }

    async fn running_index(&self) -> Result<Vec<RunningEntry>, StoreError> {
        Ok(self.inner.lock().running.values().cloned().collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
