//! Issue 13, item 8: after a WebSocket close handshake the gateway closes TCP at once.
//!
//! RFC 6455 §7.1.1: the server closes the TCP connection first; a client waits for that (a
//! browser fires `onclose` only then). The client here behaves the same way: it is a bare TCP
//! socket (`e2e_tests::raw_ws`) that never closes or half-closes its own side, and each test
//! passes only if it reads the server's FIN (a read returning 0) after the close frames.
//!
//! Why these tests cannot pass by being slow or fast: before the fix, actix-http's dispatcher
//! kept its write side open after the WebSocket response ended and "lingered" until the client
//! sent FIN or `client_disconnect_timeout` (the gateway's `DISCONNECT_TIMEOUT`) ran out; with a
//! client that waits for the server, that was always the timer (1 s at the default). Every test
//! here sets `DISCONNECT_TIMEOUT=1h` and waits at most [`FIN_WAIT`] (5 s) for the FIN: the old
//! behaviour would deliver it after an hour, 720 times later than the test waits, so it fails
//! on any machine; a prompt close (about a millisecond here, see `close-bench`) passes with a
//! margin of thousands. Neither outcome depends on how fast the machine is.

use std::time::Duration;

use e2e_tests::metrics::metric;
use e2e_tests::raw_ws::{opcode, RawEvent, RawWs};
use e2e_tests::{Stack, PATIENCE};
use shared_proto::ServerFrame;
use uuid::Uuid;

/// How long a test waits for the server's FIN after the close frames.
const FIN_WAIT: Duration = Duration::from_secs(5);
/// `DISCONNECT_TIMEOUT` of every gateway here: far beyond [`FIN_WAIT`].
const LINGER: &str = "1h";

async fn stack(gw_env: &[(&str, &str)]) -> Stack {
    let mut env = vec![("DISCONNECT_TIMEOUT", LINGER)];
    env.extend_from_slice(gw_env);
    Stack::start_with(&[], &env).await
}

/// Reads the `welcome` text frame of a new connection; returns the connection and its session.
async fn connected(ws: RawWs) -> (RawWs, Uuid) {
    let mut ws = ws;
    match ws.next_within(PATIENCE).await {
        Some(RawEvent::Frame {
            opcode: opcode::TEXT,
            payload,
        }) => match serde_json::from_slice(&payload) {
            Ok(ServerFrame::Welcome { session_id, .. }) => (ws, session_id),
            _ => panic!(
                "expected welcome, got {}",
                String::from_utf8_lossy(&payload)
            ),
        },
        other => panic!("expected the welcome frame, got {other:?}"),
    }
}

/// The server's FIN must come next, within [`FIN_WAIT`].
async fn expect_fin(ws: &mut RawWs, what: &str) {
    match ws.next_within(FIN_WAIT).await {
        Some(RawEvent::Eof) => {}
        None => panic!(
            "{what}: the gateway did not close TCP within {FIN_WAIT:?} of the close handshake \
             (it is waiting for the client to close first)"
        ),
        Some(other) => panic!("{what}: expected the server's FIN, got {other:?}"),
    }
}

/// The case: the client closes; the gateway answers the close frame and then closes
/// TCP itself, without waiting for the client's FIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_answered_and_the_gateway_closes_tcp_at_once() {
    let stack = stack(&[]).await;
    let (mut ws, _) = connected(RawWs::connect(stack.gateway.port).await).await;
    ws.send_close(1000).await;
    assert_eq!(ws.until_close().await, Some(1000));
    expect_fin(&mut ws, "client close").await;
    // The gateway still serves; the same holds for the next client.
    let (mut again, _) = connected(RawWs::connect(stack.gateway.port).await).await;
    again.send_close(1001).await;
    assert_eq!(
        again.until_close().await,
        Some(1000),
        "answered 1000 whatever the code"
    );
    expect_fin(&mut again, "second client close").await;
}

/// A server-initiated close (4000, a silent client): the client answers the close frame as a
/// browser does, and the gateway's FIN follows. The reply reaches a gateway that is still
/// reading (lingering), so it is dropped quietly rather than answered with a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_timeout_close_ends_tcp_at_once() {
    let stack = stack(&[("CLIENT_TIMEOUT", "1s"), ("HEARTBEAT_INTERVAL", "250ms")]).await;
    // This client never answers pings: the gateway closes it with 4000 after CLIENT_TIMEOUT.
    let (mut ws, _) = connected(RawWs::connect(stack.gateway.port).await).await;
    assert_eq!(ws.until_close().await, Some(4000));
    ws.send_close(4000).await;
    expect_fin(&mut ws, "4000 client timeout").await;
}

/// A slow consumer (4008): once the client reads what was already in its socket and the close
/// frame, the gateway's FIN follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_close_ends_tcp_at_once() {
    let stack = stack(&[("SEND_QUEUE_BYTES", "4096")]).await;
    let (mut ws, session_id) =
        connected(RawWs::connect_small_buffer(stack.gateway.port).await).await;
    let id = Uuid::new_v4();
    let chat = serde_json::json!({
        "type": "chat", "content": "!demo tokens=2000000 rate=0\nflood", "message_id": id,
    });
    ws.send_text(&chat.to_string()).await;
    // Not reading until the gateway has closed this client as a slow consumer (its counter is
    // the event), then stop the flood and read everything: frames, then the close frame.
    let gateway = stack.gateway.admin_url();
    let start = std::time::Instant::now();
    while metric(&gateway, "streamline_gateway_slow_consumer_closes_total")
        .await
        .unwrap_or(0.0)
        < 1.0
    {
        assert!(
            start.elapsed() < PATIENCE,
            "the slow client was never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.ai.cancel(session_id, id).await;
    assert_eq!(ws.until_close().await, Some(4008));
    ws.send_close(4008).await;
    expect_fin(&mut ws, "4008 slow consumer").await;
}

/// Shutdown (1001): the close frame comes before the FIN, and the FIN comes promptly. (The
/// gateway exits soon after SIGTERM, which also ends its sockets, so this guards the order
/// and the shutdown path more than the linger: it passed before the fix too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_close_ends_tcp_at_once() {
    let stack = stack(&[]).await;
    let (mut ws, _) = connected(RawWs::connect(stack.gateway.port).await).await;
    stack.gateway.proc.signal(15);
    assert_eq!(ws.until_close().await, Some(1001));
    ws.send_close(1001).await;
    expect_fin(&mut ws, "1001 shutdown").await;
}
