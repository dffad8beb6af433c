//! One WebSocket connection: the handshake, the read loop, and the frame handlers.
//!
//! The read loop never waits on the network for anything but the client: requests to the
//! ai-service run in their own tasks (bounded per connection), and every answer goes through
//! the connection's [`Sink`].
//!
//! The handshake checks, in order: draining (503), `Origin` against `ALLOWED_ORIGINS` (403),
//! the JWT when `AUTH_SECRET` is set (401), the connection limits (503), the resume token,
//! which is bound to the JWT's `sub` (401), then the WebSocket upgrade itself (actix-ws's own
//! 400 for a bad handshake), then the session's subscription (503 if the store is away). Every
//! refusal of ours is an HTTP status with `{"error":{code,message}}`; see `docs/SECURITY.md`.
//!
//! In the read loop, each connection has two token buckets (`RATE_LIMIT_PER_SEC`,
//! `RATE_LIMIT_BURST`): one for `chat`, `resume`, invalid and binary frames, one for `cancel`
//! (so a client that floods chats can still press Stop). `heartbeat` is exempt: it is
//! answered locally, costs one small frame, and a client that sends them faster than it reads
//! the answers is closed as a slow consumer by the send queue bound.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, ProtocolError};
use futures_util::StreamExt;
use serde::Deserialize;
use shared_proto::{ClientFrame, CloseCode, ErrorCode, ServerFrame, PROTOCOL_VERSION};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::auth;
use crate::frame_guard::{FrameGuard, Verdict, VerdictCell};
use crate::hub::Connection;
use crate::limits::{ConnGuard, TokenBucket};
use crate::sink::{Sink, SinkLimits};
use crate::starts::Starts;
use crate::state::AppState;
use crate::streams::{Follow, Streams};
use store::MessageRef;

/// Requests to the ai-service one connection may have in flight; more wait (backpressure on
/// the client's reads, which bounds what one client can make the gateway hold).
const MAX_INFLIGHT_REQUESTS: usize = 32;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// How often a connection that is at `MAX_GENERATIONS_PER_SESSION` because of messages it
/// inherited (resumed session) re-reads which of them still run.
const INHERITED_REFRESH: Duration = Duration::from_secs(1);

/// `GET /ws` query: `session_id` + `resume_token` when resuming a session; `token` (a JWT)
/// when `AUTH_SECRET` is set and the client does not use `Sec-WebSocket-Protocol`.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    pub session_id: Option<String>,
    pub resume_token: Option<String>,
    pub token: Option<String>,
}

fn refuse(status: actix_web::http::StatusCode, code: ErrorCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(shared_proto::api::ApiError {
        error: shared_proto::ErrorBody::new(code, message),
    })
}

fn refused(reason: &'static str) {
    metrics::counter!("gateway_connections_refused_total", "reason" => reason).increment(1);
}

