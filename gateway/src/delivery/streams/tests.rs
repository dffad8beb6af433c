//! The exactly-once cursor, on the in-memory store: live entries are fed by hand (as the hub
//! would), the log is the store's, and what the client gets is read off its sink.

use std::sync::Arc;
use std::time::Duration;

use shared_proto::{FinalStatus, ServerFrame, StreamChunk};
use store::{MemoryStore, MemoryStoreConfig, MessageRef, Outcome, Store};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Follow, Streams};
use crate::sink::{Frame, PeerGone, Sink, SinkLimits, Transport};
use crate::tasks::Tasks;

/// A client that reads everything at once.
struct Client(mpsc::UnboundedSender<Frame>);

impl Transport for Client {
    async fn reserve_close(&mut self) -> bool {
        true
    }
    async fn send(&mut self, frame: Frame) -> Result<(), PeerGone> {
        self.0.send(frame).map_err(|_| PeerGone)
    }
    fn close_reserved(&mut self, code: shared_proto::CloseCode) {
        let _ = self.0.send(Frame::Close(code));
    }
}

struct Fixture {
    store: MemoryStore,
    streams: Arc<Streams>,
    msg: MessageRef,
    frames: mpsc::UnboundedReceiver<Frame>,
}

impl Fixture {
    async fn new() -> Fixture {
        let store = MemoryStore::new(MemoryStoreConfig::default()).unwrap();
        let (tx, frames) = mpsc::unbounded_channel();
        let limits = SinkLimits {
            max_queue_bytes: 1 << 20,
            send_timeout: Duration::from_secs(10),
            merge_chunks: false,
        };
        let msg = MessageRef::new(Uuid::new_v4(), Uuid::new_v4());
        let (sink, writer) = Sink::with_transport(Client(tx), limits, msg.session_id);
        tokio::spawn(writer);
        let streams = Streams::new(
            msg.session_id,
            sink,
            Arc::new(store.clone()),
            Tasks::default(),
            super::Patience {
                unreadable: Duration::from_secs(30),
                restore: Duration::from_secs(4),
            },
            Arc::default(),
        );
        store.create(&msg, "owner", "hi").await.unwrap();
        Fixture {
            store,
            streams,
            msg,
            frames,
        }
    }

    /// Appends delta `seq` to the log and returns it (not delivered: that is the test's call).
    async fn append(&self, seq: u64) -> StreamChunk {
        let c = StreamChunk::delta(
            self.msg.session_id,
            self.msg.message_id,
            seq,
            format!("t{seq} "),
            0,
        );
        self.store.append(&self.msg, &c).await.unwrap();
        c
    }

    /// Ends the message and returns its terminal entry.
    async fn finish(&self) -> StreamChunk {
        self.store
            .finish(
                &self.msg,
                &Outcome {
                    status: FinalStatus::Completed,
                    error: None,
                    usage: None,
                },
            )
            .await
            .unwrap();
        let read = self.store.read(&self.msg, 0).await.unwrap().unwrap();
        read.terminal().unwrap().clone()
    }

    /// The next frame the client gets.
    async fn next(&mut self) -> ServerFrame {
        let frame = tokio::time::timeout(Duration::from_secs(10), self.frames.recv())
            .await
            .expect("a frame in time")
            .expect("sink open");
        match frame {
            Frame::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("not a text frame: {other:?}"),
        }
    }

    /// Frames the client got so far, once everything pending was delivered (the sink's queue is
    /// flushed by a heartbeat_ack marker).
    async fn drain(&mut self) -> Vec<ServerFrame> {
        self.streams.sink.send(&ServerFrame::HeartbeatAck {});
        let mut out = Vec::new();
        loop {
            match self.next().await {
                ServerFrame::HeartbeatAck {} => return out,
                f => out.push(f),
            }
        }
    }

