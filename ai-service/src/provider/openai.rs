//! A provider for OpenAI-compatible chat servers (OpenAI, vLLM, llama-server, Ollama, ...).
//!
//! It sends `POST {base_url}/chat/completions` with `stream: true` and turns the server-sent
//! events of the answer into [`ProviderEvent`]s.
//!
//! # Cancellation
//!
//! Everything a generation needs lives inside the returned stream: the in-flight request, the
//! response body and the SSE parser. Nothing is spawned. Dropping the stream therefore drops
//! the `reqwest::Response`, and hyper closes the TCP connection (HTTP/1.1: a connection with an
//! unread body cannot be reused; HTTP/2: the stream is reset). The model server sees its
//! client go away and stops generating, which is what makes cancel cheap and immediate.
//!
//! # Bounded waiting
//!
//! Every await is bounded: connecting by `connect_timeout`; everything up to the first token
//! (including retries and their back-off) by one `first_token_timeout` deadline measured from
//! the first poll; each wait for a further token by `idle_timeout` since the previous token.
//! The consumer's own pace does not count against the timers, since the deadline is only
//! checked while we wait on the network.
//!
//! # Retries
//!
//! A request is retried (exponential back-off with jitter, at least `Retry-After` when the
//! server sends one) on 429, 5xx, connection failures and bodies that end before any token, but
//! only while no token has been handed to the caller: after that a retry would produce a
//! second, different answer glued to the first.
//!
//! # Secrets
//!
//! The API key is sent as a sensitive header and scrubbed from every error message (some
//! servers echo the key they rejected); reqwest errors are reported without their URL.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;
use shared_proto::{ErrorCode, Usage};
use tokio::time::{timeout_at, Instant};
use tracing::Instrument as _;
use uuid::Uuid;

use super::sse::{SseEvent, SseParser};
use super::{GenerationRequest, Provider, ProviderError, ProviderEvent, ProviderStream, Role};

/// Default for [`OpenAiConfig::first_token_timeout`]: generous, because a local server may
/// spend a long time on prompt processing (or loading the model) before the first token.
pub const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`OpenAiConfig::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`OpenAiConfig::max_retries`].
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Default for [`OpenAiConfig::retry_base_delay`].
pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_millis(500);
/// Default for [`OpenAiConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest exponential back-off step (a `Retry-After` may ask for more; the first-token
/// deadline still bounds it).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How much of an error body we read to find the upstream's message.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;
/// How much of a non-streaming (JSON) answer we accept from a server that ignored `stream`.
const MAX_JSON_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long an upstream message may be inside our error messages.
const MAX_UPSTREAM_MESSAGE_CHARS: usize = 300;
/// After `[DONE]`, how long we keep reading for the end of the body. Reading the body to its
/// end is what lets hyper put the connection back into the pool; servers normally end it
/// right after `[DONE]`, so this only costs time with a server that keeps the body open.
const DRAIN_AFTER_DONE: Duration = Duration::from_millis(500);
const MAX_DRAIN_BYTES: usize = 64 * 1024;

/// Settings of the OpenAI-compatible provider.
///
/// `Debug` never shows the API key.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// The API root, including the version segment, e.g. `http://localhost:11434/v1` (Ollama),
    /// `http://localhost:8080/v1` (llama-server) or `https://api.openai.com/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>` when set; local servers usually need none.
    pub api_key: Option<String>,
    /// The `model` field of the request.
    pub model: String,
    /// Sent as the first message (role `system`) when set.
    pub system_prompt: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// Longest wait from the start of a generation to its first token, retries included.
    pub first_token_timeout: Duration,
    /// Longest wait between two tokens once the first has arrived.
    pub idle_timeout: Duration,
    /// How many times a failed attempt is retried before the first token (0 = never).
    pub max_retries: u32,
    /// First back-off step; it doubles with each retry (with jitter), up to 30 s.
    pub retry_base_delay: Duration,
    /// Longest wait for a TCP (and TLS) connection to the server.
    pub connect_timeout: Duration,
}

