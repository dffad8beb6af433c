//! `GET /ws`: who may connect, to which session, and the upgrade.
//!
//! The handshake checks, in order: draining (503), `Origin` against `ALLOWED_ORIGINS` (403),
//! the JWT when a JWT key is configured (401; the verified `sub` and `exp` are what the
//! connection runs on, see `security::conn_token`), the connection limits (503), the resume token,
//! which is bound to the JWT's `sub` (401), then the WebSocket upgrade itself (actix-ws's own
//! 400 for a bad handshake), then the session's subscription (503 if the store is away). Every
//! refusal of ours is a [`Refusal`]: an HTTP status with `{"error":{code,message}}`; see
//! `docs/SECURITY.md`. An accepted connection is registered with the hub, gets its `welcome`,
//! and its read loop (`socket::read_loop`) starts as a tracked task.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::MessageBody as _;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use shared_proto::{ActiveMessage, CloseCode, ErrorCode, ServerFrame, PROTOCOL_VERSION};
use tracing::Instrument;
use uuid::Uuid;

use super::frame_guard::{FrameGuard, VerdictCell};
use super::read_loop::{self, Conn};
use crate::delivery::hub::Connection;
use crate::delivery::streams::Streams;
use crate::security::bearer::offered_token;
use crate::security::conn_limits::ConnGuard;
use crate::security::conn_token::ConnToken;
use crate::security::jwt::{JwtError, Verified};
use crate::sink::{PullSignal, Sink, SinkLimits};
use crate::state::AppState;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// `GET /ws` query: `session_id` + `resume_token` when resuming a session; `token` (a JWT)
/// when JWTs are required and the client does not use `Sec-WebSocket-Protocol`; `caps`, the
/// client's capabilities (a comma list; unknown ones are ignored, so that clients can announce
/// capabilities of later gateways).
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    pub session_id: Option<String>,
    pub resume_token: Option<String>,
    pub token: Option<String>,
    pub caps: Option<String>,
}

impl WsQuery {
    /// Whether the client announced capability `cap` (`caps=merge,…`).
    fn has_cap(&self, cap: &str) -> bool {
        self.caps
            .as_deref()
            .is_some_and(|caps| caps.split(',').any(|c| c.trim() == cap))
    }
}

/// Why a handshake was refused; each is one HTTP answer with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Draining,
    Origin,
    Auth(JwtError),
    Limit(crate::security::conn_limits::Refusal),
    BadResumeToken,
    HalfResume,
    Store,
}