    /// The seqs of the chunks (and `done` as `u64::MAX`) the client got until the message's end.
    async fn until_done(&mut self) -> Vec<u64> {
        let mut seqs = Vec::new();
        loop {
            match self.next().await {
                ServerFrame::Chunk { seq, .. } => seqs.push(seq),
                ServerFrame::Done { .. } => {
                    seqs.push(u64::MAX);
                    return seqs;
                }
                f => panic!("unexpected {f:?}"),
            }
        }
    }
}

fn seq_of(f: &ServerFrame) -> u64 {
    match f {
        ServerFrame::Chunk { seq, .. } => *seq,
        ServerFrame::Done { .. } => u64::MAX,
        f => panic!("unexpected {f:?}"),
    }
}

#[tokio::test]
async fn a_repeat_is_dropped() {
    let mut f = Fixture::new().await;
    assert_eq!(f.streams.follow_held(f.msg.message_id), Follow::Started);
    f.streams.release(f.msg.message_id, false);
    let c1 = f.append(1).await;
    f.streams.on_live(c1.clone());
    f.streams.on_live(c1.clone());
    let c2 = f.append(2).await;
    f.streams.on_live(c2);
    f.streams.on_live(c1);
    let got: Vec<u64> = f.drain().await.iter().map(seq_of).collect();
    assert_eq!(got, vec![1, 2]);
}

#[tokio::test]
async fn live_entries_wait_for_the_release_then_come_in_order() {
    let mut f = Fixture::new().await;
    f.streams.follow_held(f.msg.message_id);
    let c1 = f.append(1).await;
    f.streams.on_live(c1);
    assert!(f.drain().await.is_empty(), "held until the ack is sent");
    f.streams.release(f.msg.message_id, false);
    let c2 = f.append(2).await;
    f.streams.on_live(c2);
    let end = f.finish().await;
    f.streams.on_live(end);
    assert_eq!(f.until_done().await, vec![1, 2, u64::MAX]);
}

#[tokio::test]
async fn a_gap_is_backfilled_from_the_log() {
    let mut f = Fixture::new().await;
    f.streams.follow_held(f.msg.message_id);
    f.streams.release(f.msg.message_id, false);
    f.append(1).await;
    f.append(2).await;
    // Only seq 3 arrives live: 1 and 2 were lost on the way.
    let c3 = f.append(3).await;
    f.streams.on_live(c3);
    let c4 = f.append(4).await;
    f.streams.on_live(c4);
    let end = f.finish().await;
    f.streams.on_live(end);
    assert_eq!(f.until_done().await, vec![1, 2, 3, 4, u64::MAX]);
    assert!(f.streams.is_empty(), "forgotten after its done");
}

#[tokio::test]
async fn a_resync_after_a_reconnect_delivers_what_was_missed() {
    let mut f = Fixture::new().await;
    f.streams.follow_held(f.msg.message_id);
    f.streams.release(f.msg.message_id, false);
    let c1 = f.append(1).await;
    f.streams.on_live(c1);
    assert_eq!(f.next().await, {
        let read = f.store.read(&f.msg, 0).await.unwrap().unwrap();
        read.entries[0].clone().into_frame()
    });
    // The feed's connection dropped: 2 and 3 were published to nobody.
    f.append(2).await;
    f.append(3).await;
    f.streams.resync();
    let end = f.finish().await;
    f.streams.on_live(end);
    assert_eq!(f.until_done().await, vec![2, 3, u64::MAX]);
}

#[tokio::test]
async fn the_end_is_delivered_once_whichever_way_it_comes() {
    let mut f = Fixture::new().await;
    f.streams.resume(f.msg.message_id, 0);
    f.append(1).await;
    let end = f.finish().await;
    // The end arrives live and is in the log the resume's backfill reads.
    f.streams.on_live(end.clone());
    f.streams.on_live(end);
    f.streams.resync();
    assert_eq!(f.until_done().await, vec![1, u64::MAX]);
    assert!(f.streams.is_empty());
    // Nothing after the end: a late repeat finds no cursor.
    f.streams
        .on_live(f.store.read(&f.msg, 0).await.unwrap().unwrap().entries[0].clone());
    assert!(f.drain().await.is_empty());
}