impl OpenAiConfig {
    /// A configuration with the documented defaults for everything but the server and model.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            system_prompt: None,
            max_tokens: None,
            temperature: None,
            first_token_timeout: DEFAULT_FIRST_TOKEN_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("system_prompt", &self.system_prompt)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("first_token_timeout", &self.first_token_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Why [`OpenAiProvider::new`] refused a configuration.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiSetupError {
    #[error("invalid base_url: {0}")]
    InvalidBaseUrl(String),
    #[error("model must not be empty")]
    EmptyModel,
    #[error("api_key is empty or contains characters not allowed in an HTTP header")]
    InvalidApiKey,
    #[error("{0} must be greater than zero")]
    ZeroTimeout(&'static str),
    #[error("temperature must be a finite number")]
    InvalidTemperature,
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Streams answers from an OpenAI-compatible server.
///
/// Cheap to share: it holds one `reqwest::Client`, whose connection pool all generations use.
#[derive(Clone)]
pub struct OpenAiProvider {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: OpenAiConfig,
    client: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("cfg", &self.inner.cfg)
            .finish()
    }
}

impl OpenAiProvider {
    /// Validates `cfg` and builds the HTTP client. No connection is made here.
    pub fn new(cfg: OpenAiConfig) -> Result<Self, OpenAiSetupError> {
        let endpoint = chat_completions_url(&cfg.base_url)?;
        if cfg.model.trim().is_empty() {
            return Err(OpenAiSetupError::EmptyModel);
        }
        for (name, value) in [
            ("first_token_timeout", cfg.first_token_timeout),
            ("idle_timeout", cfg.idle_timeout),
            ("connect_timeout", cfg.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(OpenAiSetupError::ZeroTimeout(name));
            }
        }
        if cfg.temperature.is_some_and(|t| !t.is_finite()) {
            return Err(OpenAiSetupError::InvalidTemperature);
        }

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(key) = &cfg.api_key {
            if key.is_empty() {
                return Err(OpenAiSetupError::InvalidApiKey);
            }
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| OpenAiSetupError::InvalidApiKey)?;
            // Keeps the value out of hyper's and reqwest's debug output.
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }

        let client = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            // A redirected POST turns into a GET and may carry the key elsewhere: refuse.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("ai-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OpenAiSetupError::Client(e.without_url()))?;

        Ok(OpenAiProvider {
            inner: Arc::new(Inner {
                cfg,
                client,
                endpoint,
                headers,
            }),
        })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.inner.cfg
    }

    /// The URL requests go to (`{base_url}/chat/completions`).
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }
}

fn chat_completions_url(base_url: &str) -> Result<Url, OpenAiSetupError> {
    let trimmed = base_url.trim().trim_end_matches('/');
    let url = Url::parse(&format!("{trimmed}/chat/completions"))
        .map_err(|e| OpenAiSetupError::InvalidBaseUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OpenAiSetupError::InvalidBaseUrl(format!(
            "scheme `{}` is not http or https",
            url.scheme()
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(OpenAiSetupError::InvalidBaseUrl(
            "must not have a query or fragment".into(),
        ));
    }
    Ok(url)
}

impl Provider for OpenAiProvider {
    fn stream(&self, request: GenerationRequest) -> ProviderStream {
        let body = match request_body(&self.inner.cfg, &request) {
            Ok(body) => body,
            Err(e) => {
                let err = ProviderError::new(
                    ErrorCode::Internal,
                    format!("could not encode the request: {e}"),
                );
                return Box::pin(stream::once(async move { Err(err) }));
            }
        };
        let generation = Generation {
            inner: self.inner.clone(),
            body,
            message_id: request.message_id,
            phase: Phase::Request,
            progress: Progress::default(),
        };
        Box::pin(stream::unfold(generation, |mut g| async move {
            let item = g.next().await?;
            Some((item, g))
        }))
    }

    fn name(&self) -> &'static str {
        "openai"
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: Role,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    /// Asks for a final chunk with token counts (OpenAI, vLLM, Ollama and llama-server
    /// understand it; servers that do not simply ignore it).
    include_usage: bool,
}

/// The JSON body: system prompt, then the history in order, then the new user message.
fn request_body(cfg: &OpenAiConfig, request: &GenerationRequest) -> serde_json::Result<Bytes> {
    let mut messages = Vec::with_capacity(request.history.len() + 2);
    if let Some(system) = &cfg.system_prompt {
        messages.push(ChatMessage {
            role: Role::System,
            content: system,
        });
    }
    messages.extend(request.history.iter().map(|turn| ChatMessage {
        role: turn.role,
        content: &turn.content,
    }));
    messages.push(ChatMessage {
        role: Role::User,
        content: &request.content,
    });
    let body = ChatRequest {
        model: &cfg.model,
        messages,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens: cfg.max_tokens,
        temperature: cfg.temperature,
    };
    serde_json::to_vec(&body).map(Bytes::from)
}

/// One generation: the state machine behind the stream.
struct Generation {
    inner: Arc<Inner>,
    body: Bytes,
    message_id: Uuid,
    phase: Phase,
    progress: Progress,
}

// One `Phase` per generation, inside a stream that is boxed anyway: the size difference
// between variants costs nothing worth an extra allocation per attempt.
#[allow(clippy::large_enum_variant)]
enum Phase {
    /// The next step is to send a request (first attempt or retry).
    Request,
    /// Reading the SSE body of a successful response.
    Reading {
        response: Response,
        parser: SseParser,
    },
    /// Nothing more will be read; the queue holds whatever is left to hand out.
    Ended,
}

/// What has been learnt from the upstream so far; kept apart from [`Phase`] so that both can be
/// borrowed at once.
#[derive(Default)]
struct Progress {
    /// When the current wait gives up: first-token deadline, then last token + idle timeout.
    /// Set on first poll, so that building a stream that is never polled starts no clock.
    deadline: Option<Instant>,
    /// Requests sent so far.
    attempts: u32,
    /// Whether a token has been handed to the caller; from then on nothing is retried.
    got_token: bool,
    /// The `finish_reason` of the answer, once seen: the answer is complete.
    finish_reason: Option<String>,
    /// The latest token counts; handed out once, just before the end.
    usage: Option<Usage>,
    /// Decoded steps not yet handed out, in order.
    queue: VecDeque<Step>,
}

enum Step {
    Event(ProviderEvent),
    /// The answer is complete (`[DONE]`, or the end of the body after a `finish_reason`).
    Complete,
    Fail(Failure),
}

struct Failure {
    error: ProviderError,
    /// Whether another attempt may fix it (only used before the first token).
    retryable: bool,
    /// The server's `Retry-After`, if it sent one.
    retry_after: Option<Duration>,
}

impl Failure {
    fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            error: ProviderError::new(code, message),
            retryable: false,
            retry_after: None,
        }
    }

    fn transient(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            error: ProviderError::new(code, message),
            retryable: true,
            retry_after: None,
        }
    }
}

