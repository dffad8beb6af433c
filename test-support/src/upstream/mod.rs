//! The one fake OpenAI-compatible server (`POST /v1/chat/completions`): for the end-to-end
//! suites, the provider's unit tests, `abort-bench` and, as the `fake-openai` binary, load.
//!
//! It is a bare `TcpListener` speaking HTTP/1.1 by hand, so a test controls exactly what goes
//! on the wire and when the connection ends, and can see the client go away:
//!
//! - every request is recorded (method, path, headers, JSON body, arrival time), numbered in
//!   arrival order from 0 (unless recording is off, for long load runs);
//! - every response follows a [`Reply`] script: the queued replies in order, then the default;
//! - a streamed answer uses the real wire format of OpenAI's Chat Completions streaming: a
//!   role-only first delta, one `data:` event per content delta, a delta with `finish_reason`,
//!   a usage chunk with `"choices": []` when asked for, then `data: [DONE]`; each event is one
//!   chunk of a chunked body;
//! - a [`Reply::Script`] gets the raw connection ([`RawConn`]) for byte-level tests
//!   (transcripts of real servers replayed chunked or close-delimited, byte by byte, cut off);
//! - while answering, the server keeps reading its side of the socket, so it notices at once
//!   when the client closes the connection (what a real model server does to stop generating).
//!   [`FakeOpenAi::disconnected`] waits for that event for a given request.
//!
//! Connections are kept alive between complete responses (as real servers do), so the client's
//! connection pool is exercised too.

mod generate;
mod http;
mod raw;
mod recorded;
mod reply;
mod sse;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

pub use generate::{Generate, Plan};
pub use http::Connection;
pub use raw::{noisy, split_events, RawConn};
pub use recorded::{Disconnect, Recorded};
pub use reply::{Framing, Reply, Script, ScriptFuture, StreamReply};

