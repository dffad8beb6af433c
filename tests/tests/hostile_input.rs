//! Hostile input over the live socket. Every case gets its documented answer (see
//! `docs/SECURITY.md`), no process dies, and a client streaming beside it gets its text whole.
//!
//! | input | answer |
//! |---|---|
//! | text frame with invalid UTF-8 | close 1007 |
//! | frame over `MAX_FRAME_BYTES` (one frame, or a fragmented message) | close 1009 |
//! | control frame with more than 125 bytes | close 1002 |
//! | deeply nested JSON | `error{invalid_json}` (in a frame) / `error{unknown_type}` (bare) |
//! | 100,000 cancels of random ids | each: `cancel_ack{not_found}` or `error{rate_limited}` |
//! | TCP reset in the middle of a frame | connection dropped, resources released |
//! | half-open connection (peer silent) | close 4000 after `CLIENT_TIMEOUT`, resources released |

use std::collections::HashSet;
use std::time::{Duration, Instant};

use e2e_tests::auth::test_jwt;
use e2e_tests::client::{Incoming, Transcript};
use e2e_tests::metrics::wait_metric;
use e2e_tests::{Stack, WsClient, PATIENCE};
use futures_util::{SinkExt, StreamExt};
use shared_proto::{CancelStatus, ErrorCode, FinalStatus, ServerFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// A WebSocket client written by hand, to send what no library would.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(port: u16) -> Raw {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("tcp connect");
        let req = format!(
            "GET /ws?token={} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            test_jwt("raw-client")
        );
        s.write_all(req.as_bytes()).await.expect("write handshake");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            let n = tokio::time::timeout(PATIENCE, s.read(&mut chunk))
                .await
                .expect("handshake answer in time")
                .expect("read handshake");
            assert!(n > 0, "closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let mut raw = Raw {
            s,
            buf: buf[end..].to_vec(),
        };
        // The welcome.
        let (op, _) = raw.read_frame().await.expect("welcome");
        assert_eq!(op, 1);
        raw
    }

    /// A masked client frame; `declared` overrides the payload length in the header.
    fn frame(opcode: u8, fin: bool, payload: &[u8], declared: Option<u64>) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        let len = declared.unwrap_or(payload.len() as u64);
        if len < 126 {
            f.push(0x80 | len as u8);
        } else if len <= u16::MAX as u64 {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&len.to_be_bytes());
        }
        let key = [0x12, 0x34, 0x56, 0x78];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.expect("write frame");
    }

    async fn fill(&mut self, n: usize) -> Option<()> {
        let mut chunk = [0u8; 8192];
        while self.buf.len() < n {
            let r = tokio::time::timeout(PATIENCE, self.s.read(&mut chunk))
                .await
                .ok()?;
            match r {
                Ok(0) | Err(_) => return None,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
        Some(())
    }

    /// The next server frame (opcode, payload); None at EOF.
    async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        self.fill(2).await?;
        let op = self.buf[0] & 0x0f;
        let mut len = (self.buf[1] & 0x7f) as usize;
        let mut head = 2;
        if len == 126 {
            self.fill(4).await?;
            len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
            head = 4;
        } else if len == 127 {
            self.fill(10).await?;
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.buf[2..10]);
            len = u64::from_be_bytes(b) as usize;
            head = 10;
        }
        self.fill(head + len).await?;
        let payload = self.buf[head..head + len].to_vec();
        self.buf.drain(..head + len);
        Some((op, payload))
    }

    /// Reads until the server's close frame; returns its code (None: EOF without one).
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            let (op, payload) = self.read_frame().await?;
            if op == 8 {
                return payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            }
        }
    }
}