impl Generation {
    /// The next item of the stream; `None` once the answer is complete or has failed.
    async fn next(&mut self) -> Option<Result<ProviderEvent, ProviderError>> {
        let cfg = &self.inner.cfg;
        if self.progress.deadline.is_none() {
            self.progress.deadline = Some(after(cfg.first_token_timeout));
        }
        loop {
            if let Some(step) = self.progress.queue.pop_front() {
                match step {
                    Step::Event(event) => {
                        if matches!(event, ProviderEvent::Token(_)) {
                            self.progress.got_token = true;
                            self.progress.deadline = Some(after(cfg.idle_timeout));
                        }
                        return Some(Ok(event));
                    }
                    Step::Complete => {
                        if let Phase::Reading { response, .. } = &mut self.phase {
                            drain(response).await;
                        }
                        self.phase = Phase::Ended;
                        self.progress.queue.clear();
                        tracing::debug!(
                            message_id = %self.message_id,
                            finish_reason = self.progress.finish_reason.as_deref().unwrap_or("-"),
                            "upstream answer complete"
                        );
                        return self
                            .progress
                            .usage
                            .take()
                            .map(|u| Ok(ProviderEvent::Usage(u)));
                    }
                    Step::Fail(failure) => {
                        // Drop the connection before any back-off.
                        self.phase = Phase::Ended;
                        self.progress.queue.clear();
                        match self.retry_delay(&failure) {
                            Some(delay) => {
                                tracing::debug!(
                                    message_id = %self.message_id,
                                    attempt = self.progress.attempts,
                                    delay_ms = delay.as_millis() as u64,
                                    error = %failure.error,
                                    "retrying upstream request"
                                );
                                tokio::time::sleep(delay).await;
                                self.progress.finish_reason = None;
                                self.progress.usage = None;
                                self.phase = Phase::Request;
                                continue;
                            }
                            None => {
                                let mut error = failure.error;
                                if self.progress.attempts > 1 {
                                    error.message.push_str(&format!(
                                        " (after {} attempts)",
                                        self.progress.attempts
                                    ));
                                }
                                return Some(Err(error));
                            }
                        }
                    }
                }
            }

            let deadline = self.progress.deadline.unwrap_or_else(Instant::now);
            match &mut self.phase {
                Phase::Ended => return None,
                Phase::Request => {
                    self.progress.attempts = self.progress.attempts.saturating_add(1);
                    match self.send(deadline).await {
                        Ok(Answer::Sse(response)) => {
                            self.phase = Phase::Reading {
                                response,
                                parser: SseParser::new(),
                            }
                        }
                        Ok(Answer::Steps(steps)) => {
                            self.phase = Phase::Ended;
                            self.progress.queue.extend(steps);
                        }
                        Err(failure) => self.progress.queue.push_back(Step::Fail(failure)),
                    }
                }
                Phase::Reading { response, parser } => {
                    let read = timeout_at(deadline, response.chunk()).await;
                    let progress = &mut self.progress;
                    match read {
                        Ok(Ok(Some(bytes))) => match parser.push(&bytes) {
                            Ok(events) => {
                                progress.handle_events(events, &self.inner.cfg);
                            }
                            Err(e) => progress.queue.push_back(Step::Fail(Failure::fatal(
                                ErrorCode::UpstreamError,
                                format!("unreadable event stream: {e}"),
                            ))),
                        },
                        Ok(Ok(None)) => {
                            let events = parser.finish();
                            if !progress.handle_events(events, &self.inner.cfg) {
                                progress.queue.push_back(progress.end_of_body(
                                    "the upstream closed the stream before the answer was complete",
                                ));
                            }
                        }
                        Ok(Err(e)) => {
                            let msg = format!(
                                "connection to the upstream lost mid-answer: {}",
                                describe_reqwest(e, &self.inner.cfg)
                            );
                            progress.queue.push_back(progress.end_of_body(&msg));
                        }
                        Err(_elapsed) => {
                            self.phase = Phase::Ended;
                            let step = if progress.finish_reason.is_some() {
                                // The answer is complete; only the usage/[DONE] tail is late.
                                Step::Complete
                            } else if progress.got_token {
                                Step::Fail(Failure::fatal(
                                    ErrorCode::UpstreamTimeout,
                                    format!(
                                        "no token from the upstream for {}",
                                        humantime::format_duration(cfg.idle_timeout)
                                    ),
                                ))
                            } else {
                                Step::Fail(first_token_timeout(cfg))
                            };
                            progress.queue.push_back(step);
                        }
                    }
                }
            }
        }
    }

