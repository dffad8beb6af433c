//! Benchmark: how long a WebSocket close takes to reach TCP, at the gateway's defaults.
//!
//! A browser (and any client that follows RFC 6455 §7.1.1) does not close TCP itself after the
//! close handshake: it waits for the server's FIN, and only then fires `onclose`. This measures
//! that wait with a client that behaves the same way (a bare TCP socket, `e2e_tests::raw_ws`),
//! for each way a gateway connection is closed:
//!
//! - `client_close`: the client sends close 1000; time from sending it to the server's FIN
//!   (`--runs` times, one after another), with the time to the close reply and, for
//!   comparison, a ping's round trip on the same connection just before;
//! - `client_timeout_4000`, `shutdown_1001`, `slow_consumer_4008`: the gateway closes; the
//!   client answers the close frame with its own, as a browser does; time from the server's
//!   close frame to its FIN (`--conns` connections at once for 4000 and 1001, a few runs for
//!   4008).
//!
//! Prints one JSON line per scenario. A read waits at most 10 s for the FIN.
//!
//! Command (release binaries first):
//! `cargo build --release --workspace --bins && cargo run --release -p e2e-tests --bin close-bench -- --runs 200 --conns 50`

use std::time::Duration;

use tokio::time::Instant;

use e2e_tests::args::arg;
use e2e_tests::metrics::metric;
use e2e_tests::raw_ws::{opcode, RawEvent, RawWs};
use e2e_tests::stats::summary_ms;
use e2e_tests::{Stack, PATIENCE};

/// Longest wait for the server's FIN; the old behaviour took about 1 s.
const FIN_PATIENCE: Duration = Duration::from_secs(10);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Waits for the server's FIN; returns when it came, or panics after [`FIN_PATIENCE`].
async fn fin(ws: &mut RawWs) -> Instant {
    match ws.next_within(FIN_PATIENCE).await {
        Some(RawEvent::Eof) => Instant::now(),
        other => panic!("expected the server's FIN, got {other:?}"),
    }
}

/// A server-initiated close seen by a browser-like client: the close frame's code and the
/// time from its arrival to the server's FIN.
async fn answer_server_close(mut ws: RawWs) -> (Option<u16>, Duration) {
    let code = ws.until_close().await;
    let got_close = Instant::now();
    ws.send_close(code.unwrap_or(1000)).await;
    (code, fin(&mut ws).await - got_close)
}

async fn client_close(runs: usize) -> serde_json::Value {
    let stack = Stack::start().await;
    let mut delays = Vec::with_capacity(runs);
    let mut replies = Vec::with_capacity(runs);
    let mut pongs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut ws = RawWs::connect(stack.gateway.port).await;
        ws.next().await; // welcome
                         // For comparison: a ping's round trip takes the same path through the gateway (the
                         // connection's loop, its sink, actix-ws) as the answer to a close frame.
        let pinged = Instant::now();
        ws.send(opcode::PING, b"p").await;
        loop {
            if let RawEvent::Frame {
                opcode: opcode::PONG,
                ..
            } = ws.next().await
            {
                break;
            }
        }
        pongs.push(ms(pinged.elapsed()));
        let sent = Instant::now();
        ws.send_close(1000).await;
        assert_eq!(ws.until_close().await, Some(1000));
        replies.push(ms(sent.elapsed()));
        delays.push(ms(fin(&mut ws).await - sent));
    }
    serde_json::json!({
        "scenario": "client_close",
        "measures": "close sent -> server FIN",
        "delay": summary_ms(&delays),
        "close_reply": summary_ms(&replies),
        "ping_pong": summary_ms(&pongs),
    })
}

async fn server_closes(
    name: &str,
    code: u16,
    conns: Vec<RawWs>,
    trigger: impl FnOnce(),
) -> serde_json::Value {
    let waits: Vec<_> = conns
        .into_iter()
        .map(|ws| tokio::spawn(answer_server_close(ws)))
        .collect();
    trigger();
    let mut delays = Vec::with_capacity(waits.len());
    for w in waits {
        let (got, d) = w.await.expect("client task");
        assert_eq!(got, Some(code), "{name}: close code");
        delays.push(ms(d));
    }
    serde_json::json!({"scenario": name, "measures": "server close frame -> server FIN", "delay": summary_ms(&delays)})
}

async fn connect_many(port: u16, n: usize) -> Vec<RawWs> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ws = RawWs::connect(port).await;
        ws.next().await; // welcome
        conns.push(ws);
    }
    conns
}

async fn client_timeout(conns: usize) -> serde_json::Value {
    let stack = Stack::start_with(
        &[],
        &[("CLIENT_TIMEOUT", "1s"), ("HEARTBEAT_INTERVAL", "250ms")],
    )
    .await;
    let clients = connect_many(stack.gateway.port, conns).await;
    // The clients never answer pings: the gateway closes each with 4000 about 1 s from now.
    server_closes("client_timeout_4000", 4000, clients, || {}).await
}

async fn shutdown(conns: usize) -> serde_json::Value {
    let stack = Stack::start().await;
    let clients = connect_many(stack.gateway.port, conns).await;
    // SIGTERM: the gateway closes every socket with 1001, then exits.
    server_closes("shutdown_1001", 1001, clients, || {
        stack.gateway.proc.signal(15)
    })
    .await
}

async fn slow_consumer(runs: usize) -> serde_json::Value {
    let stack = Stack::start_with(&[], &[("SEND_QUEUE_BYTES", "4096")]).await;
    let metrics_url = stack.gateway.admin_url();
    let mut delays = Vec::with_capacity(runs);
    for run in 0..runs {
        let mut ws = RawWs::connect_small_buffer(stack.gateway.port).await;
        ws.next().await; // welcome
        let chat = serde_json::json!({"type": "chat", "content": "!demo tokens=100000 rate=0\nflood", "message_id": uuid::Uuid::new_v4()});
        ws.send_text(&chat.to_string()).await;
        // Not reading: the queue passes 4 KiB and the gateway closes with 4008 (its counter
        // says when). Then read it all: the frames already in the socket, the close frame.
        let closed = (run + 1) as f64;
        let start = Instant::now();
        while metric(
            &metrics_url,
            "streamline_gateway_slow_consumer_closes_total",
        )
        .await
        .unwrap_or(0.0)
            < closed
        {
            assert!(
                start.elapsed() < PATIENCE,
                "the slow client was never closed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (code, d) = answer_server_close(ws).await;
        assert_eq!(code, Some(4008));
        delays.push(ms(d));
    }
    serde_json::json!({"scenario": "slow_consumer_4008", "measures": "server close frame -> server FIN", "delay": summary_ms(&delays)})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = arg("--runs", 100);
    let conns = arg("--conns", 20);
    println!("{}", client_close(runs).await);
    println!("{}", client_timeout(conns).await);
    println!("{}", shutdown(conns).await);
    println!("{}", slow_consumer(5).await);
}