/// Whether the server keeps what it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// Every request and disconnect, for tests to inspect.
    All,
    /// Nothing beyond counters (a benchmark's millions of requests would pile up).
    Off,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Reply>,
    default: Option<Reply>,
    requests: Vec<Recorded>,
    /// Requests received (also counted when recording is off).
    received: usize,
    disconnects: HashMap<usize, Disconnect>,
    connections: usize,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    recording: Recording,
    /// Bumped on every recorded request and disconnect.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves the state as it was: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.changed.send_modify(|v| *v += 1);
        r
    }

    fn disconnect(&self, index: usize, during_response: bool) {
        if self.recording == Recording::All {
            self.update(|s| {
                s.disconnects.entry(index).or_insert(Disconnect {
                    at: Instant::now(),
                    during_response,
                });
            });
        }
    }

    async fn wait<T>(&self, mut probe: impl FnMut(&State) -> Option<T>) -> T {
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(found) = probe(&self.lock()) {
                return found;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`: unreachable while `self` is borrowed.
                std::future::pending::<()>().await;
            }
        }
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
    /// Starts on a free loopback port, recording everything; until told otherwise it answers
    /// every request with a short streamed answer.
    pub async fn start() -> FakeOpenAi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake upstream");
        Self::serve(listener, Recording::All)
    }

    /// Serves on `addr` (for the binary; port 0: any free port, see [`FakeOpenAi::port`]).
    pub async fn bind(addr: SocketAddr, recording: Recording) -> std::io::Result<FakeOpenAi> {
        Ok(Self::serve(TcpListener::bind(addr).await?, recording))
    }

    fn serve(listener: TcpListener, recording: Recording) -> FakeOpenAi {
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                default: Some(Reply::tokens(&["Hello", " from", " the", " fake", "."])),
                ..State::default()
            }),
            recording,
            changed: watch::channel(0).0,
        });
        let accept = {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            let connection = shared.update(|s| {
                                s.connections += 1;
                                s.connections - 1
                            });
                            tokio::spawn(serve(stream, connection, shared.clone()));
                        }
                        // Out of file descriptors and the like: the next accept may succeed.
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                    }
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

    /// Every request received so far, in order (empty when recording is off).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// How many requests arrived (counted with recording off too).
    pub fn received(&self) -> usize {
        self.shared.lock().received
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Waits (without a bound: wrap it in a timeout) until request `index` has arrived.
    pub async fn request(&self, index: usize) -> Recorded {
        self.shared.wait(|s| s.requests.get(index).cloned()).await
    }

    /// Waits (without a bound: wrap it in a timeout) until the client of request `index`
    /// closes its connection.
    pub async fn disconnected(&self, index: usize) -> Disconnect {
        self.shared
            .wait(|s| s.disconnects.get(&index).copied())
            .await
    }

    /// The disconnect of request `index`, if it happened already.
    pub fn disconnect_of(&self, index: usize) -> Option<Disconnect> {
        self.shared.lock().disconnects.get(&index).copied()
    }
}

/// How a connection goes on after a response.
enum Next {
    KeepAlive,
    Close,
}

/// One connection: requests one after another (keep-alive) until either side closes it.
async fn serve(stream: TcpStream, connection: usize, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut wr = Some(wr);
    let mut reader = http::Reader {
        rd,
        buf: Vec::new(),
    };
    let mut last: Option<usize> = None;
    loop {
        let Some(mut request) = reader.request().await else {
            // The client closed an idle connection.
            if let Some(index) = last {
                shared.disconnect(index, false);
            }
            return;
        };
        let (index, reply) = shared.update(|s| {
            request.index = s.received;
            request.connection = connection;
            s.received += 1;
            if shared.recording == Recording::All {
                s.requests.push(request.clone());
            }
            let reply = s
                .queue
                .pop_front()
                .or_else(|| s.default.clone())
                .unwrap_or_else(Reply::hang);
            (request.index, reply)
        });
        last = Some(index);
        let Some(writer) = wr.as_mut() else { return };
        let outcome = match reply {
            Reply::Script(script) => {
                // The write half is the script's from now on; the server closes after it.
                let Some(writer) = wr.take() else { return };
                let conn = RawConn {
                    wr: writer,
                    index,
                    shared: shared.clone(),
                };
                tokio::select! {
                    () = (script.0)(conn) => Ok(Next::Close),
                    _ = reader.eof() => Err(()),
                }
            }
            reply => tokio::select! {
                outcome = answer(writer, reply, &request) => outcome.map_err(|_| ()),
                _ = reader.eof() => Err(()),
            },
        };
        match outcome {
            Ok(Next::KeepAlive) => continue,
            // We closed it on purpose: not a client disconnect.
            Ok(Next::Close) => return,
            // The client went away (the read side saw it), or a write failed because it had.
            Err(()) => {
                shared.disconnect(index, true);
                return;
            }
        }
    }
}

/// Writes one response (every kind but a script); says whether the connection may carry
/// another request.
async fn answer(
    wr: &mut OwnedWriteHalf,
    reply: Reply,
    request: &Recorded,
) -> std::io::Result<Next> {
    let model = request.body["model"].as_str().unwrap_or("model");
    let include_usage = request.body["stream_options"]["include_usage"] == json!(true);
    match reply {
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let status_line = format!("{status} {}", http::reason(status));
            let response =
                http::full_response(&status_line, &headers, &body, Connection::KeepAlive);
            http::write(wr, response.as_bytes()).await?;
            Ok(Next::KeepAlive)
        }
        Reply::Hang { head } => {
            if head {
                http::write(wr, http::sse_head(Connection::KeepAlive)).await?;
                let role = sse::role_chunk(model, include_usage);
                sse::data(wr, &role.to_string()).await?;
            }
            std::future::pending().await
        }
        Reply::Transcript { body, framing } => match framing {
            Framing::Chunked => {
                http::write(wr, http::sse_head(Connection::KeepAlive)).await?;
                raw::write_events(wr, &body).await?;
                http::write(wr, http::LAST_CHUNK).await?;
                Ok(Next::KeepAlive)
            }
            Framing::CloseDelimited => {
                http::write(wr, http::CLOSE_DELIMITED_SSE_HEAD).await?;
                for event in split_events(&body) {
                    http::write(wr, event).await?;
                }
                Ok(Next::Close)
            }
        },
        Reply::Generate(g) => {
            let prompt = request.prompt();
            let prompt_tokens = prompt.map_or(0, |p| p.split_whitespace().count() as u64);
            g.answer(wr, g.plan(prompt), include_usage, prompt_tokens)
                .await?;
            Ok(Next::KeepAlive)
        }
        Reply::Stream(s) => stream(wr, s, model, include_usage).await,
        Reply::Script(_) => Ok(Next::Close),
    }
}

/// A [`StreamReply`], event by event at its pace.
async fn stream(
    wr: &mut OwnedWriteHalf,
    s: StreamReply,
    model: &str,
    include_usage: bool,
) -> std::io::Result<Next> {
    use tokio::io::AsyncWriteExt;
    http::write(wr, http::sse_head(Connection::KeepAlive)).await?;
    let role = sse::role_chunk(model, include_usage);
    sse::data(wr, &role.to_string()).await?;
    for thought in &s.reasoning {
        if !s.pace.is_zero() {
            tokio::time::sleep(s.pace).await;
        }
        let delta = sse::chunk_json(
            model,
            json!({ "reasoning_content": thought }),
            None,
            include_usage,
        );
        sse::data(wr, &delta.to_string()).await?;
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
        let delta = sse::chunk_json(model, json!({ "content": token }), None, include_usage);
        sse::data(wr, &delta.to_string()).await?;
    }
    if s.drop_after == Some(s.tokens.len()) {
        wr.shutdown().await?;
        return Ok(Next::Close);
    }
    if s.stall_after == Some(s.tokens.len()) {
        std::future::pending::<()>().await;
    }
    let finish = sse::chunk_json(model, json!({}), Some(&s.finish_reason), include_usage);
    sse::data(wr, &finish.to_string()).await?;
    if let Some((prompt, completion)) = s.usage {
        let usage = sse::usage_chunk(model, prompt, completion);
        sse::data(wr, &usage.to_string()).await?;
    }
    sse::data(wr, "[DONE]").await?;
    http::write(wr, http::LAST_CHUNK).await?;
    Ok(Next::KeepAlive)
}
