//! The read loop of one connection: reads the client's frames and dispatches them to
//! [`Commands`], pings every `HEARTBEAT_INTERVAL`, closes a client silent for `CLIENT_TIMEOUT`
//! (4000), closes a connection whose login token expired (4003, at `exp` + `JWT_LEEWAY`, after
//! the frames already queued; an `auth` frame moves `exp`), closes on shutdown (1001) and on
//! protocol errors, and on the way out leaves the hub and the session's subscription. Expiry
//! ends the connection only: its running answers go on, for the client to resume.
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
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::cmd::Commands;
use super::frame_guard::{Verdict, VerdictCell};
use crate::delivery::hub::Left;
use crate::delivery::streams::Streams;
use crate::security::conn_limits::ConnGuard;
use crate::security::conn_token::{expiry_deadline, ConnToken};
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
    /// The login token the connection runs on (None: anonymous mode, no expiry).
    pub token: Option<Arc<ConnToken>>,
}

/// Keeps `streamline_gateway_send_queue_bytes` (the sum over connections) up to date from samples.
struct QueueGauge {
    last: usize,
}

impl QueueGauge {
    fn sample(&mut self, sink: &Sink) {
        let now = sink.queued_bytes();
        if now != self.last {
            crate::telemetry::hot()
                .send_queue_bytes
                .increment(now as f64 - self.last as f64);
            self.last = now;
        }
    }

    fn clear(&mut self) {
        crate::telemetry::hot()
            .send_queue_bytes
            .decrement(self.last as f64);
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
        token,
    } = conn;
    tracing::debug!("connected");
    crate::telemetry::hot().connections.increment(1.0);
    let expiry = token.as_ref().map(|t| t.watch());
    let commands = Commands::new(
        state.clone(),
        session_id,
        sink.clone(),
        streams,
        inherited,
        starts,
        token,
    );
    let mut gauge = QueueGauge { last: 0 };
    read(
        &state, &commands, &sink, &verdict, &mut gauge, messages, expiry,
    )
    .await;
    // Every way out of the loop ends the writer: without a close queued (peer gone, stream
    // ended) it would wait for frames forever, holding the socket and its slot.
    sink.close(CloseCode::Normal);
    // Let the writer flush and send the close frame (bounded by SEND_TIMEOUT inside it).
    let _ = tokio::time::timeout(
        state.config.send_timeout + Duration::from_secs(1),
        sink.finished(),
    )
    .await;
    Box::pin(leave(&state, session_id, conn_id)).await;
    gauge.clear();
    drop(guard);
    crate::telemetry::hot().connections.decrement(1.0);
    tracing::debug!("disconnected");
}

async fn read(
    state: &AppState,
    commands: &Commands,
    sink: &Sink,
    verdict: &VerdictCell,
    gauge: &mut QueueGauge,
    mut messages: AggregatedMessageStream,
    mut expiry: Option<watch::Receiver<u64>>,
) {
    let mut last_seen = Instant::now();
    let mut ticker = tokio::time::interval(state.config.heartbeat_interval);
    ticker.tick().await;
    let shutdown = state.shutdown.clone();
    let leeway = state.config.jwt_leeway;
    let token_end = |exp: u64| expiry_deadline(exp, leeway);
    let first_end = match &expiry {
        Some(rx) => token_end(*rx.borrow()),
        None => Instant::now(),
    };
    let expired = tokio::time::sleep_until(first_end);
    tokio::pin!(expired);
    loop {
        tokio::select! {
            _ = sink.finished() => return,
            _ = shutdown.cancelled() => {
                sink.close(CloseCode::GoingAway);
                return;
            }
            exp = exp_changed(&mut expiry) => {
                expired.as_mut().reset(token_end(exp));
            }
            _ = &mut expired, if expiry.is_some() => {
                // The wall clock decides (it may have been stepped since the timer was set).
                let exp = expiry.as_ref().map_or(0, |rx| *rx.borrow());
                let end = token_end(exp);
                if end > Instant::now() {
                    expired.as_mut().reset(end);
                    continue;
                }
                tracing::info!(exp, "login token expired without a refresh; closing with 4003");
                metrics::counter!("streamline_gateway_token_expired_closes_total").increment(1);
                sink.close(CloseCode::TokenExpired);
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
                    // Boxed: a command's state lives only while it runs, instead of making every
                    // idle connection's task as large as the largest command (S1 memory).
                    Ok(AggregatedMessage::Text(text)) => Box::pin(commands.on_text(&text)).await,
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

/// The next `exp` an `auth` frame installed (never, in anonymous mode).
async fn exp_changed(expiry: &mut Option<watch::Receiver<u64>>) -> u64 {
    if let Some(rx) = expiry {
        if rx.changed().await.is_ok() {
            return *rx.borrow_and_update();
        }
    }
    std::future::pending().await
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
