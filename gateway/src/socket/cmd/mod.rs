//! The client's commands, one file each: [`chat`], [`cancel`], [`resume`], [`heartbeat`],
//! [`conversation`].
//! [`Commands`] is what they share: the connection's session, sink and followed messages, its
//! two token buckets, and the bound on its requests in flight.
//!
//! Each connection has two token buckets (`RATE_LIMIT_PER_SEC`, `RATE_LIMIT_BURST`): one for
//! `chat`, `resume`, invalid and binary frames, one for `cancel` (so a client that floods chats
//! can still press Stop). `heartbeat` is exempt: it is answered locally, costs one small frame,
//! and a client that sends them faster than it reads the answers is closed as a slow consumer by
//! the send queue bound.

mod cancel;
mod chat;
mod conversation;
mod heartbeat;
mod resume;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use shared_proto::{ClientFrame, ErrorCode, ServerFrame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::delivery::streams::Streams;
use crate::security::rate::TokenBucket;
use crate::sink::Sink;
use crate::starts::Starts;
use crate::state::AppState;
use chat::Inherited;

/// Requests to the ai-service one connection may have in flight; more wait (backpressure on
/// the client's reads, which bounds what one client can make the gateway hold). A
/// `conversation` read takes one too.
const MAX_INFLIGHT_REQUESTS: usize = 32;

/// Which token bucket a frame draws from.
#[derive(Clone, Copy)]
enum Bucket {
    Requests,
    Cancels,
}

/// Handles the client's frames for one connection.
pub struct Commands {
    state: Arc<AppState>,
    session_id: Uuid,
    sink: Sink,
    streams: Arc<Streams>,
    inflight: Arc<Semaphore>,
    /// The session's chats whose start is in flight: a cancel behind one waits for it.
    starts: Starts,
    requests: Mutex<TokenBucket>,
    cancels: Mutex<TokenBucket>,
    inherited: Mutex<Inherited>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Commands {
    /// `inherited`: the session's unfinished messages listed in `welcome.active`; `starts`:
    /// the session's chats in flight (shared by its sockets).
    pub fn new(
        state: Arc<AppState>,
        session_id: Uuid,
        sink: Sink,
        streams: Arc<Streams>,
        inherited: HashSet<Uuid>,
        starts: Starts,
    ) -> Self {
        let (rate, burst) = (
            state.config.rate_limit_per_sec,
            state.config.rate_limit_burst,
        );
        Commands {
            state,
            session_id,
            sink,
            streams,
            inflight: Arc::new(Semaphore::new(MAX_INFLIGHT_REQUESTS)),
            starts,
            requests: Mutex::new(TokenBucket::new(rate, burst)),
            cancels: Mutex::new(TokenBucket::new(rate, burst)),
            inherited: Mutex::new(Inherited::new(inherited)),
        }
    }

    /// A text frame: parsed, rate-limited, dispatched. It may wait (for a request slot, or a
    /// store read), which holds the next frame back: frames of one connection are handled in
    /// order.
    pub async fn on_text(&self, text: &str) {
        let frame = match ClientFrame::parse(text) {
            Ok(f) => {
                metrics::counter!("gateway_frames_in_total", "type" => f.kind()).increment(1);
                f
            }
            Err(e) => {
                metrics::counter!("gateway_frames_in_total", "type" => "invalid").increment(1);
                if self.take(Bucket::Requests, None) {
                    self.sink.send(&ServerFrame::error(e.code, e.message, None));
                }
                return;
            }
        };
        match frame {
            ClientFrame::Heartbeat {} => self.heartbeat(),
            ClientFrame::Conversation {} => {
                if self.take(Bucket::Requests, None) {
                    self.conversation().await
                }
            }
            ClientFrame::Chat {
                content,
                message_id,
            } => {
                if self.take(Bucket::Requests, message_id) {
                    self.chat(content, message_id).await
                }
            }
            ClientFrame::Cancel { message_id } => {
                if self.take(Bucket::Cancels, Some(message_id)) {
                    self.cancel(message_id).await
                }
            }
            ClientFrame::Resume {
                message_id,
                after_seq,
            } => {
                if self.take(Bucket::Requests, Some(message_id)) {
                    self.resume(message_id, after_seq)
                }
            }
        }
    }

    /// A binary frame: protocol v1 is JSON text only.
    pub fn on_binary(&self) {
        metrics::counter!("gateway_frames_in_total", "type" => "binary").increment(1);
        if self.take(Bucket::Requests, None) {
            self.sink.send(&ServerFrame::error(
                ErrorCode::BinaryNotSupported,
                "protocol v1 uses JSON text frames only",
                None,
            ));
        }
    }

    /// Takes a token for a frame; without one, answers `error{rate_limited}` and returns false.
    fn take(&self, bucket: Bucket, message_id: Option<Uuid>) -> bool {
        let (m, label) = match bucket {
            Bucket::Requests => (&self.requests, "requests"),
            Bucket::Cancels => (&self.cancels, "cancels"),
        };
        if lock(m).try_take() {
            return true;
        }
        metrics::counter!("gateway_rate_limited_total", "bucket" => label).increment(1);
        self.sink.send(&ServerFrame::error(
            ErrorCode::RateLimited,
            "rate limited; slow down",
            message_id,
        ));
        false
    }

    /// A slot for one request to the ai-service (waits while `MAX_INFLIGHT_REQUESTS` are out).
    async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.inflight.clone().acquire_owned().await.ok()
    }
}
