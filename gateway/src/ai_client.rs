//! The gateway's client of the ai-service HTTP API.

use std::time::Duration;

use service_kit::Secret;
use shared_proto::api::{ApiError, CancelResponse, StartMessageRequest, StartMessageResponse};
use shared_proto::{CancelStatus, ErrorCode, MessageState};
use tracing::Instrument as _;
use uuid::Uuid;

/// Why a call to the ai-service failed; maps to the client's error code.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    #[error("ai-service unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("ai-service answered {status}: {body}")]
    Status {
        status: u16,
        /// The stable code of its `{"error": {code, message}}` body, when it sent one.
        code: Option<ErrorCode>,
        /// Its `retry_after_s` (`quota_exceeded`).
        retry_after_s: Option<u64>,
        body: String,
    },
}

impl AiError {
    /// An error answer, keeping the code of its API error body.
    async fn from_response(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let error = serde_json::from_str::<ApiError>(&body)
            .ok()
            .map(|e| e.error);
        AiError::Status {
            status,
            code: error.as_ref().map(|e| e.code),
            retry_after_s: error.and_then(|e| e.retry_after_s),
            body,
        }
    }

    /// When the client may retry, in seconds (`quota_exceeded`).
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            AiError::Status { retry_after_s, .. } => *retry_after_s,
            AiError::Unreachable(_) => None,
        }
    }

    /// The code the client sees: the ai-service's own where it means something to the client,
    /// `ai_service_unavailable` otherwise.
    pub fn code(&self) -> ErrorCode {
        match self {
            AiError::Status {
                code:
                    Some(
                        code @ (ErrorCode::ShuttingDown
                        | ErrorCode::StoreUnavailable
                        | ErrorCode::EmptyContent
                        | ErrorCode::QuotaExceeded),
                    ),
                ..
            } => *code,
            _ => ErrorCode::AiServiceUnavailable,
        }
    }
}

/// The client span of one call to the ai-service (a child of the current span: the chat's).
fn client_span(route: &'static str) -> tracing::Span {
    tracing::info_span!(
        "ai_service_request",
        otel.name = route,
        otel.kind = "client",
        http.request.method = "POST",
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    )
}

/// Retries of a `chat`'s POST after a connect failure or a draining replica (100 ms, 300 ms).
const START_RETRIES: u32 = 2;

/// HTTP client of one ai-service base URL (usually a Service in front of the replicas).
#[derive(Clone)]
pub struct AiClient {
    http: reqwest::Client,
    base: String,
    /// `Authorization` header value (`Bearer …`) when `AI_SERVICE_TOKEN` is set.
    auth: Option<reqwest::header::HeaderValue>,
}

impl std::fmt::Debug for AiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiClient")
            .field("base", &self.base)
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Why the ai-service client could not be built (at start: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum AiClientError {
    #[error("AI_SERVICE_URL: {0}")]
    Http(#[from] reqwest::Error),
    #[error("AI_SERVICE_TOKEN is not a valid HTTP header value")]
    Token,
}

impl AiClient {
    /// A client of `base`, sending `Authorization: Bearer <token>` with every request when
    /// `AI_SERVICE_TOKEN` is set. A token that cannot be sent is refused here, never dropped.
    pub fn new(base: &str, token: Option<&Secret>) -> Result<Self, AiClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(256)
            .build()?;
        let auth = match token {
            Some(t) => {
                let mut v =
                    reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                        .map_err(|_| AiClientError::Token)?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(AiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth,
        })
    }

    /// A POST carrying the bearer token and the `traceparent` of `span` (the call's client
    /// span: the ai-service's request span becomes its child).
    fn post(&self, url: String, span: &tracing::Span) -> reqwest::RequestBuilder {
        let mut req = self.http.post(url);
        if let Some(v) = &self.auth {
            req = req.header(reqwest::header::AUTHORIZATION, v.clone());
        }
        if let Some(tp) = service_kit::trace_context::traceparent_of_span(span) {
            req = req.header(service_kit::trace_context::TRACEPARENT, tp);
        }
        req
    }

    /// Starts (or idempotently re-acknowledges) a message for `user` (the connection's JWT
    /// `sub`; None: anonymous), which the ai-service trusts over `AI_SERVICE_TOKEN`.
    pub async fn start(
        &self,
        session_id: Uuid,
        message_id: Uuid,
        content: &str,
        user: Option<&str>,
    ) -> Result<MessageState, AiError> {
        let url = format!("{}/v1/sessions/{session_id}/messages", self.base);
        let body = StartMessageRequest {
            message_id,
            content: content.to_string(),
            user: user.map(str::to_string),
        };
        // The POST is idempotent on message_id, so a replica that is draining (503
        // shutting_down) or a connection that could not be made is retried: behind a Service
        // or balancer the retry usually reaches another replica during a rolling restart.
        let mut attempt = 0;
        loop {
            let result = self.start_once(&url, &body).await;
            let retryable = match &result {
                Err(AiError::Unreachable(e)) => e.is_connect(),
                Err(e @ AiError::Status { .. }) => e.code() == ErrorCode::ShuttingDown,
                Ok(_) => false,
            };
            if !retryable || attempt >= START_RETRIES {
                return result;
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(100 * 3u64.pow(attempt - 1))).await;
        }
    }

    async fn start_once(
        &self,
        url: &str,
        body: &StartMessageRequest,
    ) -> Result<MessageState, AiError> {
        let span = client_span("POST /v1/sessions/{session_id}/messages");
        async {
            let resp = self.post(url.to_string(), &span).json(body).send().await?;
            let status = resp.status();
            tracing::Span::current().record("http.response.status_code", status.as_u16());
            if status.is_success() {
                let parsed: StartMessageResponse = resp.json().await?;
                return Ok(parsed.status);
            }
            Err(AiError::from_response(resp).await)
        }
        .instrument(span.clone())
        .await
    }

    /// Cancels a message; `not_found` is an answer, not an error.
    pub async fn cancel(
        &self,
        session_id: Uuid,
        message_id: Uuid,
    ) -> Result<CancelStatus, AiError> {
        let url = format!(
            "{}/v1/sessions/{session_id}/messages/{message_id}/cancel",
            self.base
        );
        let span = client_span("POST /v1/sessions/{session_id}/messages/{message_id}/cancel");
        let resp = self
            .post(url, &span)
            .send()
            .instrument(span.clone())
            .await?;
        let status = resp.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_success() || status.as_u16() == 404 {
            if let Ok(parsed) = resp.json::<CancelResponse>().await {
                return Ok(parsed.status);
            }
            if status.as_u16() == 404 {
                return Ok(CancelStatus::NotFound);
            }
            return Err(AiError::Status {
                status: status.as_u16(),
                code: None,
                retry_after_s: None,
                body: "unreadable body".into(),
            });
        }
        Err(AiError::from_response(resp).await)
    }
}