    /// How long to wait before retrying after `failure`, or `None` to give up.
    fn retry_delay(&self, failure: &Failure) -> Option<Duration> {
        let cfg = &self.inner.cfg;
        let attempts = self.progress.attempts;
        if !failure.retryable || self.progress.got_token || attempts > cfg.max_retries {
            return None;
        }
        let exp = cfg
            .retry_base_delay
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
            .min(MAX_BACKOFF);
        // Jitter in [exp/2, exp] so that many generations failing together do not retry in
        // lockstep.
        let half = exp / 2;
        let jitter = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        let mut delay = half + Duration::from_millis(jitter);
        if let Some(after) = failure.retry_after {
            delay = delay.max(after);
        }
        // A retry that cannot produce a token before the deadline is pointless: fail now with
        // the real reason rather than later with a timeout.
        let deadline = self.progress.deadline?;
        if after(delay) >= deadline {
            return None;
        }
        Some(delay)
    }

    /// One attempt: sends the request and classifies the response.
    ///
    /// Each attempt is a client span (a child of the generation's) whose `traceparent` goes
    /// with the request, so the model server's own spans join the chat's trace; and each is
    /// timed (`streamline_ai_upstream_request_seconds`, until the response headers or the
    /// failure).
    async fn send(&self, deadline: Instant) -> Result<Answer, Failure> {
        let inner = &self.inner;
        let span = tracing::info_span!(
            "upstream_request",
            otel.name = "POST chat/completions",
            otel.kind = "client",
            http.request.method = "POST",
            server.address = inner.endpoint.host_str().unwrap_or(""),
            attempt = self.progress.attempts,
            http.response.status_code = tracing::field::Empty,
        );
        let mut request = inner
            .client
            .post(inner.endpoint.clone())
            .headers(inner.headers.clone())
            .body(self.body.clone());
        if let Some(tp) = service_kit::trace_context::traceparent_of_span(&span) {
            request = request.header(service_kit::trace_context::TRACEPARENT, tp);
        }
        let timer = crate::telemetry::UpstreamTimer::start();
        let sent = timeout_at(deadline, request.send())
            .instrument(span.clone())
            .await;
        drop(timer);
        if let Ok(Ok(response)) = &sent {
            span.record("http.response.status_code", response.status().as_u16());
        }
        let response = match sent {
            Err(_elapsed) => return Err(first_token_timeout(&inner.cfg)),
            Ok(Err(e)) => {
                return Err(Failure::transient(
                    ErrorCode::UpstreamError,
                    format!(
                        "request to the upstream failed: {}",
                        describe_reqwest(e, &inner.cfg)
                    ),
                ))
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            let is_json = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("application/json"));
            if is_json {
                return self.non_streaming(response, deadline).await;
            }
            return Ok(Answer::Sse(response));
        }

        let retry_after = parse_retry_after(response.headers());
        let detail = match read_limited(response, deadline, MAX_ERROR_BODY_BYTES).await {
            // A truncated body is still worth a look: the message usually comes first.
            Ok((body, _truncated)) => upstream_message(&body, &inner.cfg),
            Err(_) => String::new(),
        };
        let what = if detail.is_empty() {
            format!("the upstream answered {status}")
        } else {
            format!("the upstream answered {status}: {detail}")
        };
        let failure = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Failure::fatal(ErrorCode::UpstreamAuth, what)
            }
            StatusCode::TOO_MANY_REQUESTS => Failure {
                retry_after,
                ..Failure::transient(ErrorCode::UpstreamRateLimited, what)
            },
            s if s.is_server_error() => Failure::transient(ErrorCode::UpstreamError, what),
            _ => Failure::fatal(ErrorCode::UpstreamError, what),
        };
        Err(failure)
    }

    /// A server that ignored `stream: true` and answered with one JSON completion.
    async fn non_streaming(
        &self,
        response: Response,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let (body, truncated) = read_limited(response, deadline, MAX_JSON_BODY_BYTES).await?;
        if truncated {
            return Err(Failure::fatal(
                ErrorCode::UpstreamError,
                format!("the upstream's answer is larger than {MAX_JSON_BODY_BYTES} bytes"),
            ));
        }
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            Failure::transient(
                ErrorCode::UpstreamError,
                format!("the upstream sent invalid JSON: {e}"),
            )
        })?;
        if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
            return Err(Failure::fatal(
                ErrorCode::UpstreamError,
                format!(
                    "the upstream reported an error: {}",
                    error_text(error, &self.inner.cfg)
                ),
            ));
        }
        let content = value
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut steps = Vec::new();
        if !content.is_empty() {
            steps.push(Step::Event(ProviderEvent::Token(content.to_owned())));
        }
        if let Some(usage) = value.get("usage").and_then(parse_usage) {
            steps.push(Step::Event(ProviderEvent::Usage(usage)));
        }
        steps.push(Step::Complete);
        Ok(Answer::Steps(steps))
    }
}