/// All values of a header that are valid text.
fn header_values(req: &HttpRequest, name: actix_web::http::header::HeaderName) -> Vec<&str> {
    req.headers()
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The JWT check: `Ok(sub)` (None when `AUTH_SECRET` is unset) and the protocol to select.
fn authenticate(
    req: &HttpRequest,
    query: &WsQuery,
    state: &AppState,
) -> Result<(Option<String>, Option<String>), auth::JwtError> {
    let protocols = header_values(req, actix_web::http::header::SEC_WEBSOCKET_PROTOCOL);
    let offered = auth::offered_token(&protocols, query.token.as_deref());
    let protocol = offered.as_ref().and_then(|o| o.protocol.clone());
    let Some(verifier) = &state.security.jwt else {
        // Anonymous mode: a token is ignored, but a protocol that carried one is still
        // selected so that the client's handshake completes.
        return Ok((None, protocol));
    };
    let offered = offered.ok_or(auth::JwtError::Missing)?;
    let sub = verifier.verify(&offered.token, auth::now_secs())?;
    Ok((Some(sub), protocol))
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
        refused("draining");
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ShuttingDown,
            "this gateway is shutting down",
        ));
    }
    let origin = req
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .map(|v| v.as_bytes());
    if !state.security.origins.allows(origin) {
        refused("origin");
        tracing::info!(origin = ?origin.map(String::from_utf8_lossy), "origin not allowed");
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            ErrorCode::OriginNotAllowed,
            "this origin may not open a connection",
        ));
    }
    let (sub, protocol) = match authenticate(&req, &query, &state) {
        Ok(ok) => ok,
        Err(e) => {
            refused("auth");
            metrics::counter!("gateway_auth_failures_total", "reason" => e.as_str()).increment(1);
            tracing::info!(reason = e.as_str(), "handshake without a valid JWT");
            let mut resp = refuse(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "a valid token is required (JWT in `token` or Sec-WebSocket-Protocol `bearer.<jwt>`)",
            );
            resp.headers_mut().insert(
                actix_web::http::header::WWW_AUTHENTICATE,
                actix_web::http::header::HeaderValue::from_static("Bearer"),
            );
            return Ok(resp);
        }
    };
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let forwarded = header_values(&req, actix_web::http::header::X_FORWARDED_FOR);
    let client_ip = state.security.proxies.client_ip(peer, &forwarded);
    let guard = match state.security.connections.acquire(client_ip) {
        Ok(g) => g,
        Err(refusal) => {
            refused(refusal.as_str());
            tracing::warn!(%client_ip, limit = refusal.as_str(), "connection refused: limit reached");
            return Ok(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TooManyConnections,
                "too many connections; try again later",
            ));
        }
    };
    let (session_id, resumed) = match (&query.session_id, &query.resume_token) {
        (None, None) => (Uuid::new_v4(), false),
        (Some(sid), Some(token)) => match Uuid::parse_str(sid) {
            // The token is bound to the JWT's `sub`: another user's session does not verify,
            // exactly like an unknown one.
            Ok(sid) if state.tokens.verify_for(sub.as_deref(), sid, token) => (sid, true),
            _ => {
                refused("resume");
                return Ok(refuse(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::InvalidFrame,
                    "invalid session_id or resume_token",
                ));
            }
        },
        _ => {
            refused("resume");
            return Ok(refuse(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidFrame,
                "session_id and resume_token go together",
            ));
        }
    };
    let active = if resumed {
        state.store.active(session_id).await.unwrap_or_else(|e| {
            tracing::warn!(%session_id, error = %e, "cannot list active messages");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    // MAX_FRAME_BYTES from the frame headers, before actix-ws buffers any payload.
    let verdict = VerdictCell::default();
    let guarded = FrameGuard::new(
        body.into_inner(),
        state.config.max_frame_bytes,
        verdict.clone(),
    );
    let boxed: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, actix_web::error::PayloadError>>>,
    > = Box::pin(guarded);
    let mut payload = actix_web::dev::Payload::from(boxed);
    let body = <web::Payload as actix_web::FromRequest>::from_request(&req, &mut payload).await?;
    let protocols: Vec<&str> = protocol.as_deref().into_iter().collect();
    let (response, session, messages) = actix_ws::handle_with_protocols(&req, body, &protocols)?;
    // Subscribe before anything can be published for this connection to see (and only once
    // the handshake is known to succeed, so a refused upgrade leaves no subscription behind).
    if let Err(e) = state.feed.subscribe_session(session_id).await {
        tracing::warn!(%session_id, error = %e, "cannot subscribe; refusing the connection");
        refused("store");
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable,
            "the store (Redis) is unavailable",
        ));
    }
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
    let active_ids: Vec<Uuid> = active.iter().map(|a| a.message_id).collect();
    sink.send(&ServerFrame::Welcome {
        session_id,
        resume_token: state.tokens.issue_for(sub.as_deref(), session_id),
        protocol: PROTOCOL_VERSION,
        heartbeat_interval_ms: state.config.heartbeat_interval.as_millis() as u64,
        active,
    });
    let inherited: HashSet<Uuid> = active_ids.into_iter().collect();
    let span = tracing::info_span!("connection", %session_id, conn_id);
    actix_web::rt::spawn(
        run(
            state.into_inner(),
            Conn {
                session_id,
                conn_id,
                sink,
                streams,
                inherited,
                verdict,
                _guard: guard,
            },
            messages,
        )
        .instrument(span),
    );
    Ok(response)
}

