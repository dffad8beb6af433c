//! The HTTP API.
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/sessions/{sid}/messages` `{message_id, content, user?}` | 202 `{message_id, status}`; 429 `quota_exceeded` (`retry_after_s`, `Retry-After`) when `user`'s budget is spent |
//! | `POST /v1/sessions/{sid}/messages/{mid}/cancel` | 200 `{status}`, or 404 `{"status":"not_found"}` |
//! | `GET /v1/sessions/{sid}/messages/{mid}` | 200 `{state, last_seq, text, error?, usage?}` or 404 |
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 when Redis answers and the service takes messages, else 503 |
//!
//! `/metrics` and the admin API are on the admin port ([`crate::admin`]), not here.
//!
//! Errors are `{"error": {code, message}}` with a stable code. With `AI_SERVICE_TOKEN` set,
//! every `/v1` route answers 401 `unauthorized` without `Authorization: Bearer <token>`.
//!
//! Every request passes [`service_kit::access_log`] (wired in `server.rs`): one access log
//! line, `X-Request-Id`, and a server span continuing the caller's `traceparent`; a started
//! message's generation is a child of that span ([`Origin`]).

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpResponse, ResponseError};
use shared_proto::api::{ApiError, CancelResponse, StartMessageRequest, StartMessageResponse};
use shared_proto::{CancelStatus, ErrorBody, ErrorCode};
use store::{Feed, MessageRef, StoreError};
use uuid::Uuid;

use crate::auth::ApiAuth;
use crate::origin::Origin;
use crate::service::{Service, Started};

/// Largest accepted request body.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the handlers share.
pub struct ApiState {
    pub service: Arc<Service>,
    pub feed: Arc<dyn Feed>,
}

/// An API error with its HTTP status.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HttpError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    /// Sent as `retry_after_s` in the body and as `Retry-After`.
    retry_after_s: Option<u64>,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// 429 `quota_exceeded`: the user's budget frees in `retry_after` (rounded up to whole
    /// seconds, at least 1, so that a client never retries at once).
    fn quota_exceeded(retry_after: Duration) -> Self {
        let secs = retry_after.as_millis().div_ceil(1000).max(1) as u64;
        HttpError {
            retry_after_s: Some(secs),
            ..HttpError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::QuotaExceeded,
                format!("this user's token budget is spent; it frees in {secs} s"),
            )
        }
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store error");
        metrics::counter!("streamline_ai_store_errors_total").increment(1);
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable,
            "the store (Redis) is unavailable",
        )
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        let mut error = ErrorBody::new(self.code, self.message.clone());
        if let Some(secs) = self.retry_after_s {
            resp.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
            error.retry_after_s = Some(secs);
        }
        resp.json(ApiError { error })
    }
}

pub(crate) fn parse_id(s: &str, what: &str) -> Result<Uuid, HttpError> {
    Uuid::parse_str(s).map_err(|_| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMessageId,
            format!("{what} is not a UUID"),
        )
    })
}

/// The JSON body limit and a JSON error for a body that does not parse.
pub(crate) fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| {
            let message = err.to_string();
            HttpError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidFrame, message).into()
        })
}

/// Registers the routes on an actix app; the app also holds the [`ApiAuth`] of
/// `AI_SERVICE_TOKEN` (see [`require_token`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .route("/healthz", web::get().to(service_kit::healthz))
        .route("/readyz", web::get().to(readyz))
        .service(
            web::scope("/v1")
                .wrap(from_fn(require_token))
                .route(
                    "/sessions/{session_id}/messages",
                    web::post().to(start_message),
                )
                .route(
                    "/sessions/{session_id}/messages/{message_id}",
                    web::get().to(get_message),
                )
                .route(
                    "/sessions/{session_id}/messages/{message_id}/cancel",
                    web::post().to(cancel_message),
                ),
        );
}

/// The app's bearer token on every route of the scope it wraps (before the body is read):
/// `AI_SERVICE_TOKEN` on `/v1`, `ADMIN_TOKEN` on `/admin` (each app holds its own [`ApiAuth`]).
pub(crate) async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let allowed = match req.app_data::<web::Data<ApiAuth>>() {
        Some(auth) => auth.allows(req.headers().get(actix_web::http::header::AUTHORIZATION)),
        // Misconfigured app: fail closed.
        None => false,
    };
    if !allowed {
        metrics::counter!("streamline_ai_api_unauthorized_total").increment(1);
        let resp = HttpResponse::Unauthorized()
            .insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"))
            .json(ApiError {
                error: ErrorBody::new(
                    ErrorCode::Unauthorized,
                    "a valid `Authorization: Bearer` token is required",
                ),
            });
        return Ok(req.into_response(resp));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// Ready, or why not. Also sets `streamline_ai_ready` (1 or 0), so that the scrape and the
/// alert rules see what `/readyz` answers.
pub(crate) async fn readiness(state: &ApiState) -> Result<(), String> {
    let result = if state.service.is_draining() {
        Err("draining".to_string())
    } else if !state.feed.is_connected() {
        Err("redis subscriber disconnected".to_string())
    } else {
        match tokio::time::timeout(Duration::from_secs(1), state.service.store().ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("redis: {e}")),
            Err(_) => Err("redis: timeout".to_string()),
        }
    };
    metrics::gauge!("streamline_ai_ready").set(if result.is_ok() { 1.0 } else { 0.0 });
    result
}

pub(crate) async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    match readiness(&state).await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(why) => HttpResponse::ServiceUnavailable().body(why),
    }
}

async fn start_message(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Json<StartMessageRequest>,
) -> Result<HttpResponse, HttpError> {
    let session_id = parse_id(&path, "session_id")?;
    let StartMessageRequest {
        message_id,
        content,
        user,
    } = body.into_inner();
    if content.trim().is_empty() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::EmptyContent,
            "content is empty",
        ));
    }
    let msg = MessageRef::new(session_id, message_id);
    match state
        .service
        .start_message(msg, content, user, Origin::here())
        .await?
    {
        Started::Accepted(status) => {
            Ok(HttpResponse::Accepted().json(StartMessageResponse { message_id, status }))
        }
        Started::ShuttingDown => Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ShuttingDown,
            "this replica is shutting down; retry on another",
        )),
        Started::QuotaExceeded { retry_after } => Err(HttpError::quota_exceeded(retry_after)),
    }
}

async fn cancel_message(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, HttpError> {
    let msg = MessageRef::new(
        parse_id(&path.0, "session_id")?,
        parse_id(&path.1, "message_id")?,
    );
    let status = state.service.cancel(msg).await?;
    metrics::counter!("streamline_ai_cancels_total", "status" => status.as_str()).increment(1);
    let code = if status == CancelStatus::NotFound {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(code).json(CancelResponse { status }))
}

async fn get_message(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, HttpError> {
    let msg = MessageRef::new(
        parse_id(&path.0, "session_id")?,
        parse_id(&path.1, "message_id")?,
    );
    match state.service.view(msg).await? {
        Some(view) => Ok(HttpResponse::Ok().json(view)),
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ResumeUnavailable,
            "no such message (unknown, or expired)",
        )),
    }
}