/// A successful response: a body to stream, or (non-streaming server) the whole answer.
enum Answer {
    Sse(Response),
    Steps(Vec<Step>),
}

impl Progress {
    /// Turns parsed events into steps; returns whether a terminal step was queued (events
    /// after it are ignored).
    fn handle_events(&mut self, events: Vec<SseEvent>, cfg: &OpenAiConfig) -> bool {
        for event in events {
            if let Some(step) = self.handle_event(event, cfg) {
                self.queue.push_back(step);
                return true;
            }
        }
        false
    }

    /// Handles one event: queues tokens, records finish/usage, returns a terminal step.
    fn handle_event(&mut self, event: SseEvent, cfg: &OpenAiConfig) -> Option<Step> {
        let data = event.data.trim();
        if event.event == "error" {
            return Some(Step::Fail(Failure::fatal(
                ErrorCode::UpstreamError,
                format!(
                    "the upstream reported an error: {}",
                    upstream_message(data.as_bytes(), cfg)
                ),
            )));
        }
        if data == "[DONE]" {
            return Some(Step::Complete);
        }
        if data.is_empty() {
            return None;
        }
        let value: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                // Not fatal: a proxy's ping or a vendor extension must not kill the answer.
                // A truly broken stream still fails, as it never reaches a finish.
                tracing::debug!(error = %e, "ignoring a non-JSON upstream event");
                return None;
            }
        };
        if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
            return Some(Step::Fail(Failure::fatal(
                ErrorCode::UpstreamError,
                format!("the upstream reported an error: {}", error_text(error, cfg)),
            )));
        }
        if let Some(usage) = value.get("usage").and_then(parse_usage) {
            self.usage = Some(usage);
        }
        let choices = value.get("choices").and_then(Value::as_array);
        for choice in choices.into_iter().flatten() {
            // We never ask for `n > 1`; anything but the first choice is not ours.
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            // Role-only first deltas, `"content": null` (llama-server) and `""` (Ollama's last
            // chunk) carry no text.
            if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str) {
                if !text.is_empty() {
                    self.queue
                        .push_back(Step::Event(ProviderEvent::Token(text.to_owned())));
                }
            }
            // A reasoning model "thinks" in `reasoning_content` before (and between) answer
            // tokens. That text is not part of the answer, but it proves the upstream is alive:
            // it pushes the timeout back so a long think is not mistaken for a stall.
            let thinking = choice
                .pointer("/delta/reasoning_content")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty());
            if thinking {
                let wait = if self.got_token {
                    cfg.idle_timeout
                } else {
                    cfg.first_token_timeout
                };
                self.deadline = Some(after(wait));
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_owned());
            }
        }
        None
    }

    /// The body ended (cleanly or not) without `[DONE]`: complete if a `finish_reason` was
    /// seen, otherwise the answer was cut off.
    fn end_of_body(&self, message: &str) -> Step {
        if self.finish_reason.is_some() {
            Step::Complete
        } else {
            // Retryable only matters before the first token: nothing reached the caller yet.
            Step::Fail(Failure::transient(ErrorCode::UpstreamError, message))
        }
    }
}

