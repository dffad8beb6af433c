//! The only way to write to a client's socket.
//!
//! Each connection has one writer task ([`writer`]) that owns the raw `actix_ws::Session`
//! (through [`transport::WsTransport`]); nothing else in the gateway can reach it. Everyone
//! else (the Redis feed, the frame handlers, the pinger) holds a [`Sink`] and *enqueues*: a push
//! under a mutex that is never held across an await, so enqueueing never waits, whatever the
//! client does. This is what makes interleaved frames (TEXT_PARTIAL_WRITING) impossible and
//! what keeps a slow client from stalling anyone else.
//!
//! **Merging (`caps=merge`).** For a client that opted in, chunks are queued as their parts, and
//! a chunk that follows the last queued chunk of its message (the next `seq`, the same kind,
//! nothing but other messages' chunks and pings between them) is appended to it instead of
//! queued behind it: a client that falls behind gets its backlog as fewer, larger frames
//! (`first_seq..=seq`), and the bound counts the text it is owed, not one envelope per token.
//! Nothing is lost and nothing reordered within a message. Other clients get exactly one frame
//! per chunk.
//!
//! The queue is bounded in bytes (`SEND_QUEUE_BYTES`) and each write in time (`SEND_TIMEOUT`).
//! actix-ws's own channel holds 32 frames and `Session::text().await` waits without limit when
//! the peer stops reading, so both bounds are enforced here. A client over either is closed
//! with 4008 "slow consumer". The close frame always gets out: room for it is reserved when the
//! connection starts and used for nothing else.

mod peer_gone;
mod pulled;
#[cfg(test)]
mod tests;
mod transport;
mod writer;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use shared_proto::{CloseCode, ServerFrame};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::tasks::Tasks;
pub use peer_gone::PeerGone;
pub use pulled::PullSignal;
pub use transport::{Frame, Transport, WsTransport};

/// The series written per frame, resolved once: `metrics::counter!` with a label builds a key
/// and looks it up in the registry on every call, which is per-frame work on the hot path.
struct FrameMetrics {
    /// `streamline_gateway_frames_out_total` by [`ServerFrame::kind_index`].
    frames_out: [metrics::Counter; ServerFrame::KINDS.len()],
    /// `streamline_gateway_delivery_lag_seconds`: producer timestamp → written to the socket.
    delivery_lag: metrics::Histogram,
}

/// Resolved on first use, which is after `server::start` installed the recorder.
fn frame_metrics() -> &'static FrameMetrics {
    static METRICS: OnceLock<FrameMetrics> = OnceLock::new();
    METRICS.get_or_init(|| FrameMetrics {
        frames_out: ServerFrame::KINDS
            .map(|kind| metrics::counter!("streamline_gateway_frames_out_total", "type" => kind)),
        delivery_lag: metrics::histogram!("streamline_gateway_delivery_lag_seconds"),
    })
}

/// Limits of one sink, and how it queues chunks.
#[derive(Debug, Clone, Copy)]
pub struct SinkLimits {
    pub max_queue_bytes: usize,
    pub send_timeout: Duration,
    /// The client sent `caps=merge`: consecutive queued chunks of a message become one frame.
    pub merge_chunks: bool,
}

/// How far back from the queue's end a new chunk looks for its message's last chunk. Bounds
/// the work under the lock; a backlog of many interleaved messages merges less, never wrongly.
const MERGE_SCAN: usize = 32;

/// What a queued chunk costs besides its delta: about its JSON envelope (type, message id,
/// seqs, ts), so that the bound of a merged backlog is about the text it holds.
const CHUNK_ENVELOPE_BYTES: usize = 128;

/// A chunk queued as its parts (merging on), serialised when it is written.
struct QueuedChunk {
    message_id: Uuid,
    first_seq: u64,
    seq: u64,
    kind: shared_proto::DeltaKind,
    delta: String,
    /// The first part's producer timestamp: the lag a merged frame reports is its oldest.
    ts: Option<u64>,
}

