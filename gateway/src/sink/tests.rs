//! The writer's bounds, through a transport the test controls: a peer that reads a given
//! number of frames (semaphore permits) and then stops, or one that is gone.

use std::sync::Arc;
use std::time::Duration;

use shared_proto::{CloseCode, DeltaKind, ServerFrame};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::LocalSet;
use uuid::Uuid;

use super::{Frame, PeerGone, Sink, SinkLimits, Transport};

/// A peer that takes `accept` frames (more can be granted), then stops reading.
struct TestPeer {
    out: mpsc::UnboundedSender<Frame>,
    accept: Arc<Semaphore>,
    gone: bool,
}

impl Transport for TestPeer {
    async fn reserve_close(&mut self) -> bool {
        true
    }

    async fn send(&mut self, frame: Frame) -> Result<(), PeerGone> {
        if self.gone {
            return Err(PeerGone);
        }
        self.accept.acquire().await.map_err(|_| PeerGone)?.forget();
        self.out.send(frame).map_err(|_| PeerGone)
    }

    fn close_reserved(&mut self, code: CloseCode) {
        let _ = self.out.send(Frame::Close(code));
    }
}

const LIMITS: SinkLimits = SinkLimits {
    max_queue_bytes: 1000,
    send_timeout: Duration::from_secs(10),
    merge_chunks: false,
};

struct Harness {
    sink: Sink,
    received: mpsc::UnboundedReceiver<Frame>,
    accept: Arc<Semaphore>,
}

/// Starts a sink whose peer reads `accept` frames, its writer on the local set.
fn start(accept: usize, gone: bool) -> Harness {
    start_with(accept, gone, LIMITS)
}

fn start_with(accept: usize, gone: bool, limits: SinkLimits) -> Harness {
    let (out, received) = mpsc::unbounded_channel();
    let accept = Arc::new(Semaphore::new(accept));
    let peer = TestPeer {
        out,
        accept: accept.clone(),
        gone,
    };
    let (sink, writer) = Sink::with_transport(peer, limits, Uuid::nil());
    tokio::task::spawn_local(writer);
    Harness {
        sink,
        received,
        accept,
    }
}

fn text(n: usize) -> ServerFrame {
    ServerFrame::error(shared_proto::ErrorCode::Internal, "x".repeat(n), None)
}

/// Everything the peer got, once the writer has finished.
async fn all(h: &mut Harness) -> Vec<Frame> {
    h.sink.finished().await;
    let mut frames = Vec::new();
    while let Ok(f) = h.received.try_recv() {
        frames.push(f);
    }
    frames
}

fn is_text(f: &Frame) -> bool {
    matches!(f, Frame::Text(_))
}

#[tokio::test]
async fn frames_go_out_in_order_pings_included_and_the_close_after_them() {
    LocalSet::new()
        .run_until(async {
            let mut h = start(100, false);
            assert!(h.sink.send(&text(1)));
            assert!(h.sink.ping(b"p"));
            assert!(h.sink.send(&ServerFrame::HeartbeatAck {}));
            assert!(h.sink.pong(b"q"));
            h.sink.close(CloseCode::GoingAway);
            assert!(!h.sink.send(&text(1)), "nothing is queued after a close");
            let frames = all(&mut h).await;
            assert_eq!(frames.len(), 5, "{frames:?}");
            assert!(is_text(&frames[0]));
            assert_eq!(frames[1], Frame::Ping(bytes::Bytes::from_static(b"p")));
            assert_eq!(
                frames[2],
                Frame::Text(ServerFrame::HeartbeatAck {}.to_json())
            );
            assert_eq!(frames[3], Frame::Pong(bytes::Bytes::from_static(b"q")));
            assert_eq!(frames[4], Frame::Close(CloseCode::GoingAway));
            assert_eq!(h.sink.queued_bytes(), 0);
        })
        .await
}