/// `now + duration`, saturating: an absurdly large configured timeout means "never", not a
/// panic on overflow.
fn after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

fn first_token_timeout(cfg: &OpenAiConfig) -> Failure {
    Failure::fatal(
        ErrorCode::UpstreamTimeout,
        format!(
            "no first token from the upstream within {}",
            humantime::format_duration(cfg.first_token_timeout)
        ),
    )
}

/// Reads the rest of the body after `[DONE]`, briefly, so the connection can be reused.
async fn drain(response: &mut Response) {
    let deadline = Instant::now() + DRAIN_AFTER_DONE;
    let mut read = 0usize;
    while let Ok(Ok(Some(bytes))) = timeout_at(deadline, response.chunk()).await {
        read += bytes.len();
        if read > MAX_DRAIN_BYTES {
            break;
        }
    }
}

/// Reads a whole (small) body, bounded in size and time. Returns the first `limit` bytes and
/// whether there was more.
async fn read_limited(
    mut response: Response,
    deadline: Instant,
    limit: usize,
) -> Result<(Vec<u8>, bool), Failure> {
    let mut body = Vec::new();
    loop {
        match timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => {
                let room = limit - body.len();
                if bytes.len() > room {
                    body.extend_from_slice(&bytes[..room]);
                    return Ok((body, true));
                }
                body.extend_from_slice(&bytes);
            }
            Ok(Ok(None)) => return Ok((body, false)),
            Ok(Err(_)) => {
                return Err(Failure::transient(
                    ErrorCode::UpstreamError,
                    "connection to the upstream lost while reading its answer",
                ))
            }
            Err(_elapsed) => {
                return Err(Failure::fatal(
                    ErrorCode::UpstreamTimeout,
                    "the upstream's answer did not arrive in time",
                ))
            }
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and falls back to back-off).
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = value.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

fn parse_usage(value: &Value) -> Option<Usage> {
    let obj = value.as_object()?;
    let get = |k: &str| obj.get(k).and_then(Value::as_u64);
    let prompt_tokens = get("prompt_tokens").unwrap_or(0);
    let completion_tokens = get("completion_tokens").unwrap_or(0);
    if get("prompt_tokens").is_none() && get("completion_tokens").is_none() {
        return None;
    }
    Some(Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: get("total_tokens")
            .unwrap_or_else(|| prompt_tokens.saturating_add(completion_tokens)),
    })
}

