//! A fake OpenAI-compatible server (`POST /v1/chat/completions`) for the end-to-end suites.
//!
//! It is a bare `TcpListener` speaking HTTP/1.1 by hand, so a test controls exactly what goes
//! on the wire and when the connection ends, and can see the client go away:
//!
//! - every request is recorded (method, path, headers, JSON body, arrival time), numbered in
//!   arrival order from 0;
//! - every response follows a [`Reply`] script: the queued replies in order, then the default;
//! - a streamed answer uses the real wire format of OpenAI's Chat Completions streaming: a
//!   role-only first delta, one `data:` event per content delta, a delta with `finish_reason`,
//!   a usage chunk with `"choices": []` when asked for, then `data: [DONE]`; each event is one
//!   chunk of a chunked body;
//! - while answering, the server keeps reading its side of the socket, so it notices at once
//!   when the client closes the connection (what a real model server does to stop generating).
//!   [`FakeOpenAi::disconnected`] waits for that event for a given request.
//!
//! Connections are kept alive between complete responses (as real servers do), so the client's
//! connection pool is exercised too.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// A request as the fake server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// 0 for the first request the server received, 1 for the second, ...
    pub index: usize,
    /// Which TCP connection carried it (0, 1, ... in accept order).
    pub connection: usize,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` if it was not JSON).
    pub body: Value,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `body.messages` as `(role, content)` pairs, in order.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .map(|m| {
                        (
                            m["role"].as_str().unwrap_or_default().to_owned(),
                            m["content"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The client of a request closed its connection.
#[derive(Debug, Clone, Copy)]
pub struct Disconnect {
    /// When the server saw the end of the connection (read returned 0 or failed).
    pub at: Instant,
    /// Whether it happened while the server was still answering this request (the client
    /// abandoned the answer), rather than on an idle kept-alive connection afterwards.
    pub during_response: bool,
}

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
}

#[derive(Default)]
struct State {
    queue: VecDeque<Reply>,
    default: Option<Reply>,
    requests: Vec<Recorded>,
    disconnects: HashMap<usize, Disconnect>,
    connections: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every recorded request and disconnect.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.state.lock().unwrap());
        self.changed.send_modify(|v| *v += 1);
        r
    }
}

/// The fake server; it stops when dropped (or with the test's runtime).
pub struct FakeOpenAi {
    pub port: u16,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeOpenAi {
    /// Starts on a free loopback port; until told otherwise it answers every request with a
    /// short streamed answer.
    pub async fn start() -> FakeOpenAi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake upstream");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                default: Some(Reply::tokens(&["Hello", " from", " the", " fake", "."])),
                ..State::default()
            }),
            changed: watch::channel(0).0,
        });
        let accept = {
            let shared = shared.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let connection = shared.update(|s| {
                        s.connections += 1;
                        s.connections - 1
                    });
                    tokio::spawn(serve(stream, connection, shared.clone()));
                }
            })
        };
        FakeOpenAi {
            port,
            shared,
            accept,
        }
    }

    /// The value for `OPENAI_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Answers the next request (after those already queued) with `reply`.
    pub fn push(&self, reply: impl Into<Reply>) {
        let reply = reply.into();
        self.shared.update(|s| s.queue.push_back(reply));
    }

    /// Answers every request beyond the queued ones with `reply`.
    pub fn set_default(&self, reply: impl Into<Reply>) {
        let reply = reply.into();
        self.shared.update(|s| s.default = Some(reply));
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.state.lock().unwrap().connections
    }

    /// Waits (without a bound: wrap it in a timeout) until request `index` has arrived.
    pub async fn request(&self, index: usize) -> Recorded {
        self.wait(|s| s.requests.get(index).cloned()).await
    }

    /// Waits (without a bound: wrap it in a timeout) until the client of request `index`
    /// closes its connection.
    pub async fn disconnected(&self, index: usize) -> Disconnect {
        self.wait(|s| s.disconnects.get(&index).copied()).await
    }

    /// The disconnect of request `index`, if it happened already.
    pub fn disconnect_of(&self, index: usize) -> Option<Disconnect> {
        self.shared
            .state
            .lock()
            .unwrap()
            .disconnects
            .get(&index)
            .copied()
    }

    async fn wait<T>(&self, mut probe: impl FnMut(&State) -> Option<T>) -> T {
        let mut rx = self.shared.changed.subscribe();
        loop {
            if let Some(found) = probe(&self.shared.state.lock().unwrap()) {
                return found;
            }
            rx.changed().await.expect("the fake upstream is gone");
        }
    }
}

/// One connection: requests one after another (keep-alive) until either side closes it.
async fn serve(stream: TcpStream, connection: usize, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let mut reader = Reader {
        rd,
        buf: Vec::new(),
    };
    let mut last: Option<usize> = None;
    loop {
        let Some(mut request) = reader.request().await else {
            // The client closed an idle connection.
            if let Some(index) = last {
                shared.update(|s| {
                    s.disconnects.entry(index).or_insert(Disconnect {
                        at: Instant::now(),
                        during_response: false,
                    });
                });
            }
            return;
        };
        let (index, reply) = shared.update(|s| {
            request.index = s.requests.len();
            request.connection = connection;
            s.requests.push(request.clone());
            let reply = s
                .queue
                .pop_front()
                .or_else(|| s.default.clone())
                .unwrap_or_else(Reply::hang);
            (request.index, reply)
        });
        last = Some(index);
        let model = request.body["model"].as_str().unwrap_or("model").to_owned();
        let include_usage = request.body["stream_options"]["include_usage"] == json!(true);
        let outcome = tokio::select! {
            outcome = answer(&mut wr, reply, &model, include_usage) => outcome,
            _ = reader.eof() => {
                shared.update(|s| {
                    s.disconnects.insert(index, Disconnect { at: Instant::now(), during_response: true });
                });
                return;
            }
        };
        match outcome {
            Ok(Next::KeepAlive) => continue,
            // We closed it (on purpose, or the write failed): not a client disconnect unless
            // the client had gone first, which the read side would have seen.
            Ok(Next::Close) | Err(_) => {
                if outcome.is_err() {
                    shared.update(|s| {
                        s.disconnects.entry(index).or_insert(Disconnect {
                            at: Instant::now(),
                            during_response: true,
                        });
                    });
                }
                return;
            }
        }
    }
}