#[tokio::test]
async fn a_queue_over_its_byte_bound_closes_with_4008_and_drops_what_was_queued() {
    LocalSet::new()
        .run_until(async {
            let mut h = start(0, false);
            let mut queued = 0;
            while h.sink.send(&text(100)) {
                queued += 1;
                assert!(queued < 100, "the bound never applied");
            }
            // Frames count until written, the one in the blocked write too.
            let each = text(100).to_json().len();
            assert_eq!(
                queued,
                LIMITS.max_queue_bytes / each,
                "frames of {each} bytes"
            );
            let frames = all(&mut h).await;
            assert_eq!(frames, vec![Frame::Close(CloseCode::SlowConsumer)]);
            assert!(!h.sink.send(&text(1)), "closed for good");
        })
        .await
}

#[tokio::test(start_paused = true)]
async fn a_write_blocked_longer_than_send_timeout_closes_with_4008() {
    LocalSet::new()
        .run_until(async {
            let mut h = start(0, false);
            let started = tokio::time::Instant::now();
            assert!(h.sink.send(&text(10)));
            let frames = all(&mut h).await;
            assert_eq!(frames, vec![Frame::Close(CloseCode::SlowConsumer)]);
            assert!(
                started.elapsed() >= LIMITS.send_timeout,
                "closed before the deadline"
            );
        })
        .await
}

/// The peer took one frame and stopped reading, then the gateway closes: the close frame's own
/// write blocks too, and it goes out through the room reserved for it at the start.
#[tokio::test(start_paused = true)]
async fn the_close_frame_gets_out_through_its_reserved_room() {
    LocalSet::new()
        .run_until(async {
            let mut h = start(1, false);
            assert!(h.sink.send(&text(10)));
            h.sink.close(CloseCode::GoingAway);
            let frames = all(&mut h).await;
            assert_eq!(frames.len(), 2, "{frames:?}");
            assert!(is_text(&frames[0]));
            assert_eq!(frames[1], Frame::Close(CloseCode::GoingAway));
        })
        .await
}

#[tokio::test]
async fn a_peer_that_is_gone_ends_the_writer_without_a_close() {
    LocalSet::new()
        .run_until(async {
            let mut h = start(100, true);
            assert!(h.sink.send(&text(10)));
            assert!(all(&mut h).await.is_empty());
            assert!(h.sink.is_finished());
            assert!(!h.sink.send(&text(10)));
        })
        .await
}

#[tokio::test]
async fn wait_below_resolves_as_the_client_reads() {
    LocalSet::new()
        .run_until(async {
            let h = start(0, false);
            for _ in 0..3 {
                assert!(h.sink.send(&text(100)));
            }
            let one = h.sink.queued_bytes() / 3;
            let sink = h.sink.clone();
            let waiting = tokio::task::spawn_local(async move { sink.wait_below(one).await });
            tokio::task::yield_now().await;
            assert!(!waiting.is_finished(), "three frames are still queued");
            // The client reads two frames: one is left.
            h.accept.add_permits(2);
            tokio::time::timeout(Duration::from_secs(10), waiting)
                .await
                .expect("woken as the queue drained")
                .unwrap();
            assert!(h.sink.queued_bytes() <= one);
        })
        .await
}

const MERGING: SinkLimits = SinkLimits {
    merge_chunks: true,
    ..LIMITS
};

fn chunk(message_id: Uuid, seq: u64, delta: &str, kind: DeltaKind) -> ServerFrame {
    ServerFrame::Chunk {
        message_id,
        seq,
        first_seq: None,
        delta: delta.into(),
        kind,
        ts: Some(seq * 10),
    }
}

/// The frames the peer got, parsed.
fn parsed(frames: &[Frame]) -> Vec<ServerFrame> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Text(t) => Some(serde_json::from_str(t).expect("a server frame")),
            _ => None,
        })
        .collect()
}