impl QueuedChunk {
    fn into_json(self) -> String {
        ServerFrame::Chunk {
            message_id: self.message_id,
            seq: self.seq,
            first_seq: (self.first_seq != self.seq).then_some(self.first_seq),
            delta: self.delta,
            kind: self.kind,
            ts: self.ts,
        }
        .to_json()
    }
}

/// A queued frame.
enum Outgoing {
    /// A JSON frame, with the producer's timestamp when it is a chunk (for the latency metric).
    Text(String, Option<u64>),
    /// A chunk of a client with `caps=merge`, which later chunks of its message may join.
    Chunk(QueuedChunk),
    Ping(Bytes),
    Pong(Bytes),
}

impl Outgoing {
    fn cost(&self) -> usize {
        match self {
            Outgoing::Text(t, _) => t.len(),
            Outgoing::Chunk(c) => CHUNK_ENVELOPE_BYTES + c.delta.len(),
            Outgoing::Ping(b) | Outgoing::Pong(b) => b.len(),
        }
    }
}

/// Result of offering a chunk to the queue's last chunk of its message.
enum Merge {
    /// Appended to it.
    Merged,
    /// Not mergeable (none queued, another kind, or not the next seq): queue it.
    Queue(QueuedChunk),
}

impl Queue {
    /// Appends `chunk` to the last queued chunk of its message if it directly follows it.
    fn merge(&mut self, chunk: QueuedChunk) -> Merge {
        for queued in self.frames.iter_mut().rev().take(MERGE_SCAN) {
            match queued {
                Outgoing::Chunk(c) if c.message_id == chunk.message_id => {
                    if c.kind == chunk.kind && chunk.seq == c.seq + 1 {
                        c.delta.push_str(&chunk.delta);
                        c.seq = chunk.seq;
                        return Merge::Merged;
                    }
                    return Merge::Queue(chunk);
                }
                // Other messages' chunks and pings may be passed over; any other frame (a
                // done, an error, an ack) keeps its place before what follows it.
                Outgoing::Chunk(_) | Outgoing::Ping(_) | Outgoing::Pong(_) => {}
                Outgoing::Text(..) => return Merge::Queue(chunk),
            }
        }
        Merge::Queue(chunk)
    }
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Outgoing>,
    bytes: usize,
    /// Close after the queued frames (graceful).
    close: Option<CloseCode>,
    /// Close now, dropping the queue (slow consumer).
    abort: bool,
    /// The writer has finished; nothing more will be written.
    finished: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer: a frame, a close or an abort was queued.
    wake: Notify,
    /// Wakes [`Sink::wait_below`]ers after a write; notified only while somebody waits.
    drained: Notify,
    drain_waiters: AtomicUsize,
    limits: SinkLimits,
    session_id: Uuid,
    done: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A handle that enqueues frames for one client. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

impl Sink {
    /// Starts the writer task for `session` (tracked by `tasks`) and returns the handle to it.
    /// Must be called on the actix worker that serves the connection. `pulled`: the response
    /// body's signal, for a merging client (each write then waits until actix took it).
    pub fn start(
        session: actix_ws::Session,
        pulled: Option<PullSignal>,
        limits: SinkLimits,
        session_id: Uuid,
        tasks: &Tasks,
    ) -> Sink {
        let transport = WsTransport::new(session, pulled);
        let (sink, writer) = Sink::with_transport(transport, limits, session_id);
        tasks.spawn_local(writer);
        sink
    }