enum Next {
    KeepAlive,
    Close,
}

struct Reader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
}

impl Reader {
    /// Reads one request (head + `Content-Length` body); `None` at the end of the connection.
    async fn request(&mut self) -> Option<Recorded> {
        let head_end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next()?.split(' ');
        let method = request_line.next()?.to_owned();
        let path = request_line.next()?.to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < head_end + 4 + len {
            if !self.fill().await {
                return None;
            }
        }
        let body: Vec<u8> = self
            .buf
            .drain(..head_end + 4 + len)
            .skip(head_end + 4)
            .collect();
        Some(Recorded {
            index: 0,
            connection: 0,
            method,
            path,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            at: Instant::now(),
        })
    }

    /// Reads more bytes into the buffer; false at the end of the connection.
    async fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 8192];
        match self.rd.read(&mut tmp).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Resolves when the client closes the connection. Cancel-safe: bytes that arrive in the
    /// meantime (a next request) stay buffered.
    async fn eof(&mut self) {
        while self.fill().await {}
    }
}

/// Writes one response; says whether the connection may carry another request.
async fn answer(
    wr: &mut OwnedWriteHalf,
    reply: Reply,
    model: &str,
    include_usage: bool,
) -> std::io::Result<Next> {
    match reply {
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n",
                reason(status),
                body.len()
            );
            for (name, value) in &headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            head.push_str(&body);
            write(wr, head.as_bytes()).await?;
            Ok(Next::KeepAlive)
        }
        Reply::Hang { head } => {
            if head {
                sse_head(wr).await?;
                let role = chunk_json(model, json!({"role": "assistant", "content": ""}), None);
                event(wr, &role, include_usage).await?;
            }
            std::future::pending().await
        }
        Reply::Stream(s) => {
            sse_head(wr).await?;
            let role = chunk_json(model, json!({"role": "assistant", "content": ""}), None);
            event(wr, &role, include_usage).await?;
            for thought in &s.reasoning {
                if !s.pace.is_zero() {
                    tokio::time::sleep(s.pace).await;
                }
                let delta = chunk_json(model, json!({ "reasoning_content": thought }), None);
                event(wr, &delta, include_usage).await?;
            }
            for (i, token) in s.tokens.iter().enumerate() {
                if s.drop_after == Some(i) {
                    // Mid-answer crash: no end of the chunked body, just a closed socket.
                    wr.shutdown().await?;
                    return Ok(Next::Close);
                }
                if s.stall_after == Some(i) {
                    std::future::pending::<()>().await;
                }
                if !s.pace.is_zero() {
                    tokio::time::sleep(s.pace).await;
                }
                let delta = chunk_json(model, json!({ "content": token }), None);
                event(wr, &delta, include_usage).await?;
            }
            if s.drop_after == Some(s.tokens.len()) {
                wr.shutdown().await?;
                return Ok(Next::Close);
            }
            if s.stall_after == Some(s.tokens.len()) {
                std::future::pending::<()>().await;
            }
            let finish = chunk_json(model, json!({}), Some(&s.finish_reason));
            event(wr, &finish, include_usage).await?;
            if let Some((prompt, completion)) = s.usage {
                let mut usage = base_chunk(model);
                usage["choices"] = json!([]);
                usage["usage"] = json!({
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                });
                data(wr, &usage.to_string()).await?;
            }
            data(wr, "[DONE]").await?;
            write(wr, b"0\r\n\r\n").await?;
            Ok(Next::KeepAlive)
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn base_chunk(model: &str) -> Value {
    json!({
        "id": "chatcmpl-fake0123456789",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000u64,
        "model": model,
        "system_fingerprint": "fp_fake",
    })
}

/// A `chat.completion.chunk` with one choice.
fn chunk_json(model: &str, delta: Value, finish_reason: Option<&str>) -> Value {
    let mut chunk = base_chunk(model);
    chunk["choices"] = json!([{
        "index": 0,
        "delta": delta,
        "logprobs": null,
        "finish_reason": finish_reason,
    }]);
    chunk
}

/// One event; with `include_usage`, OpenAI puts `"usage": null` on every chunk but the last.
async fn event(wr: &mut OwnedWriteHalf, chunk: &Value, include_usage: bool) -> std::io::Result<()> {
    let mut chunk = chunk.clone();
    if include_usage {
        chunk["usage"] = Value::Null;
    }
    data(wr, &chunk.to_string()).await
}

async fn sse_head(wr: &mut OwnedWriteHalf) -> std::io::Result<()> {
    write(
        wr,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
          Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
}

/// `data: <payload>\n\n` as one chunk of the chunked body.
async fn data(wr: &mut OwnedWriteHalf, payload: &str) -> std::io::Result<()> {
    let event = format!("data: {payload}\n\n");
    let mut framed = format!("{:x}\r\n", event.len()).into_bytes();
    framed.extend_from_slice(event.as_bytes());
    framed.extend_from_slice(b"\r\n");
    write(wr, &framed).await
}

async fn write(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}
