//! A provider for OpenAI-compatible chat servers (OpenAI, vLLM, llama-server, Ollama, ...).
//!
//! It sends `POST {base_url}/chat/completions` with `stream: true` and turns the server-sent
//! events of the answer into [`ProviderEvent`](super::ProviderEvent)s. This file holds the
//! provider itself: its settings, their validation ([`OpenAiSetupError`]) and the shared HTTP
//! client. The parts of one generation live beside it:
//!
//! | file | what |
//! |---|---|
//! | `request.rs` | the JSON request body |
//! | `generation.rs` | one generation's state machine: phases, retries, back-off, timeouts |
//! | `attempt.rs` | one HTTP attempt: send the request, classify the response as a failure kind |
//! | `stream.rs` | decoding SSE events (or a non-streaming JSON answer) into steps |
//! | `chunk.rs` | the fields of one streamed chunk the decoder reads, borrowed from the event |
//! | `redact.rs` | scrubbing the key from, and bounding, every upstream text we report |
//!
//! (`super::sse` is the generic SSE line parser; it knows nothing of OpenAI.)
//!
//! # Cancellation
//!
//! Everything a generation needs lives inside the returned stream: the in-flight request, the
//! response body and the SSE parser. Nothing is spawned. Dropping the stream therefore drops
//! the `reqwest::Response`, and hyper closes the TCP connection (HTTP/1.1: a connection with an
//! unread body cannot be reused; HTTP/2: the stream is reset). The model server sees its
//! client go away and stops generating, which is what makes cancel cheap and immediate.
//!
//! # Bounded waiting and retries
//!
//! Every await is bounded (connect, first token, each further token), and a request is retried
//! only while no token has reached the caller; `generation.rs` states the exact rules.
//!
//! # Secrets
//!
//! The API key is sent as a sensitive header and scrubbed from every error message (some
//! servers echo the key they rejected); reqwest errors are reported without their URL
//! (`redact.rs`). `Debug` of the config and the provider never shows the key.

mod attempt;
mod chunk;
mod generation;
mod redact;
mod request;
mod stream;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream as futures_stream;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use shared_proto::ErrorCode;

use self::generation::Generation;
use self::request::request_body;
use super::{GenerationRequest, Provider, ProviderError, ProviderStream};

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

/// What every generation of this provider shares (read by `generation.rs`).
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
                return Box::pin(futures_stream::once(async move { Err(err) }));
            }
        };
        let generation = Generation::new(self.inner.clone(), body, request.message_id);
        Box::pin(futures_stream::unfold(generation, |mut g| async move {
            let item = g.next().await?;
            Some((item, g))
        }))
    }

    fn name(&self) -> &'static str {
        "openai"
    }
}

/// The configuration the unit tests of this provider's files start from.
#[cfg(test)]
fn test_config() -> OpenAiConfig {
    OpenAiConfig::new("http://localhost:11434/v1/", "llama3.2")
}

#[cfg(test)]
mod tests {
    use super::test_config as cfg;
    use super::*;

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
}
