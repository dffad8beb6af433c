//! The read loop of one connection: reads the client's frames and dispatches them to
//! [`Commands`], pings every `HEARTBEAT_INTERVAL`, closes a client silent for `CLIENT_TIMEOUT`
//! (4000), closes on shutdown (1001) and on protocol errors, and on the way out leaves the hub
//! and the session's subscription.
//!
//! The loop never waits on the network for anything but the client: requests to the
//! ai-service run in their own tasks (bounded per connection), and every answer goes through
//! the connection's [`Sink`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, ProtocolError};
use futures_util::StreamExt;
use shared_proto::CloseCode;
use tokio::time::Instant;
use uuid::Uuid;

use super::cmd::Commands;
use super::frame_guard::{Verdict, VerdictCell};
use crate::delivery::hub::Left;
use crate::delivery::streams::Streams;
use crate::security::conn_limits::ConnGuard;
use crate::sink::Sink;
use crate::starts::Starts;
use crate::state::AppState;

/// What the read loop of one connection owns.
pub struct Conn {
    pub session_id: Uuid,
    pub conn_id: u64,
    pub sink: Sink,
    pub streams: Arc<Streams>,
    /// Unfinished messages of the session when it was resumed.
    pub inherited: HashSet<Uuid>,
    /// What the frame guard decided (an oversized header ends the byte stream).
    pub verdict: VerdictCell,
    /// The connection's slot under MAX_CONNECTIONS(_PER_IP); released when the loop ends.
    pub guard: ConnGuard,
    /// The session's chats in flight (shared by its sockets here).
    pub starts: Starts,
}

/// Keeps `gateway_send_queue_bytes` (the sum over connections) up to date from samples.
struct QueueGauge {
    last: usize,
}

impl QueueGauge {
    fn sample(&mut self, sink: &Sink) {
        let now = sink.queued_bytes();
        if now != self.last {
            metrics::gauge!("gateway_send_queue_bytes").increment(now as f64 - self.last as f64);
            self.last = now;
        }
    }

    fn clear(&mut self) {
        metrics::gauge!("gateway_send_queue_bytes").decrement(self.last as f64);
        self.last = 0;
    }
}

/// Runs the connection until it ends; every way out closes the sink.
pub async fn run(state: Arc<AppState>, conn: Conn, messages: AggregatedMessageStream) {
    let Conn {
        session_id,
        conn_id,
        sink,
        streams,
        inherited,
        verdict,
        guard,
        starts,
    } = conn;
    tracing::debug!("connected");
    metrics::gauge!("gateway_connections").increment(1.0);
    let commands = Commands::new(
        state.clone(),
        session_id,
        sink.clone(),
        streams,
        inherited,
        starts,
    );
    let mut gauge = QueueGauge { last: 0 };
    read(&state, &commands, &sink, &verdict, &mut gauge, messages).await;
    // Every way out of the loop ends the writer: without a close queued (peer gone, stream
    // ended) it would wait for frames forever, holding the socket and its slot.
    sink.close(CloseCode::Normal);
    // Let the writer flush and send the close frame (bounded by SEND_TIMEOUT inside it).
    let _ = tokio::time::timeout(
        state.config.send_timeout + Duration::from_secs(1),
        sink.finished(),
    )
    .await;
    leave(&state, session_id, conn_id).await;
    gauge.clear();
    drop(guard);
    metrics::gauge!("gateway_connections").decrement(1.0);
    tracing::debug!("disconnected");
}

async fn read(
    state: &AppState,
    commands: &Commands,
    sink: &Sink,
    verdict: &VerdictCell,
    gauge: &mut QueueGauge,
    mut messages: AggregatedMessageStream,
) {
    let mut last_seen = Instant::now();
    let mut ticker = tokio::time::interval(state.config.heartbeat_interval);
    ticker.tick().await;
    let shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = sink.finished() => return,
            _ = shutdown.cancelled() => {
                sink.close(CloseCode::GoingAway);
                return;
            }
            _ = ticker.tick() => {
                gauge.sample(sink);
                if last_seen.elapsed() >= state.config.client_timeout {
                    tracing::info!("client silent for CLIENT_TIMEOUT; closing");
                    sink.close(CloseCode::ClientTimeout);
                    return;
                }
                sink.ping(b"");
            }
            msg = messages.next() => {
                let Some(msg) = msg else { return };
                last_seen = Instant::now();
                gauge.sample(sink);
                match msg {
                    Ok(AggregatedMessage::Text(text)) => commands.on_text(&text).await,
                    Ok(AggregatedMessage::Binary(_)) => commands.on_binary(),
                    Ok(AggregatedMessage::Ping(payload)) => {
                        sink.pong(&payload);
                    }
                    Ok(AggregatedMessage::Pong(_)) => {}
                    Ok(AggregatedMessage::Close(_)) => {
                        sink.close(CloseCode::Normal);
                        return;
                    }
                    Err(e) => {
                        if let Some(code) = close_code(&e, verdict.get()) {
                            tracing::info!(error = %e, close = code.code(), "protocol error; closing");
                            sink.close(code);
                        } else {
                            tracing::debug!(error = %e, "connection lost");
                        }
                        return;
                    }
                }
            }
        }
    }
}

/// The close code for a failed read, or None when the peer is simply gone (TCP reset, EOF
/// mid-frame: nobody to answer).
fn close_code(e: &ProtocolError, verdict: Verdict) -> Option<CloseCode> {
    match (verdict, e) {
        // The frame guard ended the byte stream: a header over the limit.
        (Verdict::ControlTooBig, _) => Some(CloseCode::ProtocolError),
        (Verdict::TooBig, _) => Some(CloseCode::TooBig),
        (Verdict::Ok, ProtocolError::Io(io)) if io.kind() != std::io::ErrorKind::InvalidData => {
            None
        }
        (Verdict::Ok, ProtocolError::Overflow) => Some(CloseCode::TooBig),
        (Verdict::Ok, ProtocolError::Io(_)) => Some(CloseCode::InvalidPayload),
        (Verdict::Ok, _) => Some(CloseCode::ProtocolError),
    }
}

/// Leaves the hub and, if this was the session's last socket here, its subscription.
async fn leave(state: &AppState, session_id: Uuid, conn_id: u64) {
    if state.hub.unregister(session_id, conn_id) != Left::LastOfSession {
        return;
    }
    if let Err(e) = state.feed.unsubscribe_session(session_id).await {
        tracing::debug!(error = %e, "unsubscribe failed (the subscriber may be reconnecting)");
    }
    // A new socket of this session may have subscribed while we were leaving; make sure our
    // unsubscribe did not take its channel away.
    if state.hub.contains(session_id) {
        if let Err(e) = state.feed.subscribe_session(session_id).await {
            tracing::debug!(error = %e, "resubscribe failed; the watchdog covers the gap");
        }
    }
}