    /// A sink and its writer future over any transport (the caller runs the future).
    pub fn with_transport<T: Transport + 'static>(
        transport: T,
        limits: SinkLimits,
        session_id: Uuid,
    ) -> (Sink, impl std::future::Future<Output = ()> + 'static) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            drained: Notify::new(),
            drain_waiters: AtomicUsize::new(0),
            limits,
            session_id,
            done: CancellationToken::new(),
        });
        let writer = writer::write_loop(transport, shared.clone());
        (Sink { shared }, writer)
    }

    /// Enqueues a frame. Returns false if the sink is closed (the frame is dropped).
    pub fn send(&self, frame: &ServerFrame) -> bool {
        frame_metrics().frames_out[frame.kind_index()].increment(1);
        match frame {
            ServerFrame::Chunk {
                message_id,
                seq,
                first_seq,
                delta,
                kind,
                ts,
            } if self.shared.limits.merge_chunks => self.push_chunk(QueuedChunk {
                message_id: *message_id,
                first_seq: first_seq.unwrap_or(*seq),
                seq: *seq,
                kind: *kind,
                delta: delta.clone(),
                ts: *ts,
            }),
            ServerFrame::Chunk { ts, .. } => self.push(Outgoing::Text(frame.to_json(), *ts)),
            _ => self.push(Outgoing::Text(frame.to_json(), None)),
        }
    }

    /// Enqueues a chunk of a merging client: appended to its message's last queued chunk when
    /// it follows it, queued otherwise; under the same byte bound as every frame.
    fn push_chunk(&self, chunk: QueuedChunk) -> bool {
        let added = chunk.delta.len();
        let mut q = self.shared.lock();
        if q.finished || q.abort || q.close.is_some() {
            return false;
        }
        // Checked against the larger cost (a frame of its own) first: a merge adds less.
        if q.bytes + added > self.shared.limits.max_queue_bytes {
            return self.overflow(q);
        }
        let chunk = match q.merge(chunk) {
            Merge::Merged => {
                q.bytes += added;
                return true;
            }
            Merge::Queue(chunk) => chunk,
        };
        self.enqueue(q, Outgoing::Chunk(chunk))
    }

    /// Over the byte bound: this client cannot keep up. Drop what it has not taken.
    fn overflow(&self, mut q: MutexGuard<'_, Queue>) -> bool {
        q.abort = true;
        q.frames.clear();
        q.bytes = 0;
        drop(q);
        self.shared.wake.notify_one();
        false
    }

    /// Enqueues a WebSocket ping.
    pub fn ping(&self, payload: &[u8]) -> bool {
        self.push(Outgoing::Ping(Bytes::copy_from_slice(payload)))
    }

    /// Enqueues a WebSocket pong.
    pub fn pong(&self, payload: &[u8]) -> bool {
        self.push(Outgoing::Pong(Bytes::copy_from_slice(payload)))
    }

    fn push(&self, frame: Outgoing) -> bool {
        let q = self.shared.lock();
        if q.finished || q.abort || q.close.is_some() {
            return false;
        }
        self.enqueue(q, frame)
    }

    /// Queues `frame` behind the others, under the byte bound (`q`: the open queue, locked).
    fn enqueue(&self, mut q: MutexGuard<'_, Queue>, frame: Outgoing) -> bool {
        let cost = frame.cost();
        if q.bytes + cost > self.shared.limits.max_queue_bytes {
            return self.overflow(q);
        }
        q.bytes += cost;
        q.frames.push_back(frame);
        drop(q);
        self.shared.wake.notify_one();
        true
    }

    /// Closes the connection after the frames already queued.
    pub fn close(&self, code: CloseCode) {
        let mut q = self.shared.lock();
        if q.close.is_none() {
            q.close = Some(code);
        }
        drop(q);
        self.shared.wake.notify_one();
    }

    /// The queue's bound (`SEND_QUEUE_BYTES`).
    pub fn max_queue_bytes(&self) -> usize {
        self.shared.limits.max_queue_bytes
    }

    /// Bytes queued and not yet handed to the socket.
    pub fn queued_bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Resolves once at most `bytes` are queued, or the writer has finished (a paced replay
    /// waits here for the client to read).
    pub async fn wait_below(&self, bytes: usize) {
        self.shared.drain_waiters.fetch_add(1, Ordering::AcqRel);
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.is_finished() || self.queued_bytes() <= bytes {
                break;
            }
            tokio::select! {
                _ = drained => {}
                _ = self.shared.done.cancelled() => break,
            }
        }
        self.shared.drain_waiters.fetch_sub(1, Ordering::AcqRel);
    }

    /// Resolves when the writer has finished (closed, peer gone, or slow consumer).
    pub async fn finished(&self) {
        self.shared.done.cancelled().await
    }

    pub fn is_finished(&self) -> bool {
        self.shared.done.is_cancelled()
    }
}