/// The human part of an error body: `{"error":{"message":..}}` (OpenAI, vLLM, llama-server),
/// `{"error":".."}` (Ollama), `{"message":..}`, or the raw text. Scrubbed and truncated.
fn upstream_message(body: &[u8], cfg: &OpenAiConfig) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(value) => match value.get("error").filter(|e| !e.is_null()) {
            Some(error) => return error_text(error, cfg),
            None => match value.get("message").and_then(Value::as_str) {
                Some(m) => m.to_owned(),
                None => value.to_string(),
            },
        },
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    sanitize(&text, cfg)
}

/// The message of an `error` value, which servers send as an object or a bare string.
fn error_text(error: &Value, cfg: &OpenAiConfig) -> String {
    let text = match error {
        Value::String(s) => s.clone(),
        other => match other.get("message").and_then(Value::as_str) {
            Some(m) => m.to_owned(),
            None => other.to_string(),
        },
    };
    sanitize(&text, cfg)
}

/// Removes the API key, collapses control characters and truncates.
fn sanitize(text: &str, cfg: &OpenAiConfig) -> String {
    let mut text = text.to_owned();
    if let Some(key) = cfg.api_key.as_deref().filter(|k| !k.is_empty()) {
        text = text.replace(key, "[redacted]");
    }
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_UPSTREAM_MESSAGE_CHARS)
        .collect();
    if text.chars().nth(MAX_UPSTREAM_MESSAGE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A reqwest error with its causes ("error sending request: ... Connection refused"), without
/// the URL and without the key.
fn describe_reqwest(error: reqwest::Error, cfg: &OpenAiConfig) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    sanitize(&text, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Turn;

    fn cfg() -> OpenAiConfig {
        OpenAiConfig::new("http://localhost:11434/v1/", "llama3.2")
    }

    #[test]
    fn endpoint_from_base_url() {
        let url = |b: &str| chat_completions_url(b).map(|u| u.to_string());
        assert_eq!(
            url("http://localhost:11434/v1").unwrap(),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            url("https://api.openai.com/v1/").unwrap(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert!(url("ftp://x/v1").is_err());
        assert!(url("not a url").is_err());
        assert!(url("http://x/v1?a=b").is_err());
    }

    #[test]
    fn rejects_bad_config() {
        let mut c = cfg();
        c.model = " ".into();
        assert!(matches!(
            OpenAiProvider::new(c),
            Err(OpenAiSetupError::EmptyModel)
        ));
        let mut c = cfg();
        c.api_key = Some("bad\nkey".into());
        assert!(matches!(
            OpenAiProvider::new(c),
            Err(OpenAiSetupError::InvalidApiKey)
        ));
        let mut c = cfg();
        c.idle_timeout = Duration::ZERO;
        assert!(matches!(
            OpenAiProvider::new(c),
            Err(OpenAiSetupError::ZeroTimeout("idle_timeout"))
        ));
        assert!(OpenAiProvider::new(cfg()).is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let mut c = cfg();
        c.api_key = Some("sk-secret-123".into());
        let p = OpenAiProvider::new(c.clone()).unwrap();
        assert!(!format!("{c:?}").contains("sk-secret-123"));
        assert!(!format!("{p:?}").contains("sk-secret-123"));
    }

    #[test]
    fn body_has_messages_in_order() {
        let mut c = cfg();
        c.system_prompt = Some("be brief".into());
        c.max_tokens = Some(64);
        let req = GenerationRequest {
            session_id: Uuid::new_v4(),
            message_id: Uuid::new_v4(),
            content: "now".into(),
            history: vec![
                Turn {
                    role: Role::User,
                    content: "hi".into(),
                },
                Turn {
                    role: Role::Assistant,
                    content: "hello".into(),
                },
            ],
            origin: crate::origin::Origin::detached(),
        };
        let body: Value = serde_json::from_slice(&request_body(&c, &req).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "now"},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 64,
            })
        );
    }

    #[test]
    fn error_messages_are_scrubbed_and_truncated() {
        let mut c = cfg();
        c.api_key = Some("sk-abc123".into());
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-abc123","type":"invalid_request_error"}}"#;
        assert_eq!(
            upstream_message(body, &c),
            "Incorrect API key provided: [redacted]"
        );
        assert_eq!(
            upstream_message(br#"{"error":"model not found"}"#, &c),
            "model not found"
        );
        assert_eq!(upstream_message(b"  Bad Gateway\n", &c), "Bad Gateway");
        let long = "x".repeat(1000);
        let msg = upstream_message(long.as_bytes(), &c);
        assert_eq!(msg.chars().count(), MAX_UPSTREAM_MESSAGE_CHARS + 1);
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn usage_parsing() {
        let u = parse_usage(&serde_json::json!({"prompt_tokens": 3, "completion_tokens": 4}));
        assert_eq!(
            u,
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                total_tokens: 7
            })
        );
        assert_eq!(parse_usage(&Value::Null), None);
        assert_eq!(parse_usage(&serde_json::json!({})), None);
    }
}