/// Sends `frame` over a fresh connection and expects a close with `code`.
async fn expect_close(port: u16, bytes: &[u8], code: u16, what: &str) {
    let mut raw = Raw::connect(port).await;
    raw.send(bytes).await;
    assert_eq!(raw.close_code().await, Some(code), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_its_documented_answer_and_a_neighbour_streams_whole() {
    let stack = Stack::start_with(
        &[],
        &[("CLIENT_TIMEOUT", "4s"), ("HEARTBEAT_INTERVAL", "1s")],
    )
    .await;
    let port = stack.gateway.port;
    let gw_http = stack.gateway.admin_url();
    let ws_url = stack.gateway.ws_url();

    // The neighbour streams a 10-second answer through everything below.
    let mut neighbour = WsClient::connect(&ws_url).await;
    let neighbour_session = neighbour.session_id;
    let neighbour_id = neighbour.chat("!demo tokens=600 rate=60\nneighbour").await;
    // After its answer the neighbour goes on reading until the hostile part is over: reading
    // answers the gateway's pings, and an idle reader would be closed after CLIENT_TIMEOUT if
    // the hostile part outlasts the answer (it does on a loaded machine).
    let (hostile_over, mut over) = tokio::sync::oneshot::channel::<()>();
    let neighbour_task = tokio::spawn(async move {
        let (t, _) = neighbour.collect(neighbour_id).await;
        loop {
            tokio::select! {
                _ = &mut over => break,
                incoming = neighbour.read() => {
                    assert!(
                        matches!(incoming, Incoming::Frame(ServerFrame::HeartbeatAck {})),
                        "the neighbour after its answer: {incoming:?}"
                    );
                }
            }
        }
        (t, neighbour)
    });
    wait_metric(&gw_http, "streamline_gateway_connections", 1.0).await;

    // Invalid UTF-8 in a text frame: 1007.
    expect_close(
        port,
        &Raw::frame(
            1,
            true,
            b"{\"type\":\"chat\",\"content\":\"\xff\xfe\"}",
            None,
        ),
        1007,
        "invalid utf-8",
    )
    .await;
    // One frame over MAX_FRAME_BYTES (64 KiB): 1009, decided from the header alone.
    expect_close(
        port,
        &Raw::frame(1, true, b"", Some(10 * 1024 * 1024)),
        1009,
        "declared oversized frame",
    )
    .await;
    let big = vec![b'a'; 70 * 1024];
    expect_close(
        port,
        &Raw::frame(1, true, &big, None),
        1009,
        "oversized frame",
    )
    .await;
    // A fragmented message whose parts add up to more than the limit: 1009.
    let part = vec![b'a'; 40 * 1024];
    let mut frag = Raw::frame(1, false, &part, None);
    frag.extend(Raw::frame(0, true, &part, None));
    expect_close(port, &frag, 1009, "fragmented oversized message").await;
    // Control frames over 125 bytes: 1002.
    expect_close(
        port,
        &Raw::frame(9, true, &[7u8; 200], None),
        1002,
        "ping over 125 bytes",
    )
    .await;
    expect_close(
        port,
        &Raw::frame(8, true, &[7u8; 130], None),
        1002,
        "close over 125 bytes",
    )
    .await;
    // A fragmented control frame is a protocol error too.
    expect_close(
        port,
        &Raw::frame(9, false, b"x", None),
        1002,
        "fragmented ping",
    )
    .await;

    // Deeply nested JSON: an error frame, and the connection keeps working.
    let mut c = WsClient::connect(&ws_url).await;
    let deep = format!(
        r#"{{"type":"chat","content":"x","extra":{}1{}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    c.send_text(deep).await;
    match c.frame().await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::InvalidJson),
        other => panic!("deep nesting: {other:?}"),
    }
    c.send_text("[".repeat(60_000)).await;
    match c.frame().await {
        ServerFrame::Error { code, .. } => {
            assert!(
                matches!(code, ErrorCode::InvalidJson | ErrorCode::UnknownType),
                "{code}"
            )
        }
        other => panic!("bare deep nesting: {other:?}"),
    }
    c.send_json(serde_json::json!({"type":"heartbeat"})).await;
    assert!(matches!(c.frame().await, ServerFrame::HeartbeatAck {}));
    c.close().await;

    cancel_flood(&ws_url).await;

    // A TCP reset in the middle of a frame: the gateway drops the connection and releases it.
    {
        let mut raw = Raw::connect(port).await;
        let mut partial = Raw::frame(1, true, &[b'x'; 1000], None);
        partial.truncate(100);
        raw.send(&partial).await;
        raw.s.set_zero_linger().expect("SO_LINGER 0");
        drop(raw); // RST
    }
    // A half-open connection: the peer says nothing and answers no ping. The gateway closes it
    // after CLIENT_TIMEOUT (4 s here) with 4000.
    let started = Instant::now();
    let mut silent = Raw::connect(port).await;
    // Read (so the kernel buffer takes the gateway's pings) but never answer.
    let code = silent.close_code().await;
    assert_eq!(code, Some(4000), "half-open connection");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "closed too early"
    );
    drop(silent);

    // Every hostile connection is gone: only the neighbour remains.
    wait_metric(&gw_http, "streamline_gateway_connections", 1.0).await;
    let _ = hostile_over.send(());

    let (t, neighbour) = tokio::time::timeout(PATIENCE * 2, neighbour_task)
        .await
        .expect("neighbour finished in time")
        .expect("neighbour task");
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    let stored = stack
        .ai
        .message(neighbour_session, neighbour_id)
        .await
        .expect("stored");
    assert_eq!(t.text, stored.text, "the neighbour's text arrived whole");
    assert_eq!(t.seqs.len(), stored.last_seq as usize);
    neighbour.close().await;

    // Both processes are alive and ready.
    for url in [
        format!("{gw_http}/readyz"),
        format!("{}/readyz", stack.ai.url()),
    ] {
        let r = reqwest::get(&url).await.expect("alive");
        assert!(r.status().is_success(), "{url}: {}", r.status());
    }
}

