//! A local JWKS endpoint for the suites: `GET` on any path answers the key set the test set
//! (with the `Cache-Control` it chose), one HTTP/1.1 exchange per connection, spoken by hand
//! on a `TcpListener`. Every request is counted with its arrival time, so a test can bound
//! how often the gateway asks ([`JwksServer::hits`]), and the server can play a provider that
//! is down ([`JwksServer::fail`]: 503 to everything).

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::identity::{jwks_json, SigningKey};
use crate::PATIENCE;

struct State {
    body: String,
    cache_control: Option<String>,
    failing: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Arrival times of every request.
    hits: watch::Sender<Vec<Instant>>,
}

/// The endpoint; stops when dropped.
pub struct JwksServer {
    port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    /// Serves `keys` on a free port.
    pub async fn start(keys: &[&SigningKey]) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                body: jwks_json(keys).to_string(),
                cache_control: None,
                failing: false,
            }),
            hits: watch::channel(Vec::new()).0,
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, serving.clone()));
            }
        });
        JwksServer { port, shared, task }
    }

    /// The JWKS URL (`http://127.0.0.1:<port>/jwks`; plaintext is allowed to loopback).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/jwks", self.port)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.shared.state.lock().expect("jwks state"));
    }

    /// Publishes `keys` from now on.
    pub fn set_keys(&self, keys: &[&SigningKey]) {
        self.set_body(jwks_json(keys));
    }

    /// Publishes any JSON (or not-quite-a-JWKS) from now on.
    pub fn set_body(&self, body: Value) {
        self.update(|s| s.body = body.to_string());
    }

    /// The `Cache-Control` of the answers (None: no header).
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.update(|s| s.cache_control = value.map(str::to_string));
    }

    /// Answers 503 to every request from now on (a provider that is down).
    pub fn fail(&self) {
        self.update(|s| s.failing = true);
    }

    /// Serves the key set again.
    pub fn serve(&self) {
        self.update(|s| s.failing = false);
    }

    /// Requests so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.borrow().len()
    }

    /// When the last request arrived.
    pub fn last_hit(&self) -> Option<Instant> {
        self.shared.hits.borrow().last().copied()
    }

    /// Waits until at least `n` requests have arrived.
    pub async fn wait_hits(&self, n: usize) {
        let mut rx = self.shared.hits.subscribe();
        tokio::time::timeout(PATIENCE, rx.wait_for(|h| h.len() >= n))
            .await
            .unwrap_or_else(|_| panic!("the JWKS was not fetched {n} times"))
            .expect("jwks server alive");
    }
}

/// One exchange: read the request head, count it, answer, close.
async fn answer(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    shared.hits.send_modify(|h| h.push(Instant::now()));
    let (status, body, cache_control) = {
        let s = shared.state.lock().expect("jwks state");
        if s.failing {
            (
                "503 Service Unavailable",
                "{\"error\":\"down\"}".to_string(),
                None,
            )
        } else {
            ("200 OK", s.body.clone(), s.cache_control.clone())
        }
    };
    let cache = cache_control
        .map(|c| format!("Cache-Control: {c}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{cache}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
