//! How the fake server answers one request: a streamed answer, an error status, silence, a
//! recorded transcript, a byte-level script, or a fast generated stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::generate::Generate;
use super::raw::RawConn;

/// A streamed answer.
#[derive(Debug, Clone)]
pub struct StreamReply {
    /// The content deltas, in order (each one `data:` event).
    pub tokens: Vec<String>,
    /// Wait before each content delta.
    pub pace: Duration,
    /// `(prompt_tokens, completion_tokens)` for the usage chunk; `None`: no usage chunk.
    pub usage: Option<(u64, u64)>,
    /// `finish_reason` of the final delta.
    pub finish_reason: String,
    /// Close the connection abruptly (no `finish_reason`, no `[DONE]`, no end of the chunked
    /// body) after this many content deltas.
    pub drop_after: Option<usize>,
    /// Stop sending (but keep the connection open) after this many content deltas.
    pub stall_after: Option<usize>,
    /// Deltas sent before the content as `delta.reasoning_content` (the field vLLM,
    /// llama-server and DeepSeek use for a reasoning model's thinking), at the same pace.
    pub reasoning: Vec<String>,
}

impl StreamReply {
    pub fn new<S: AsRef<str>>(tokens: &[S]) -> StreamReply {
        StreamReply {
            tokens: tokens.iter().map(|t| t.as_ref().to_owned()).collect(),
            pace: Duration::ZERO,
            usage: None,
            finish_reason: "stop".into(),
            drop_after: None,
            stall_after: None,
            reasoning: Vec::new(),
        }
    }

    pub fn reasoning<S: AsRef<str>>(mut self, deltas: &[S]) -> Self {
        self.reasoning = deltas.iter().map(|t| t.as_ref().to_owned()).collect();
        self
    }

    pub fn pace(mut self, pace: Duration) -> Self {
        self.pace = pace;
        self
    }

    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.usage = Some((prompt_tokens, completion_tokens));
        self
    }

    pub fn drop_after(mut self, tokens: usize) -> Self {
        self.drop_after = Some(tokens);
        self
    }

    pub fn stall_after(mut self, tokens: usize) -> Self {
        self.stall_after = Some(tokens);
        self
    }

    /// The text the client should end up with.
    pub fn text(&self) -> String {
        let n = [self.drop_after, self.stall_after]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.tokens.len());
        self.tokens.iter().take(n).map(String::as_str).collect()
    }
}

/// The future a [`Script`] returns.
pub type ScriptFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A byte-level script: it gets the connection after the request was read and recorded, writes
/// whatever it likes, and the server closes the connection when it returns (or when the
/// client goes away first: then the script is dropped).
#[derive(Clone)]
pub struct Script(pub(crate) Arc<dyn Fn(RawConn) -> ScriptFuture + Send + Sync>);

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Script(..)")
    }
}

/// How a transcript's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One HTTP chunk per event, then the last chunk; the connection is kept alive.
    Chunked,
    /// No length: the body ends when the server closes the connection.
    CloseDelimited,
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Stream(StreamReply),
    /// A complete non-streaming response (errors: 401, 429, 500, ...).
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Never answer: with `head`, send the `200` head and the role-only first delta, then
    /// nothing; without, not even a status line. The connection stays open until the client
    /// closes it.
    Hang {
        head: bool,
    },
    /// A recorded SSE body (as a real server sent it), replayed event by event.
    Transcript {
        body: Arc<[u8]>,
        framing: Framing,
    },
    /// The connection is the script's (see [`Script`]).
    Script(Script),
    /// A generated answer from pre-rendered events, for load (see [`Generate`]).
    Generate(Arc<Generate>),
}

impl From<StreamReply> for Reply {
    fn from(s: StreamReply) -> Reply {
        Reply::Stream(s)
    }
}

impl Reply {
    /// A streamed answer of `tokens`, as fast as possible, without usage.
    pub fn tokens<S: AsRef<str>>(tokens: &[S]) -> Reply {
        Reply::Stream(StreamReply::new(tokens))
    }

    /// An error response with an OpenAI-style JSON body.
    pub fn error(status: u16, message: &str) -> Reply {
        let kind = match status {
            401 | 403 => "invalid_request_error",
            429 => "rate_limit_error",
            _ => "server_error",
        };
        Reply::Status {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
                .to_string(),
        }
    }

    /// `401` as OpenAI sends it for a bad key (the message echoes the key's tail).
    pub fn unauthorized(message: &str) -> Reply {
        Reply::error(401, message)
    }

    /// `429`, with `Retry-After: <secs>` when given.
    pub fn rate_limited(retry_after_secs: Option<u64>) -> Reply {
        let mut reply = Reply::error(429, "Rate limit reached for requests");
        if let (Some(secs), Reply::Status { headers, .. }) = (retry_after_secs, &mut reply) {
            headers.push(("Retry-After".into(), secs.to_string()));
        }
        reply
    }

    pub fn server_error() -> Reply {
        Reply::error(
            500,
            "The server had an error while processing your request.",
        )
    }

    pub fn hang() -> Reply {
        Reply::Hang { head: false }
    }

    pub fn hang_after_head() -> Reply {
        Reply::Hang { head: true }
    }

    /// A recorded transcript replayed as a chunked body, one chunk per event.
    pub fn transcript(body: &[u8]) -> Reply {
        Reply::Transcript {
            body: body.into(),
            framing: Framing::Chunked,
        }
    }

    /// A recorded transcript replayed as a body that ends when the connection closes.
    pub fn transcript_close_delimited(body: &[u8]) -> Reply {
        Reply::Transcript {
            body: body.into(),
            framing: Framing::CloseDelimited,
        }
    }

    /// Hands the connection to `script` (see [`Script`]).
    pub fn script<F, Fut>(script: F) -> Reply
    where
        F: Fn(RawConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Reply::Script(Script(Arc::new(move |conn| Box::pin(script(conn)))))
    }
}