/// A peer that has not read yet: its backlog of one message goes out as one frame covering
/// `first_seq..=seq`, with the first part's `ts`; other messages' chunks interleaved in the
/// queue are passed over (each merges with its own), a frame that is not a chunk (the done)
/// keeps its place, and a kind change starts a new frame.
#[tokio::test]
async fn a_merging_sink_joins_a_backlog_into_frames_per_message_in_order() {
    LocalSet::new()
        .run_until(async {
            let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
            let mut h = start_with(0, false, MERGING);
            // The first write takes chunk a1 and blocks (the peer reads nothing yet).
            assert!(h.sink.send(&chunk(a, 1, "A1", DeltaKind::Text)));
            tokio::task::yield_now().await;
            for seq in 2..=4 {
                assert!(h
                    .sink
                    .send(&chunk(a, seq, &format!(" a{seq}"), DeltaKind::Text)));
                assert!(h.sink.send(&chunk(
                    b,
                    seq - 1,
                    &format!("b{}", seq - 1),
                    DeltaKind::Text
                )));
            }
            assert!(h.sink.send(&chunk(a, 5, " r5", DeltaKind::Reasoning)));
            assert!(h.sink.send(&ServerFrame::HeartbeatAck {}));
            assert!(h.sink.send(&chunk(b, 4, "b4", DeltaKind::Text)));
            h.sink.close(CloseCode::GoingAway);
            h.accept.add_permits(100);
            let got = parsed(&all(&mut h).await);
            let expect = vec![
                chunk(a, 1, "A1", DeltaKind::Text),
                ServerFrame::Chunk {
                    message_id: a,
                    seq: 4,
                    first_seq: Some(2),
                    delta: " a2 a3 a4".into(),
                    kind: DeltaKind::Text,
                    ts: Some(20),
                },
                ServerFrame::Chunk {
                    message_id: b,
                    seq: 3,
                    first_seq: Some(1),
                    delta: "b1b2b3".into(),
                    kind: DeltaKind::Text,
                    ts: Some(10),
                },
                chunk(a, 5, " r5", DeltaKind::Reasoning),
                ServerFrame::HeartbeatAck {},
                chunk(b, 4, "b4", DeltaKind::Text),
            ];
            assert_eq!(got, expect);
            assert_eq!(h.sink.queued_bytes(), 0, "the bound's bytes all came back");
        })
        .await
}

/// Without `caps=merge`, the same backlog goes out one frame per chunk, exactly as sent.
#[tokio::test]
async fn a_sink_without_merging_writes_every_chunk_as_sent() {
    LocalSet::new()
        .run_until(async {
            let a = Uuid::from_u128(1);
            let mut h = start(0, false);
            let sent: Vec<ServerFrame> =
                (1..=5).map(|s| chunk(a, s, "x", DeltaKind::Text)).collect();
            for f in &sent {
                assert!(h.sink.send(f));
            }
            h.sink.close(CloseCode::GoingAway);
            h.accept.add_permits(100);
            assert_eq!(parsed(&all(&mut h).await), sent);
        })
        .await
}

/// A merging sink's bound counts the text it owes (plus one envelope per frame): a backlog far
/// longer in chunks than the bound allows in separate frames fits, and only text beyond the
/// bound closes with 4008.
#[tokio::test]
async fn a_merging_sink_is_bounded_by_the_text_it_holds() {
    LocalSet::new()
        .run_until(async {
            let a = Uuid::from_u128(1);
            let mut h = start_with(0, false, MERGING);
            let one = chunk(a, 1, "y", DeltaKind::Text).to_json().len();
            let mut seq = 0;
            let mut held = 0;
            loop {
                seq += 1;
                if !h.sink.send(&chunk(a, seq, "y", DeltaKind::Text)) {
                    break;
                }
                held += 1;
                assert!(seq < 10_000, "the bound never applied");
            }
            // Separately, at most max / one frames would fit; merged, hundreds of chunks do.
            assert!(
                held > 5 * (LIMITS.max_queue_bytes / one),
                "{held} chunks held, {one} bytes each as frames"
            );
            let frames = all(&mut h).await;
            assert_eq!(frames, vec![Frame::Close(CloseCode::SlowConsumer)]);
        })
        .await
}