/// What the read loop of one connection owns.
struct Conn {
    session_id: Uuid,
    conn_id: u64,
    sink: Sink,
    streams: Arc<Streams>,
    /// Unfinished messages of the session when it was resumed.
    inherited: HashSet<Uuid>,
    /// What the frame guard decided (an oversized header ends the byte stream).
    verdict: VerdictCell,
    /// The connection's slot under MAX_CONNECTIONS(_PER_IP); released when the loop ends.
    _guard: ConnGuard,
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

async fn run(state: Arc<AppState>, conn: Conn, mut messages: actix_ws::AggregatedMessageStream) {
    let Conn {
        session_id,
        conn_id,
        sink,
        streams,
        inherited,
        verdict,
        _guard,
    } = conn;
    tracing::debug!("connected");
    metrics::gauge!("gateway_connections").increment(1.0);
    let rate = state.config.rate_limit_per_sec;
    let burst = state.config.rate_limit_burst;
    let handler = Handler {
        state: state.clone(),
        session_id,
        sink: sink.clone(),
        streams: streams.clone(),
        inflight: Arc::new(Semaphore::new(MAX_INFLIGHT_REQUESTS)),
        starts: Starts::default(),
        requests: Mutex::new(TokenBucket::new(rate, burst)),
        cancels: Mutex::new(TokenBucket::new(rate, burst)),
        inherited: Mutex::new(Inherited {
            ids: inherited,
            refreshed: Instant::now(),
        }),
    };
    let mut queue_gauge = QueueGauge { last: 0 };
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
                queue_gauge.sample(&sink);
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
                queue_gauge.sample(&sink);
                match msg {
                    Ok(AggregatedMessage::Text(text)) => handler.on_text(&text).await,
                    Ok(AggregatedMessage::Binary(_)) => {
                        metrics::counter!("gateway_frames_in_total", "type" => "binary").increment(1);
                        if handler.take(Bucket::Requests, None) {
                            sink.send(&ServerFrame::error(
                                ErrorCode::BinaryNotSupported,
                                "protocol v1 uses JSON text frames only",
                                None,
                            ));
                        }
                    }
                    Ok(AggregatedMessage::Ping(payload)) => {
                        sink.pong(&payload);
                    }
                    Ok(AggregatedMessage::Pong(_)) => {}
                    Ok(AggregatedMessage::Close(_)) => {
                        sink.close(CloseCode::Normal);
                        break;
                    }
                    Err(e) if verdict.get() != Verdict::Ok => {
                        let code = match verdict.get() {
                            Verdict::ControlTooBig => CloseCode::ProtocolError,
                            _ => CloseCode::TooBig,
                        };
                        tracing::info!(error = %e, close = code.code(), "frame header over the limit; closing");
                        sink.close(code);
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
    // Every way out of the loop ends the writer: without a close queued (peer gone, stream
    // ended) it would wait for frames forever, holding the socket and its slot.
    sink.close(CloseCode::Normal);
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
        // A new socket of this session may have subscribed while we were leaving; make sure
        // our unsubscribe did not take its channel away.
        if state.hub.contains(session_id) {
            if let Err(e) = state.feed.subscribe_session(session_id).await {
                tracing::debug!(error = %e, "resubscribe failed; the watchdog covers the gap");
            }
        }
    }
    queue_gauge.clear();
    metrics::gauge!("gateway_connections").decrement(1.0);
    tracing::debug!("disconnected");
}

/// Which token bucket a frame draws from.
#[derive(Clone, Copy)]
enum Bucket {
    Requests,
    Cancels,
}

/// The session's unfinished messages when it was resumed, until the client resumes them
/// (then [`Streams`] counts them) or they turn out finished.
struct Inherited {
    ids: HashSet<Uuid>,
    refreshed: Instant,
}

/// Handles the client's frames for one connection.
struct Handler {
    state: Arc<AppState>,
    session_id: Uuid,
    sink: Sink,
    streams: Arc<Streams>,
    inflight: Arc<Semaphore>,
    /// Chats whose start is in flight: a cancel behind one waits for it.
    starts: Starts,
    requests: Mutex<TokenBucket>,
    cancels: Mutex<TokenBucket>,
    inherited: Mutex<Inherited>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handler {
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

    async fn on_text(&self, text: &str) {
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
            ClientFrame::Heartbeat {} => {
                self.sink.send(&ServerFrame::HeartbeatAck {});
            }
            ClientFrame::Chat {
                content,
                message_id,
            } => {
                if self.take(Bucket::Requests, message_id) {
                    self.on_chat(content, message_id).await
                }
            }
            ClientFrame::Cancel { message_id } => {
                if self.take(Bucket::Cancels, Some(message_id)) {
                    self.on_cancel(message_id).await
                }
            }
            ClientFrame::Resume {
                message_id,
                after_seq,
            } => {
                if self.take(Bucket::Requests, Some(message_id)) {
                    lock(&self.inherited).ids.remove(&message_id);
                    self.streams.resume(message_id, after_seq)
                }
            }
        }
    }

    /// Whether the session already runs `MAX_GENERATIONS_PER_SESSION` answers: the messages
    /// this connection follows (started here, resumed, or starting) plus those it inherited
    /// from an earlier connection and has not resumed.
    async fn generations_full(&self, message_id: Uuid) -> bool {
        let max = self.state.config.max_generations_per_session;
        {
            let mut inh = lock(&self.inherited);
            // A retried chat of a message the session already runs starts nothing new.
            if inh.ids.remove(&message_id) {
                return false;
            }
            if self.streams.len() + inh.ids.len() < max {
                return false;
            }
            if inh.ids.is_empty() || inh.refreshed.elapsed() < INHERITED_REFRESH {
                return true;
            }
            inh.refreshed = Instant::now();
        }
        // Some inherited messages may have finished: ask the store which still run.
        match self.state.store.active(self.session_id).await {
            Ok(active) => {
                let still: HashSet<Uuid> = active.into_iter().map(|a| a.message_id).collect();
                lock(&self.inherited).ids.retain(|id| still.contains(id));
            }
            Err(e) => tracing::debug!(error = %e, "cannot list active messages"),
        }
        self.streams.len() + lock(&self.inherited).ids.len() >= max
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
        if self.generations_full(message_id).await {
            metrics::counter!("gateway_too_many_generations_total").increment(1);
            self.sink.send(&ServerFrame::error(
                ErrorCode::TooManyGenerations,
                format!(
                    "this session already runs {} answers (MAX_GENERATIONS_PER_SESSION); wait for one to finish",
                    self.state.config.max_generations_per_session
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
        // Registered before the next frame is read: a cancel right behind waits for it.
        let start = self.starts.begin(message_id);
        let (ai, sink, streams, session_id) = (
            self.state.ai.clone(),
            self.sink.clone(),
            self.streams.clone(),
            self.session_id,
        );
        actix_web::rt::spawn(
            async move {
                let _permit = permit;
                let _start = start;
                match ai.start(session_id, message_id, &content).await {
                    Ok(state) => {
                        sink.send(&ServerFrame::Ack { message_id });
                        // A retry of a message that already runs or finished: replay its log.
                        streams.release(message_id, state != shared_proto::MessageState::Queued);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "chat not accepted by the ai-service");
                        metrics::counter!("gateway_ai_errors_total", "code" => e.code().as_str())
                            .increment(1);
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
        let store = self.state.store.clone();
        // The chat of this message, if its start is still in flight: the cancel goes after it.
        let chat_started = self.starts.finished(message_id);
        actix_web::rt::spawn(
            async move {
                let _permit = permit;
                chat_started.await;
                let answer = match ai.cancel(session_id, message_id).await {
                    Ok(status) => Ok(status),
                    Err(e) => {
                        // A cancel is a store transition anyone may make: with the ai-service
                        // unreachable, make it here (its owner learns it from the nudge, its
                        // next append or its next lease renewal).
                        tracing::warn!(error = %e, "ai-service unreachable; cancelling in the store");
                        metrics::counter!("gateway_ai_errors_total", "code" => e.code().as_str())
                            .increment(1);
                        cancel_in_store(store.as_ref(), MessageRef::new(session_id, message_id))
                            .await
                            .map_err(|se| {
                                tracing::warn!(error = %se, "cancel failed in the store too");
                                e.code()
                            })
                    }
                };
                match answer {
                    Ok(status) => {
                        metrics::counter!("gateway_cancels_total", "status" => status.as_str())
                            .increment(1);
                        sink.send(&ServerFrame::CancelAck { message_id, status });
                    }
                    Err(code) => {
                        sink.send(&ServerFrame::error(
                            code,
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

/// The cancel transition made directly in the store (when the ai-service is unreachable), then
/// the nudge to the replica that runs the generation.
async fn cancel_in_store(
    store: &dyn store::Store,
    msg: MessageRef,
) -> Result<shared_proto::CancelStatus, store::StoreError> {
    // No canceller replica: nobody here waits for a late create (the ai-service is away).
    let outcome = store.cancel(&msg, "").await?;
    if let store::Cancelled::Ended { owner: Some(owner) } = &outcome {
        if let Err(e) = store.nudge(owner, &msg).await {
            tracing::debug!(error = %e, "nudge failed; the owner stops at its next write");
        }
    }
    Ok(outcome.status())
}
