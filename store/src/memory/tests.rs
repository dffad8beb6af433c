//! The transitions of the in-memory store (the same contract as the Lua scripts).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared_proto::{CancelStatus, ChunkKind, FinalStatus, MessageState, Role, StreamChunk};
use uuid::Uuid;

use super::{MemoryStore, MemoryStoreConfig};
use crate::{
    Appended, Cancelled, Created, Feed, FeedEvent, FeedHandler, Finished, Lease, MessageRef,
    Outcome, Store,
};

fn cfg() -> MemoryStoreConfig {
    MemoryStoreConfig {
        stream_ttl: Duration::from_secs(60),
        cancel_grace: Duration::from_secs(5),
        lease_ttl: Duration::from_secs(4),
        history_turns: 2,
        session_ttl: Duration::from_secs(120),
        sweep_interval: Duration::from_secs(3600),
    }
}

fn store() -> MemoryStore {
    MemoryStore::new(cfg()).unwrap()
}

fn msg() -> MessageRef {
    MessageRef::new(Uuid::new_v4(), Uuid::new_v4())
}

fn delta(m: &MessageRef, seq: u64, text: &str) -> StreamChunk {
    StreamChunk::delta(m.session_id, m.message_id, seq, text.into(), 0)
}

fn outcome(status: FinalStatus) -> Outcome {
    Outcome {
        status,
        error: None,
        usage: None,
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<FeedEvent>>);

impl FeedHandler for Recorder {
    fn on_event(&self, event: FeedEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    /// The log entries published (a message's start announcement is not one).
    fn chunks(&self) -> Vec<(u64, ChunkKind)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                FeedEvent::Chunk(c) if c.kind != ChunkKind::Start => Some((c.seq, c.kind)),
                _ => None,
            })
            .collect()
    }

    /// The start announcements published: (message id, content).
    fn starts(&self) -> Vec<(Uuid, String)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                FeedEvent::Chunk(c) if c.kind == ChunkKind::Start => {
                    Some((c.message_id, c.text.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn nudges(&self) -> Vec<MessageRef> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                FeedEvent::Nudge(m) => Some(*m),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test]
async fn create_is_idempotent_and_the_first_append_starts_streaming() {
    let s = store();
    let m = msg();
    let c = s.create(&m, "a", "hi").await.unwrap();
    assert_eq!(c, Created::New);
    assert_eq!(c.state(), MessageState::Queued);
    let again = s.create(&m, "b", "other").await.unwrap();
    assert_eq!(again, Created::Exists(MessageState::Queued));
    assert_eq!(
        s.append(&m, &delta(&m, 1, "x")).await.unwrap(),
        Appended::Written
    );
    let read = s.read(&m, 0).await.unwrap().unwrap();
    assert_eq!(
        (read.state, read.last_seq, read.owner.as_str()),
        (MessageState::Streaming, 1, "a")
    );
    assert!(read.lease_alive);
    let again = s.create(&m, "b", "other").await.unwrap();
    assert_eq!(again, Created::Exists(MessageState::Streaming));
}

#[tokio::test]
async fn append_needs_the_next_seq_and_a_known_message() {
    let s = store();
    let m = msg();
    assert_eq!(
        s.append(&m, &delta(&m, 1, "x")).await.unwrap(),
        Appended::Missing
    );
    s.create(&m, "a", "hi").await.unwrap();
    assert_eq!(
        s.append(&m, &delta(&m, 2, "x")).await.unwrap(),
        Appended::OutOfOrder { last_seq: 0 }
    );
    s.append(&m, &delta(&m, 1, "a")).await.unwrap();
    s.append(&m, &delta(&m, 2, "b")).await.unwrap();
    assert_eq!(
        s.append(&m, &delta(&m, 2, "b")).await.unwrap(),
        Appended::OutOfOrder { last_seq: 2 }
    );
    let read = s.read(&m, 1).await.unwrap().unwrap();
    assert_eq!(read.entries.len(), 1, "read from a position");
    assert_eq!(read.entries[0].text, "b");
    assert!(s.read(&m, 99).await.unwrap().unwrap().entries.is_empty());
    let state_only = s.read(&m, u64::MAX).await.unwrap().unwrap();
    assert!(state_only.entries.is_empty());
    assert_eq!(state_only.last_seq, 2);
}

#[tokio::test]
async fn a_cancel_before_the_first_token_wins_and_terminal_never_changes() {
    let s = store();
    let m = msg();
    s.create(&m, "owner-1", "hi").await.unwrap();
    let c = s.cancel(&m, "canceller").await.unwrap();
    assert_eq!(c.status(), CancelStatus::Cancelling);
    assert_eq!(
        c,
        Cancelled::Ended {
            owner: Some("owner-1".into())
        }
    );
    // The producer's first token comes too late.
    assert_eq!(
        s.append(&m, &delta(&m, 1, "x")).await.unwrap(),
        Appended::Stopped(MessageState::Cancelled)
    );
    assert_eq!(
        s.finish(&m, &outcome(FinalStatus::Completed))
            .await
            .unwrap(),
        Finished::AlreadyTerminal(MessageState::Cancelled)
    );
    assert_eq!(
        s.reap(&m).await.unwrap(),
        Finished::AlreadyTerminal(MessageState::Cancelled)
    );
    assert_eq!(
        s.cancel(&m, "").await.unwrap().status(),
        CancelStatus::AlreadyCancelled
    );
    let read = s.read(&m, 0).await.unwrap().unwrap();
    assert_eq!((read.state, read.last_seq), (MessageState::Cancelled, 0));
    assert_eq!(read.entries.len(), 1);
    let end = read.terminal().unwrap();
    assert_eq!((end.seq, end.status), (0, Some(FinalStatus::Cancelled)));
    assert!(!read.lease_alive, "the lease ends with the message");
    assert_eq!(
        s.renew_lease(&m, "owner-1").await.unwrap(),
        Lease::Ended(MessageState::Cancelled)
    );
}

/// A cancel that overtakes its message's create (another replica got it first) is remembered:
/// the create of that id ends at once as `cancelled`, with its terminal entry written and
/// published, and tells who cancelled it. Only the first cancel writes the tombstone.
#[tokio::test(start_paused = true)]
async fn a_cancel_before_the_create_wins_through_its_tombstone() {
    let s = store();
    let rec = Arc::new(Recorder::default());
    let feed = s.feed(rec.clone());
    let m = msg();
    feed.subscribe_session(m.session_id).await.unwrap();
    assert_eq!(
        s.cancel(&m, "replica-b").await.unwrap(),
        Cancelled::Remembered { first: true }
    );
    assert_eq!(
        s.cancel(&m, "replica-c").await.unwrap(),
        Cancelled::Remembered { first: false },
        "a repeat does not overwrite the first canceller"
    );
    assert_eq!(
        s.cancel(&m, "").await.unwrap().status(),
        CancelStatus::NotFound,
        "nothing exists yet"
    );
    assert_eq!(
        s.create(&m, "replica-a", "hi").await.unwrap(),
        Created::CancelledFirst {
            canceller: "replica-b".into()
        }
    );
    let read = s.read(&m, 0).await.unwrap().unwrap();
    assert_eq!((read.state, read.last_seq), (MessageState::Cancelled, 0));
    assert_eq!(read.entries.len(), 1);
    assert!(!read.lease_alive);
    assert_eq!(
        rec.chunks(),
        vec![(0, ChunkKind::Done)],
        "the end was published"
    );
    assert_eq!(
        rec.starts(),
        vec![(m.message_id, "hi".to_string())],
        "and, before it, the message's start"
    );
    // The tombstone is consumed: the message behaves like any cancelled one.
    assert_eq!(
        s.create(&m, "replica-a", "hi").await.unwrap(),
        Created::Exists(MessageState::Cancelled)
    );
    assert_eq!(
        s.cancel(&m, "").await.unwrap().status(),
        CancelStatus::AlreadyCancelled
    );
    assert_eq!(
        s.append(&m, &delta(&m, 1, "x")).await.unwrap(),
        Appended::Stopped(MessageState::Cancelled)
    );
    assert!(s.active(m.session_id).await.unwrap().is_empty());
    let history = s.history(m.session_id).await.unwrap();
    assert_eq!(history.len(), 1, "the user turn only: {history:?}");
    assert_eq!(history[0].role, Role::User);
    // A tombstone lives CANCEL_GRACE: a create after that is not affected.
    let late = msg();
    s.cancel(&late, "replica-b").await.unwrap();
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(
        s.create(&late, "replica-a", "hi").await.unwrap(),
        Created::New
    );
    // And the sweep drops tombstones nobody consumed.
    s.cancel(&msg(), "replica-b").await.unwrap();
    tokio::time::advance(Duration::from_secs(6)).await;
    s.sweep();
    assert!(s.inner.lock().tombstones.is_empty());
}

#[tokio::test]
async fn finish_writes_the_terminal_entry_with_the_current_seq() {
    let s = store();
    let m = msg();
    s.create(&m, "a", "q").await.unwrap();
    s.append(&m, &delta(&m, 1, "x ")).await.unwrap();
    s.append(&m, &delta(&m, 2, "y")).await.unwrap();
    assert_eq!(
        s.finish(&m, &outcome(FinalStatus::Completed))
            .await
            .unwrap(),
        Finished::Done { seq: 2 }
    );
    let read = s.read(&m, 0).await.unwrap().unwrap();
    assert_eq!(read.text(), "x y");
    let end = read.terminal().unwrap();
    assert_eq!(end.log_index(), 2);
    assert_eq!(
        s.cancel(&m, "").await.unwrap().status(),
        CancelStatus::AlreadyCompleted
    );
    assert_eq!(
        s.finish(&m, &outcome(FinalStatus::Failed)).await.unwrap(),
        Finished::AlreadyTerminal(MessageState::Completed)
    );
    assert_eq!(
        s.cancel(&msg(), "").await.unwrap().status(),
        CancelStatus::NotFound,
        "unknown id"
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_grace_period_cancel_is_not_found_and_after_the_ttl_everything_is_gone() {
    let s = store();
    let m = msg();
    s.create(&m, "a", "q").await.unwrap();
    s.append(&m, &delta(&m, 1, "x")).await.unwrap();
    s.finish(&m, &outcome(FinalStatus::Completed))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(
        s.cancel(&m, "").await.unwrap().status(),
        CancelStatus::AlreadyCompleted
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        s.cancel(&m, "").await.unwrap().status(),
        CancelStatus::NotFound
    );
    // Still readable: the resume window is longer than the grace.
    assert!(s.read(&m, 0).await.unwrap().is_some());
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(s.read(&m, 0).await.unwrap().is_none());
    assert_eq!(
        s.cancel(&m, "").await.unwrap(),
        Cancelled::Remembered { first: true }
    );
    // That cancel's tombstone lives CANCEL_GRACE; expired, creating the id again starts afresh
    // (as with Redis).
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(s.create(&m, "b", "q").await.unwrap(), Created::New);
}

#[tokio::test(start_paused = true)]
async fn the_ttl_counts_from_the_last_write_and_the_sweep_frees_memory() {
    let s = store();
    let m = msg();
    s.create(&m, "a", "q").await.unwrap();
    for seq in 1..=5 {
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(
            s.append(&m, &delta(&m, seq, "x")).await.unwrap(),
            Appended::Written,
            "seq {seq}"
        );
    }
    let other = msg();
    s.create(&other, "a", "q").await.unwrap();
    s.finish(&other, &outcome(FinalStatus::Completed))
        .await
        .unwrap();
    assert_eq!(s.size(), (2, 2));
    tokio::time::advance(Duration::from_secs(61)).await;
    s.sweep();
    // Both messages expired; the second session keeps its history (session_ttl is longer): the
    // user turn only, as the answer had no text.
    assert_eq!(s.size(), (0, 1));
    assert_eq!(s.history(other.session_id).await.unwrap().len(), 1);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(s.history(other.session_id).await.unwrap().is_empty());
    s.sweep();
    assert_eq!(s.size(), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn reap_only_after_the_lease_expired() {
    let s = store();
    let m = msg();
    s.create(&m, "owner", "q").await.unwrap();
    s.append(&m, &delta(&m, 1, "x")).await.unwrap();
    assert_eq!(s.reap(&m).await.unwrap(), Finished::OwnerAlive);
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(s.renew_lease(&m, "owner").await.unwrap(), Lease::Renewed);
    assert_eq!(s.renew_lease(&m, "intruder").await.unwrap(), Lease::Lost);
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(s.reap(&m).await.unwrap(), Finished::OwnerAlive, "renewed");
    assert!(s.read(&m, 0).await.unwrap().unwrap().lease_alive);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!s.read(&m, 0).await.unwrap().unwrap().lease_alive);
    // The first sight of an expired lease is only a suspicion (the store may have been away);
    // the owner renewing clears it.
    assert_eq!(s.reap(&m).await.unwrap(), Finished::OwnerSuspected);
    assert_eq!(s.renew_lease(&m, "owner").await.unwrap(), Lease::Renewed);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        s.reap(&m).await.unwrap(),
        Finished::OwnerSuspected,
        "suspected anew"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        s.reap(&m).await.unwrap(),
        Finished::OwnerSuspected,
        "silent for less than half a lease"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(s.reap(&m).await.unwrap(), Finished::Done { seq: 1 });
    let read = s.read(&m, 0).await.unwrap().unwrap();
    assert_eq!(read.state, MessageState::Failed);
    let end = read.terminal().unwrap();
    assert_eq!(
        end.error.as_ref().map(|e| e.code),
        Some(shared_proto::ErrorCode::WorkerLost)
    );
    assert_eq!(
        s.append(&m, &delta(&m, 2, "late")).await.unwrap(),
        Appended::Stopped(MessageState::Failed)
    );
    assert_eq!(s.reap(&msg()).await.unwrap(), Finished::Missing);

    // A renewed message never expires mid-stream, even with no chunk for longer than the TTL.
    let quiet = msg();
    s.create(&quiet, "owner", "q").await.unwrap();
    for _ in 0..30 {
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(
            s.renew_lease(&quiet, "owner").await.unwrap(),
            Lease::Renewed
        );
    }
    assert!(s.read(&quiet, 0).await.unwrap().is_some());
    assert_eq!(
        s.renew_lease(&msg(), "owner").await.unwrap(),
        Lease::Missing
    );
}

#[tokio::test]
async fn history_keeps_the_last_pairs_with_their_status() {
    let s = store();
    let sid = Uuid::new_v4();
    for (i, status) in [
        FinalStatus::Completed,
        FinalStatus::Cancelled,
        FinalStatus::Failed,
    ]
    .into_iter()
    .enumerate()
    {
        let m = MessageRef::new(sid, Uuid::new_v4());
        s.create(&m, "a", &format!("q{i}")).await.unwrap();
        s.append(&m, &delta(&m, 1, &format!("a{i}"))).await.unwrap();
        s.finish(&m, &outcome(status)).await.unwrap();
    }
    let h = s.history(sid).await.unwrap();
    let flat: Vec<(Role, &str)> = h.iter().map(|t| (t.role, t.content.as_str())).collect();
    assert_eq!(
        flat,
        vec![
            (Role::User, "q1"),
            (Role::Assistant, "a1"),
            (Role::User, "q2"),
            (Role::Assistant, "a2"),
        ],
        "capped at history_turns pairs, oldest dropped"
    );
    assert!(s.history(Uuid::new_v4()).await.unwrap().is_empty());
}

#[tokio::test]
async fn active_lists_unfinished_messages_in_creation_order() {
    let s = store();
    let sid = Uuid::new_v4();
    let ms: Vec<MessageRef> = (0..3)
        .map(|_| MessageRef::new(sid, Uuid::new_v4()))
        .collect();
    for m in &ms {
        s.create(m, "a", "q").await.unwrap();
    }
    s.append(&ms[2], &delta(&ms[2], 1, "x")).await.unwrap();
    s.cancel(&ms[1], "").await.unwrap();
    let active = s.active(sid).await.unwrap();
    let got: Vec<(Uuid, u64)> = active.iter().map(|a| (a.message_id, a.last_seq)).collect();
    assert_eq!(got, vec![(ms[0].message_id, 0), (ms[2].message_id, 1)]);
}

#[tokio::test]
async fn live_entries_reach_only_the_feeds_subscribed_to_the_session() {
    let s = store();
    let m = msg();
    let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let fa = s.feed(a.clone());
    let fb = s.feed(b.clone());
    fa.subscribe_session(m.session_id).await.unwrap();
    fb.subscribe_session(Uuid::new_v4()).await.unwrap();
    s.create(&m, "ai", "q").await.unwrap();
    s.append(&m, &delta(&m, 1, "x")).await.unwrap();
    s.append(&m, &delta(&m, 2, "y")).await.unwrap();
    s.cancel(&m, "").await.unwrap();
    assert_eq!(
        a.chunks(),
        vec![
            (1, ChunkKind::Delta),
            (2, ChunkKind::Delta),
            (2, ChunkKind::Done)
        ]
    );
    assert!(b.chunks().is_empty());
    // Every delivered entry was already in the log.
    assert_eq!(s.read(&m, 0).await.unwrap().unwrap().entries.len(), 3);

    fa.unsubscribe_session(m.session_id).await.unwrap();
    let m2 = MessageRef::new(m.session_id, Uuid::new_v4());
    s.create(&m2, "ai", "q").await.unwrap();
    s.append(&m2, &delta(&m2, 1, "z")).await.unwrap();
    assert_eq!(a.chunks().len(), 3, "nothing after unsubscribing");

    // Nudges go to the feed subscribed to the replica.
    fb.subscribe_nudges("ai").await.unwrap();
    s.nudge("ai", &m2).await.unwrap();
    s.nudge("someone-else", &m2).await.unwrap();
    assert_eq!(b.nudges(), vec![m2]);
    assert!(a.nudges().is_empty());

    // A closed feed receives nothing more.
    fb.close().await;
    assert!(!fb.is_connected());
    s.nudge("ai", &m2).await.unwrap();
    assert_eq!(b.nudges().len(), 1);
}

/// A handler that calls back into the store while it is being called (e.g. a feed consumer
/// that subscribes another session): no deadlock, and order is kept.
struct Reentrant {
    store: MemoryStore,
    seen: Mutex<Vec<u64>>,
}

impl FeedHandler for Reentrant {
    fn on_event(&self, event: FeedEvent) {
        if let FeedEvent::Chunk(c) = event {
            if c.kind == ChunkKind::Start {
                return;
            }
            self.seen.lock().unwrap().push(c.seq);
            if c.seq == 1 {
                // Re-enter: a write that publishes to this very handler.
                let m = MessageRef::new(c.session_id, c.message_id);
                let next = delta(&m, 2, "nested");
                let store = self.store.clone();
                let out =
                    futures_util::FutureExt::now_or_never(
                        async move { store.append(&m, &next).await },
                    );
                assert!(matches!(out, Some(Ok(Appended::Written))));
            }
        }
    }
}

#[tokio::test]
async fn a_handler_may_call_back_into_the_store() {
    let s = store();
    let m = msg();
    let h = Arc::new(Reentrant {
        store: s.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let feed = s.feed(h.clone());
    feed.subscribe_session(m.session_id).await.unwrap();
    s.create(&m, "ai", "q").await.unwrap();
    s.append(&m, &delta(&m, 1, "x")).await.unwrap();
    assert_eq!(*h.seen.lock().unwrap(), vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_delivered_in_write_order_per_session() {
    let s = store();
    let sid = Uuid::new_v4();
    let rec = Arc::new(Recorder::default());
    let feed = s.feed(rec.clone());
    feed.subscribe_session(sid).await.unwrap();
    let ms: Vec<MessageRef> = (0..4)
        .map(|_| MessageRef::new(sid, Uuid::new_v4()))
        .collect();
    let mut tasks = Vec::new();
    for m in ms.clone() {
        let s = s.clone();
        s.create(&m, "ai", "q").await.unwrap();
        tasks.push(tokio::spawn(async move {
            for seq in 1..=500 {
                s.append(&m, &delta(&m, seq, "x")).await.unwrap();
            }
            s.finish(&m, &outcome(FinalStatus::Completed))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = rec.0.lock().unwrap();
    for m in &ms {
        let seqs: Vec<(u64, ChunkKind)> = events
            .iter()
            .filter_map(|e| match e {
                FeedEvent::Chunk(c)
                    if c.message_id == m.message_id && c.kind != ChunkKind::Start =>
                {
                    Some((c.seq, c.kind))
                }
                _ => None,
            })
            .collect();
        let mut expected: Vec<(u64, ChunkKind)> =
            (1..=500).map(|s| (s, ChunkKind::Delta)).collect();
        expected.push((500, ChunkKind::Done));
        assert_eq!(seqs, expected);
    }
}

#[tokio::test]
async fn the_running_index_lists_running_generations_and_drops_stale_entries() {
    use crate::running::{running, RunningEntry};
    let s = store();
    let entry = |m: &MessageRef, user: Option<&str>, at: u64| RunningEntry {
        session_id: m.session_id,
        message_id: m.message_id,
        user: user.map(str::to_string),
        owner: "a".into(),
        started_at_ms: at,
    };
    let (live, done, gone) = (msg(), msg(), msg());
    for m in [&live, &done] {
        assert_eq!(s.create(m, "a", "hi").await.unwrap(), Created::New);
    }
    s.track(&entry(&live, Some("alice"), 2)).await.unwrap();
    s.track(&entry(&done, None, 1)).await.unwrap();
    // Never created (or expired): a stale entry, like one of a crashed replica.
    s.track(&entry(&gone, None, 0)).await.unwrap();
    let chunk = delta(&live, 1, "ab").with_tokens(2, None);
    s.append(&live, &chunk).await.unwrap();
    s.append(&live, &delta(&live, 2, "c").with_tokens(3, None))
        .await
        .unwrap();
    s.finish(&done, &outcome(FinalStatus::Completed))
        .await
        .unwrap();
    assert_eq!(s.running_index().await.unwrap().len(), 3);

    let listed = running(&s).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].entry, entry(&live, Some("alice"), 2));
    assert_eq!(listed[0].state, MessageState::Streaming);
    assert_eq!(listed[0].completion_tokens, 3);
    // The listing untracked the terminal and the missing one.
    assert_eq!(
        s.running_index().await.unwrap(),
        vec![listed[0].entry.clone()]
    );

    // Tracking again is idempotent; untrack removes it, twice is harmless.
    s.track(&entry(&live, Some("alice"), 2)).await.unwrap();
    assert_eq!(s.running_index().await.unwrap().len(), 1);
    s.untrack(&live).await.unwrap();
    s.untrack(&live).await.unwrap();
    assert!(s.running_index().await.unwrap().is_empty());
}
