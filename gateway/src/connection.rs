//! One WebSocket connection: the handshake, the read loop, and the frame handlers.
//!
//! The read loop never waits on the network for anything but the client: requests to the
//! ai-service run in their own tasks (bounded per connection), and every answer goes through
//! the connection's [`Sink`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, ProtocolError};
use futures_util::StreamExt;
use serde::Deserialize;
use shared_proto::{ClientFrame, CloseCode, ErrorCode, ServerFrame, PROTOCOL_VERSION};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::hub::Connection;
use crate::sink::{Sink, SinkLimits};
use crate::state::AppState;
use crate::streams::{Follow, Streams};

/// Requests to the ai-service one connection may have in flight; more wait (backpressure on
/// the client's reads, which bounds what one client can make the gateway hold).
const MAX_INFLIGHT_REQUESTS: usize = 32;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// `GET /ws` query: present when resuming a session.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    pub session_id: Option<String>,
    pub resume_token: Option<String>,
}

fn refuse(status: actix_web::http::StatusCode, code: ErrorCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(shared_proto::api::ApiError {
        error: shared_proto::ErrorBody::new(code, message),
    })
}

/// `GET /ws`: checks the resume token, subscribes to the session's channel, upgrades.
pub async fn ws_route(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<WsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    use actix_web::http::StatusCode;
    if state.is_draining() {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ShuttingDown,
            "this gateway is shutting down",
        ));
    }
    let (session_id, resumed) = match (&query.session_id, &query.resume_token) {
        (None, None) => (Uuid::new_v4(), false),
        (Some(sid), Some(token)) => match Uuid::parse_str(sid) {
            Ok(sid) if state.tokens.verify(sid, token) => (sid, true),
            _ => {
                return Ok(refuse(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::InvalidFrame,
                    "invalid session_id or resume_token",
                ))
            }
        },
        _ => {
            return Ok(refuse(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidFrame,
                "session_id and resume_token go together",
            ))
        }
    };
    // Subscribe before anything can be published for this connection to see.
    if let Err(e) = state.feed.subscribe_session(session_id).await {
        tracing::warn!(%session_id, error = %e, "cannot subscribe; refusing the connection");
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable,
            "the store (Redis) is unavailable",
        ));
    }
    let active = if resumed {
        state.store.active(session_id).await.unwrap_or_else(|e| {
            tracing::warn!(%session_id, error = %e, "cannot list active messages");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let (response, session, messages) = actix_ws::handle(&req, body)?;
    let messages = messages
        .max_frame_size(state.config.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(state.config.max_frame_bytes);

    let conn_id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    let sink = Sink::start(
        session,
        SinkLimits {
            max_queue_bytes: state.config.send_queue_bytes,
            send_timeout: state.config.send_timeout,
        },
        session_id,
    );
    let streams = Streams::new(session_id, sink.clone(), state.store.clone());
    let connection = Connection {
        conn_id,
        sink: sink.clone(),
        streams: streams.clone(),
    };
    if let Some(old) = state.hub.register(session_id, connection) {
        // The same session connected again (a reconnect that beat the old socket's timeout).
        old.sink.close(CloseCode::SessionReplaced);
    }
    sink.send(&ServerFrame::Welcome {
        session_id,
        resume_token: state.tokens.issue(session_id),
        protocol: PROTOCOL_VERSION,
        heartbeat_interval_ms: state.config.heartbeat_interval.as_millis() as u64,
        active,
    });
    let span = tracing::info_span!("connection", %session_id, conn_id);
    actix_web::rt::spawn(
        run(
            state.into_inner(),
            session_id,
            conn_id,
            sink,
            streams,
            messages,
        )
        .instrument(span),
    );
    Ok(response)
}

async fn run(
    state: Arc<AppState>,
    session_id: Uuid,
    conn_id: u64,
    sink: Sink,
    streams: Arc<Streams>,
    mut messages: actix_ws::AggregatedMessageStream,
) {
    tracing::debug!("connected");
    metrics::gauge!("gateway_connections").increment(1.0);
    let handler = Handler {
        state: state.clone(),
        session_id,
        sink: sink.clone(),
        streams: streams.clone(),
        inflight: Arc::new(Semaphore::new(MAX_INFLIGHT_REQUESTS)),
    };
    let mut last_seen = Instant::now();
    let mut ticker = tokio::time::interval(state.config.heartbeat_interval);
    ticker.tick().await;
    let shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = sink.finished() => break,
            _ = shutdown.cancelled() => {
                sink.close(CloseCode::GoingAway);
                break;
            }
            _ = ticker.tick() => {
                if last_seen.elapsed() >= state.config.client_timeout {
                    tracing::info!("client silent for CLIENT_TIMEOUT; closing");
                    sink.close(CloseCode::ClientTimeout);
                    break;
                }
                sink.ping(b"");
            }
            msg = messages.next() => {
                let Some(msg) = msg else { break };
                last_seen = Instant::now();
                match msg {
                    Ok(AggregatedMessage::Text(text)) => handler.on_text(&text).await,
                    Ok(AggregatedMessage::Binary(_)) => {
                        sink.send(&ServerFrame::error(
                            ErrorCode::BinaryNotSupported,
                            "protocol v1 uses JSON text frames only",
                            None,
                        ));
                    }
                    Ok(AggregatedMessage::Ping(payload)) => {
                        sink.pong(&payload);
                    }
                    Ok(AggregatedMessage::Pong(_)) => {}
                    Ok(AggregatedMessage::Close(_)) => {
                        sink.close(CloseCode::Normal);
                        break;
                    }
                    Err(ProtocolError::Io(io)) if io.kind() != std::io::ErrorKind::InvalidData => {
                        // The peer went away mid-frame (TCP reset, EOF): nobody to answer.
                        tracing::debug!(error = %io, "connection lost");
                        break;
                    }
                    Err(e) => {
                        let code = match e {
                            ProtocolError::Overflow => CloseCode::TooBig,
                            ProtocolError::Io(_) => CloseCode::InvalidPayload,
                            _ => CloseCode::ProtocolError,
                        };
                        tracing::info!(error = %e, close = code.code(), "protocol error; closing");
                        sink.close(code);
                        break;
                    }
                }
            }
        }
    }
    // Let the writer flush and send the close frame (bounded by SEND_TIMEOUT inside it).
    let _ = tokio::time::timeout(
        state.config.send_timeout + std::time::Duration::from_secs(1),
        sink.finished(),
    )
    .await;
    if state.hub.unregister(session_id, conn_id) {
        if let Err(e) = state.feed.unsubscribe_session(session_id).await {
            tracing::debug!(error = %e, "unsubscribe failed (the subscriber may be reconnecting)");
        }
    }
    metrics::gauge!("gateway_connections").decrement(1.0);
    tracing::debug!("disconnected");
}

/// Handles the client's frames for one connection.
struct Handler {
    state: Arc<AppState>,
    session_id: Uuid,
    sink: Sink,
    streams: Arc<Streams>,
    inflight: Arc<Semaphore>,
}

impl Handler {
    async fn on_text(&self, text: &str) {
        let frame = match ClientFrame::parse(text) {
            Ok(f) => {
                metrics::counter!("gateway_frames_in_total", "type" => f.kind()).increment(1);
                f
            }
            Err(e) => {
                metrics::counter!("gateway_frames_in_total", "type" => "invalid").increment(1);
                self.sink.send(&ServerFrame::error(e.code, e.message, None));
                return;
            }
        };
        match frame {
            ClientFrame::Heartbeat {} => {
                self.sink.send(&ServerFrame::HeartbeatAck {});
            }
            ClientFrame::Chat {
                content,
                message_id,
            } => self.on_chat(content, message_id).await,
            ClientFrame::Cancel { message_id } => self.on_cancel(message_id).await,
            ClientFrame::Resume {
                message_id,
                after_seq,
            } => self.streams.resume(message_id, after_seq),
        }
    }

    async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inflight.clone().acquire_owned().await.ok()
    }

    async fn on_chat(&self, content: String, message_id: Option<Uuid>) {
        let message_id = message_id.unwrap_or_else(Uuid::new_v4);
        if content.trim().is_empty() {
            self.sink.send(&ServerFrame::error(
                ErrorCode::EmptyContent,
                "content is empty",
                Some(message_id),
            ));
            return;
        }
        if content.len() > self.state.config.max_content_bytes() {
            self.sink.send(&ServerFrame::error(
                ErrorCode::ContentTooLong,
                format!(
                    "content is longer than {} bytes",
                    self.state.config.max_content_bytes()
                ),
                Some(message_id),
            ));
            return;
        }
        if self.streams.follow_held(message_id) == Follow::AlreadyFollowing {
            self.sink.send(&ServerFrame::error(
                ErrorCode::DuplicateMessageId,
                "this message_id is already streaming on this connection",
                Some(message_id),
            ));
            return;
        }
        let Some(permit) = self.permit().await else {
            return;
        };
        let (ai, sink, streams, session_id) = (
            self.state.ai.clone(),
            self.sink.clone(),
            self.streams.clone(),
            self.session_id,
        );
        actix_web::rt::spawn(
            async move {
                let _permit = permit;
                match ai.start(session_id, message_id, &content).await {
                    Ok(_) => {
                        sink.send(&ServerFrame::Ack { message_id });
                        streams.release(message_id);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "chat not accepted by the ai-service");
                        streams.unfollow(message_id);
                        sink.send(&ServerFrame::error(
                            e.code(),
                            "the answer could not be started; try again",
                            Some(message_id),
                        ));
                    }
                }
            }
            .instrument(tracing::info_span!("chat", %message_id)),
        );
    }

    async fn on_cancel(&self, message_id: Uuid) {
        let Some(permit) = self.permit().await else {
            return;
        };
        let (ai, sink, session_id) = (self.state.ai.clone(), self.sink.clone(), self.session_id);
        actix_web::rt::spawn(
            async move {
                let _permit = permit;
                match ai.cancel(session_id, message_id).await {
                    Ok(status) => {
                        sink.send(&ServerFrame::CancelAck { message_id, status });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cancel not delivered to the ai-service");
                        sink.send(&ServerFrame::error(
                            e.code(),
                            "the cancel could not be delivered; try again",
                            Some(message_id),
                        ));
                    }
                }
            }
            .instrument(tracing::info_span!("cancel", %message_id)),
        );
    }
}
