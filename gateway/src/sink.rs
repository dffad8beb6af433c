//! The only way to write to a client's socket.
//!
//! Each connection has one writer task that owns the raw `actix_ws::Session`; nothing else in
//! the gateway can reach it. Everyone else (the Redis feed, the frame handlers, the pinger)
//! holds a [`Sink`] and *enqueues*: a push under a mutex that is never held across an await, so
//! enqueueing never waits, whatever the client does. This is what makes interleaved frames
//! (TEXT_PARTIAL_WRITING) impossible and what keeps a slow client from stalling anyone else.
//!
//! The queue is bounded in bytes (`SEND_QUEUE_BYTES`) and each write in time (`SEND_TIMEOUT`).
//! actix-ws's own channel holds 32 frames and `Session::text().await` waits without limit when
//! the peer stops reading, so both bounds are enforced here. A client over either is closed
//! with 4008 "slow consumer". The close frame always gets into actix's channel: one slot of it
//! is reserved when the connection starts and used for nothing else.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use actix_ws::{CloseReason, Message};
use bytes::Bytes;
use futures_util::Sink as _;
use shared_proto::{CloseCode, ServerFrame};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The series written per frame, resolved once: `metrics::counter!` with a label builds a key
/// and looks it up in the registry on every call, which is per-frame work on the hot path.
struct FrameMetrics {
    /// `gateway_frames_out_total` by [`ServerFrame::kind_index`].
    frames_out: [metrics::Counter; ServerFrame::KINDS.len()],
    token_latency: metrics::Histogram,
}

/// Resolved on first use, which is after `server::start` installed the recorder.
fn frame_metrics() -> &'static FrameMetrics {
    static METRICS: OnceLock<FrameMetrics> = OnceLock::new();
    METRICS.get_or_init(|| FrameMetrics {
        frames_out: ServerFrame::KINDS
            .map(|kind| metrics::counter!("gateway_frames_out_total", "type" => kind)),
        token_latency: metrics::histogram!("gateway_token_latency_seconds"),
    })
}

/// Limits of one sink.
#[derive(Debug, Clone, Copy)]
pub struct SinkLimits {
    pub max_queue_bytes: usize,
    pub send_timeout: Duration,
}

enum Outgoing {
    /// A JSON frame, with the producer's timestamp when it is a chunk (for the latency metric).
    Text(String, Option<u64>),
    Ping(Bytes),
    Pong(Bytes),
}