impl Refusal {
    /// The `reason` label of `streamline_gateway_connections_refused_total`.
    fn reason(self) -> &'static str {
        match self {
            Refusal::Draining => "draining",
            Refusal::Origin => "origin",
            Refusal::Auth(_) => "auth",
            Refusal::Limit(limit) => limit.as_str(),
            Refusal::BadResumeToken | Refusal::HalfResume => "resume",
            Refusal::Store => "store",
        }
    }

    fn response(self) -> HttpResponse {
        let (status, code, message) = match self {
            Refusal::Draining => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ShuttingDown,
                "this gateway is shutting down",
            ),
            Refusal::Origin => (
                StatusCode::FORBIDDEN,
                ErrorCode::OriginNotAllowed,
                "this origin may not open a connection",
            ),
            Refusal::Auth(_) => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "a valid token is required (JWT in `token` or Sec-WebSocket-Protocol `bearer.<jwt>`)",
            ),
            Refusal::Limit(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TooManyConnections,
                "too many connections; try again later",
            ),
            Refusal::BadResumeToken => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidFrame,
                "invalid session_id or resume_token",
            ),
            Refusal::HalfResume => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidFrame,
                "session_id and resume_token go together",
            ),
            Refusal::Store => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StoreUnavailable,
                "the store (Redis) is unavailable",
            ),
        };
        metrics::counter!("streamline_gateway_connections_refused_total", "reason" => self.reason())
            .increment(1);
        let mut resp = HttpResponse::build(status).json(shared_proto::api::ApiError {
            error: shared_proto::ErrorBody::new(code, message),
        });
        if let Refusal::Auth(_) = self {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// A client the checks let in, before the upgrade.
struct Admitted {
    /// The verified JWT (None: anonymous mode).
    identity: Option<Verified>,
    /// The `Sec-WebSocket-Protocol` to select in the answer.
    protocol: Option<String>,
    /// The connection's slot under the limits.
    guard: ConnGuard,
    session_id: Uuid,
    /// The session's unfinished messages (a resumed session).
    active: Vec<ActiveMessage>,
}

/// `GET /ws`.
pub async fn ws_route(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<WsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let admitted = match admit(&req, &query, &state).await {
        Ok(a) => a,
        Err(refusal) => return Ok(refusal.response()),
    };
    let session_id = admitted.session_id;
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
    let protocols: Vec<&str> = admitted.protocol.as_deref().into_iter().collect();
    let (response, session, messages) = actix_ws::handle_with_protocols(&req, body, &protocols)?;
    // Subscribe before anything can be published for this connection to see (and only once
    // the handshake is known to succeed, so a refused upgrade leaves no subscription behind).
    if let Err(e) = state.feed.subscribe_session(session_id).await {
        tracing::warn!(%session_id, error = %e, "cannot subscribe; refusing the connection");
        return Ok(Refusal::Store.response());
    }
    let messages = messages
        .max_frame_size(state.config.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(state.config.max_frame_bytes);

    let conn_id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    let limits = SinkLimits {
        max_queue_bytes: state.config.send_queue_bytes,
        send_timeout: state.config.send_timeout,
        merge_chunks: query.has_cap("merge"),
    };
    // A merging client's writer waits until actix has taken each frame (sink/pulled.rs), so
    // its backlog stays in the sink's queue, where it merges.
    let mut pulled = None;
    let response = if limits.merge_chunks {
        response.map_body(|_, body| {
            let (signal, body) = PullSignal::wrap(body);
            pulled = Some(signal);
            body.boxed()
        })
    } else {
        response
    };
    let sink = Sink::start(session, pulled, limits, session_id, &state.tasks);
    let streams = Streams::new(
        session_id,
        sink.clone(),
        state.store.clone(),
        state.tasks.clone(),
        state.follower_patience,
        state.hub.outages.clone(),
    );
    let connection = Connection {
        conn_id,
        sink: sink.clone(),
        streams: streams.clone(),
    };
    let registered =
        state
            .hub
            .register(session_id, connection, state.config.max_sockets_per_session);
    if let Some(oldest) = registered.evicted {
        // More sockets of the session than MAX_SOCKETS_PER_SESSION: the oldest makes room.
        oldest.sink.close(CloseCode::SessionReplaced);
    }
    let inherited: HashSet<Uuid> = admitted.active.iter().map(|a| a.message_id).collect();
    sink.send(&ServerFrame::Welcome {
        session_id,
        resume_token: state.tokens.issue_for(
            admitted.identity.as_ref().map(|v| v.sub.as_str()),
            session_id,
        ),
        protocol: PROTOCOL_VERSION,
        heartbeat_interval_ms: state.config.heartbeat_interval.as_millis() as u64,
        active: admitted.active,
    });
    // A root of its own: the handshake's request span ends with the 101, while the
    // connection lasts as long as its socket (and is not exported as a trace: every chat in
    // it is one).
    let span = tracing::info_span!(parent: None, "connection", %session_id, conn_id);
    let conn = Conn {
        session_id,
        conn_id,
        sink,
        streams,
        inherited,
        verdict,
        guard: admitted.guard,
        starts: registered.starts,
        token: admitted.identity.map(ConnToken::new),
    };
    let tasks = state.tasks.clone();
    tasks.spawn_local(read_loop::run(state.into_inner(), conn, messages).instrument(span));
    Ok(response)
}

/// Every check before the upgrade, in the documented order.
async fn admit(req: &HttpRequest, query: &WsQuery, state: &AppState) -> Result<Admitted, Refusal> {
    if state.is_draining() {
        return Err(Refusal::Draining);
    }
    let origin = req.headers().get(header::ORIGIN).map(|v| v.as_bytes());
    if !state.security.origins.allows(origin) {
        tracing::info!(origin = ?origin.map(String::from_utf8_lossy), "origin not allowed");
        return Err(Refusal::Origin);
    }
    let (identity, protocol) = authenticate(req, query, state).await.map_err(|e| {
        metrics::counter!("streamline_gateway_auth_failures_total", "reason" => e.as_str())
            .increment(1);
        tracing::info!(reason = e.as_str(), "handshake without a valid JWT");
        Refusal::Auth(e)
    })?;
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let forwarded = header_values(req, header::X_FORWARDED_FOR);
    let client_ip = state.security.proxies.client_ip(peer, &forwarded);
    let guard = state
        .security
        .connections
        .acquire(client_ip)
        .map_err(|limit| {
            tracing::warn!(%client_ip, limit = limit.as_str(), "connection refused: limit reached");
            Refusal::Limit(limit)
        })?;
    let (session_id, resumed) = match (&query.session_id, &query.resume_token) {
        (None, None) => (Uuid::new_v4(), false),
        (Some(sid), Some(token)) => match Uuid::parse_str(sid) {
            // The token is bound to the JWT's `sub`: another user's session does not verify,
            // exactly like an unknown one.
            Ok(sid)
                if state.tokens.verify_for(
                    identity.as_ref().map(|v| v.sub.as_str()),
                    sid,
                    token,
                ) =>
            {
                (sid, true)
            }
            _ => return Err(Refusal::BadResumeToken),
        },
        _ => return Err(Refusal::HalfResume),
    };
    let active = if resumed {
        state.store.active(session_id).await.unwrap_or_else(|e| {
            tracing::warn!(%session_id, error = %e, "cannot list active messages");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    Ok(Admitted {
        identity,
        protocol,
        guard,
        session_id,
        active,
    })
}

/// All values of a header that are valid text.
fn header_values(req: &HttpRequest, name: header::HeaderName) -> Vec<&str> {
    req.headers()
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The JWT check: the verified token (None in anonymous mode) and the protocol to select.
async fn authenticate(
    req: &HttpRequest,
    query: &WsQuery,
    state: &AppState,
) -> Result<(Option<Verified>, Option<String>), JwtError> {
    let protocols = header_values(req, header::SEC_WEBSOCKET_PROTOCOL);
    let offered = offered_token(&protocols, query.token.as_deref());
    let protocol = offered.as_ref().and_then(|o| o.protocol.clone());
    let Some(verifier) = &state.security.jwt else {
        // Anonymous mode: a token is ignored, but a protocol that carried one is still
        // selected so that the client's handshake completes.
        return Ok((None, protocol));
    };
    let offered = offered.ok_or(JwtError::Missing)?;
    let verified = verifier.verify(&offered.token).await?;
    Ok((Some(verified), protocol))
}