/// 100,000 cancels of random ids, as fast as the client reads the answers: each gets exactly one
/// answer, `cancel_ack{not_found}` or `error{rate_limited}` (with its message id).
async fn cancel_flood(ws_url: &str) {
    const N: usize = 100_000;
    let url = e2e_tests::auth::with_default_token(ws_url);
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("handshake");
    let (mut tx, mut rx) = ws.split();
    let ids: Vec<Uuid> = (0..N).map(|_| Uuid::new_v4()).collect();
    let sent: HashSet<Uuid> = ids.iter().copied().collect();
    let started = Instant::now();
    // The flood runs as fast as the client reads its answers: at most WINDOW unanswered (a
    // client that does not read at all is closed as a slow consumer, 4008, like any other).
    const WINDOW: usize = 4_000;
    let window = std::sync::Arc::new(tokio::sync::Semaphore::new(WINDOW));
    let permits = window.clone();
    let writer = tokio::spawn(async move {
        for (i, id) in ids.iter().enumerate() {
            permits.acquire().await.expect("window").forget();
            let text = serde_json::json!({"type":"cancel","message_id":id}).to_string();
            tx.feed(Message::Text(text.into())).await.expect("feed");
            if i % 256 == 0 {
                tx.flush().await.expect("flush");
            }
        }
        tx.flush().await.expect("flush");
        tx
    });
    let (mut acks, mut limited) = (0usize, 0usize);
    let mut answered = HashSet::with_capacity(N);
    while acks + limited < N {
        let next = tokio::time::timeout(PATIENCE, rx.next())
            .await
            .expect("an answer in time")
            .expect("socket open")
            .expect("frame");
        let text = match next {
            Message::Text(text) => text,
            Message::Close(c) => panic!("closed after {acks} acks, {limited} limited: {c:?}"),
            _ => continue,
        };
        let frame: ServerFrame = serde_json::from_str(&text).expect("json");
        let id = match frame {
            ServerFrame::Welcome { .. } => continue,
            ServerFrame::CancelAck { message_id, status } => {
                assert_eq!(status, CancelStatus::NotFound);
                acks += 1;
                message_id
            }
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                message_id: Some(message_id),
                ..
            } => {
                limited += 1;
                message_id
            }
            other => panic!("unexpected answer to a cancel: {other:?}"),
        };
        assert!(sent.contains(&id), "answer for an id never sent");
        assert!(answered.insert(id), "two answers for one cancel");
        window.add_permits(1);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let tx = writer.await.expect("writer");
    // The default bucket: 40 at once, then 20 per second.
    assert!(acks >= 40, "acks {acks}");
    assert!(
        (acks as f64) <= 40.0 + 20.0 * elapsed + 2.0,
        "acks {acks} in {elapsed:.1}s"
    );
    println!("cancel flood: {acks} cancel_ack, {limited} rate_limited in {elapsed:.1}s");
    let mut ws = tx.reunite(rx).expect("reunite");
    let _ = ws.close(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_and_garbage_after_close_do_not_hurt() {
    let stack = Stack::start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    c.send_raw(Message::Binary(vec![0u8; 1000].into())).await;
    match c.frame().await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::BinaryNotSupported),
        other => panic!("{other:?}"),
    }
    // A close, then more frames on the same TCP connection: ignored.
    let mut raw = Raw::connect(stack.gateway.port).await;
    let mut bytes = Raw::frame(8, true, &1000u16.to_be_bytes(), None);
    bytes.extend(Raw::frame(1, true, br#"{"type":"heartbeat"}"#, None));
    raw.send(&bytes).await;
    assert_eq!(raw.close_code().await, Some(1000));
    // The gateway still serves.
    let id = c.chat("!demo tokens=5 rate=0\nstill fine").await;
    let (t, _): (Transcript, _) = c.collect(id).await;
    t.assert_well_formed();
}