impl Outgoing {
    fn cost(&self) -> usize {
        match self {
            Outgoing::Text(t, _) => t.len(),
            Outgoing::Ping(b) | Outgoing::Pong(b) => b.len(),
        }
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
    wake: Notify,
    limits: SinkLimits,
    session_id: Uuid,
    done: CancellationToken,
}

/// A handle that enqueues frames for one client. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sink {
    /// Starts the writer task for `session` and returns the handle to it. Must be called on
    /// the actix runtime that serves the connection.
    pub fn start(session: actix_ws::Session, limits: SinkLimits, session_id: Uuid) -> Sink {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            limits,
            session_id,
            done: CancellationToken::new(),
        });
        actix_web::rt::spawn(write_loop(session, shared.clone()));
        Sink { shared }
    }

    /// Enqueues a frame. Returns false if the sink is closed (the frame is dropped).
    pub fn send(&self, frame: &ServerFrame) -> bool {
        let ts = match frame {
            ServerFrame::Chunk { ts, .. } => *ts,
            _ => None,
        };
        frame_metrics().frames_out[frame.kind_index()].increment(1);
        self.push(Outgoing::Text(frame.to_json(), ts))
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
        let cost = frame.cost();
        let mut q = self.shared.lock();
        if q.finished || q.abort || q.close.is_some() {
            return false;
        }
        if q.bytes + cost > self.shared.limits.max_queue_bytes {
            // Over the byte bound: this client cannot keep up. Drop what it has not taken.
            q.abort = true;
            q.frames.clear();
            q.bytes = 0;
            drop(q);
            self.shared.wake.notify_one();
            return false;
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

    /// Resolves when the writer has finished (closed, peer gone, or slow consumer).
    pub async fn finished(&self) {
        self.shared.done.cancelled().await
    }

    pub fn is_finished(&self) -> bool {
        self.shared.done.is_cancelled()
    }
}

enum Next {
    Frame(Outgoing),
    Close(CloseCode),
    Abort,
    Wait,
}

enum Exit {
    Closed(CloseCode),
    Slow(&'static str),
    PeerGone,
}

async fn write_loop(mut session: actix_ws::Session, shared: Arc<Shared>) {
    // Reserve one slot of actix-ws's channel for the close frame (the channel is empty now,
    // so this is immediate); see the module docs.
    let mut reserved = session.clone();
    let reserved_ok = poll_fn(|cx| Pin::new(&mut reserved).poll_ready(cx))
        .await
        .is_ok();

    let exit = loop {
        let notified = shared.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let mut q = shared.lock();
            if q.abort {
                Next::Abort
            } else if let Some(frame) = q.frames.pop_front() {
                Next::Frame(frame)
            } else if let Some(code) = q.close {
                Next::Close(code)
            } else {
                Next::Wait
            }
        };
        let frame = match next {
            Next::Wait => {
                notified.await;
                continue;
            }
            Next::Abort => break Exit::Slow("send queue over SEND_QUEUE_BYTES"),
            Next::Close(code) => break Exit::Closed(code),
            Next::Frame(frame) => frame,
        };
        let cost = frame.cost();
        let mut produced_at = None;
        let message = match frame {
            Outgoing::Text(t, ts) => {
                produced_at = ts;
                Message::Text(t.into())
            }
            Outgoing::Ping(b) => Message::Ping(b),
            Outgoing::Pong(b) => Message::Pong(b),
        };
        let write = tokio::time::timeout(
            shared.limits.send_timeout,
            futures_util::SinkExt::send(&mut session, message),
        );
        tokio::pin!(write);
        let result = loop {
            let notified = shared.wake.notified();
            tokio::select! {
                r = &mut write => break Some(r),
                _ = notified => {
                    if shared.lock().abort {
                        break None;
                    }
                }
            }
        };
        match result {
            None => break Exit::Slow("send queue over SEND_QUEUE_BYTES"),
            Some(Err(_elapsed)) => break Exit::Slow("a write blocked longer than SEND_TIMEOUT"),
            Some(Ok(Err(_closed))) => break Exit::PeerGone,
            Some(Ok(Ok(()))) => {
                let mut q = shared.lock();
                q.bytes = q.bytes.saturating_sub(cost);
                drop(q);
                if let Some(ts) = produced_at {
                    let ms = shared_proto::now_ms().saturating_sub(ts);
                    frame_metrics().token_latency.record(ms as f64 / 1000.0);
                }
            }
        }
    };

    {
        let mut q = shared.lock();
        q.finished = true;
        q.frames.clear();
        q.bytes = 0;
    }
    let close = |code: CloseCode| {
        Message::Close(Some(CloseReason {
            code: actix_ws::CloseCode::Other(code.code()),
            description: Some(code.reason().to_string()),
        }))
    };
    match exit {
        Exit::Closed(code) => {
            let sent = tokio::time::timeout(
                shared.limits.send_timeout,
                futures_util::SinkExt::send(&mut session, close(code)),
            )
            .await;
            if !matches!(sent, Ok(Ok(()))) && reserved_ok {
                let _ = Pin::new(&mut reserved).start_send(close(code));
            }
        }
        Exit::Slow(why) => {
            tracing::warn!(session_id = %shared.session_id, why, "closing slow consumer");
            metrics::counter!("gateway_slow_consumer_closes_total").increment(1);
            if reserved_ok {
                let _ = Pin::new(&mut reserved).start_send(close(CloseCode::SlowConsumer));
            }
        }
        Exit::PeerGone => {}
    }
    // Dropping both handles ends the response body once actix has flushed what it holds.
    drop(reserved);
    drop(session);
    shared.done.cancel();
}
