//! The core end-to-end suite, on every store from one definition (so they cannot drift):
//! each test is a function of the [`Backend`], instantiated by `backend_tests!` as
//! `redis::<name>` (redis-server + ai-service + gateway processes), `memory::<name>` (the root
//! `streamline` binary in embedded mode: one process, in-memory store) and `cluster::<name>`
//! (the processes on a 3-master Redis Cluster). Real binaries, real sockets.
//!
//! Tests about several processes sharing one store (a cancel sent to another ai-service
//! replica, a resume on another gateway) need a store outside the processes: they run on
//! `redis` and `cluster` only (`shared_store` in `backend_tests!`); in embedded mode there is one
//! ai-service and one gateway by construction.

use std::time::Duration;

use e2e_tests::client::{absorb, Incoming, Transcript};
use e2e_tests::metrics::{metric, wait_metric};
use e2e_tests::{AiApi, AiService, Backend, Gateway, WsClient, PATIENCE};
use futures_util::future::join_all;
use shared_proto::{CancelStatus, DeltaKind, ErrorCode, FinalStatus, MessageState, ServerFrame};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

async fn chat_streams_in_order_and_matches_the_stored_text(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=80 rate=0\nhello there").await;
    // `ack` comes before any chunk of the message.
    match c.frame().await {
        ServerFrame::Ack { message_id } => assert_eq!(message_id, id),
        other => panic!("expected ack, got {other:?}"),
    }
    let (t, others) = c.collect(id).await;
    t.assert_well_formed();
    assert!(others.is_empty(), "unexpected frames: {others:?}");
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    let stored = stack
        .ai
        .message(c.session_id, id)
        .await
        .expect("stored message");
    assert_eq!(stored.state, MessageState::Completed);
    assert_eq!(stored.last_seq, t.seqs.len() as u64);
    assert_eq!(t.text, stored.text);
    assert_eq!(
        t.text.split(' ').count(),
        80,
        "the demo model wrote 80 tokens"
    );
}

/// A model faster than the store (`rate=0`: tokens as fast as the CPU makes them) is held to
/// the store's pace: its tokens coalesce into chunks of about 8 KiB at most (the generation's
/// bound on text waiting for a write), and the answer still arrives whole and in order.
async fn a_model_faster_than_the_store_comes_in_bounded_chunks(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c
        .chat("!demo tokens=30000 rate=0\nas fast as you can")
        .await;
    let mut t = Transcript::new(id);
    let mut largest = 0;
    while t.done.is_none() {
        match c.recv().await {
            Incoming::Frame(ServerFrame::Ack { .. }) => {}
            Incoming::Frame(f) => {
                if let ServerFrame::Chunk { delta, .. } = &f {
                    largest = largest.max(delta.len());
                }
                assert!(absorb(&mut t, &f), "unexpected frame {f:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    assert_eq!(t.text.split(' ').count(), 30000, "every token arrived");
    // 8 KiB of pending text, plus the one token that crossed the bound.
    assert!(largest <= 8 * 1024 + 32, "a chunk of {largest} bytes");
    assert!(t.seqs.len() >= 20, "{} chunks for ~200 KB", t.seqs.len());
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    assert_eq!(stored.text, t.text);
}

async fn a_gateway_assigned_message_id_comes_back_in_ack(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    c.send_json(serde_json::json!({"type":"chat","content":"!demo tokens=3 rate=0\nhi"}))
        .await;
    let id = match c.frame().await {
        ServerFrame::Ack { message_id } => message_id,
        other => panic!("expected ack, got {other:?}"),
    };
    let (t, _) = c.collect(id).await;
    t.assert_well_formed();
    assert_eq!(t.text.split(' ').count(), 3, "three demo tokens");
}

async fn a_thousand_heartbeats_while_streaming_never_interleave(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=400 rate=400\nlong answer").await;
    // Fire 1,000 heartbeats without waiting for any answer.
    for _ in 0..1000 {
        c.feed_text(r#"{"type":"heartbeat"}"#.to_string()).await;
    }
    c.flush().await;
    let mut t = Transcript::new(id);
    let mut acks = 0;
    while acks < 1000 || t.done.is_none() {
        match c.recv().await {
            Incoming::Frame(ServerFrame::HeartbeatAck {}) => acks += 1,
            Incoming::Frame(ServerFrame::Ack { .. }) => {}
            Incoming::Frame(f) => assert!(absorb(&mut t, &f), "unexpected frame {f:?}"),
            Incoming::Garbage(g) => panic!("a frame did not parse as JSON: {g:?}"),
            Incoming::Close(c) => panic!("closed: {c:?}"),
        }
    }
    assert_eq!(acks, 1000);
    t.assert_well_formed();
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    assert_eq!(t.text, stored.text);
}

async fn cancel_storm_yields_acks_and_exactly_one_cancelled_done(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=5000 rate=50\nlong").await;
    let mut t = Transcript::new(id);
    // Wait until it streams.
    c.read_chunks(&mut t, 1).await;
    for _ in 0..20 {
        c.feed_text(serde_json::json!({"type":"cancel","message_id":id}).to_string())
            .await;
    }
    c.flush().await;
    let mut acks = Vec::new();
    while acks.len() < 20 || t.done.is_none() {
        match c.frame().await {
            ServerFrame::CancelAck { message_id, status } => {
                assert_eq!(message_id, id);
                acks.push(status);
            }
            ServerFrame::Error { code, message, .. } => panic!("error frame: {code} {message}"),
            f => assert!(absorb(&mut t, &f), "unexpected frame {f:?}"),
        }
    }
    assert!(
        acks.iter()
            .all(|s| matches!(s, CancelStatus::Cancelling | CancelStatus::AlreadyCancelled)),
        "{acks:?}"
    );
    assert_eq!(
        acks.iter()
            .filter(|s| **s == CancelStatus::Cancelling)
            .count(),
        1,
        "exactly one cancel made the transition: {acks:?}"
    );
    assert_eq!(t.status(), Some(FinalStatus::Cancelled));
    // A heartbeat round trip: anything the gateway had for this message is now received.
    c.send_json(serde_json::json!({"type":"heartbeat"})).await;
    loop {
        match c.frame().await {
            ServerFrame::HeartbeatAck {} => break,
            f => {
                absorb(&mut t, &f);
            }
        }
    }
    t.assert_well_formed();
    // No chunk was written after the cancelled transition.
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    assert_eq!(stored.state, MessageState::Cancelled);
    assert_eq!(stored.last_seq, t.seqs.len() as u64);
    assert_eq!(stored.text, t.text);
}

async fn cancel_after_completion_then_after_the_grace_period(backend: Backend) {
    let stack = backend.start_with(&[("CANCEL_GRACE", "1s")], &[]).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=5 rate=0\nquick").await;
    let (t, _) = c.collect(id).await;
    assert_eq!(t.status(), Some(FinalStatus::Completed));

    // Right after completion: a success that says so, over the socket and over HTTP.
    c.cancel(id).await;
    match c.frame().await {
        ServerFrame::CancelAck { status, .. } => assert_eq!(status, CancelStatus::AlreadyCompleted),
        other => panic!("expected cancel_ack, got {other:?}"),
    }
    let (code, body) = stack.ai.cancel(c.session_id, id).await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("already_completed"))
    );

    // Once the grace marker has expired (the store expires it after CANCEL_GRACE):
    // not_found. A cancel of a finished message changes nothing, so poll with it (the same
    // observation on every store; with Redis it is the `…:grace` key expiring).
    let start = std::time::Instant::now();
    loop {
        let (code, _) = stack.ai.cancel(c.session_id, id).await;
        if code == 404 {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "grace marker never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "grace ended too early"
    );
    if let Some(redis) = &stack.redis {
        let grace_key = format!("s:{{{}}}:m:{}:grace", c.session_id, id);
        assert_eq!(
            redis.cli(&["exists", &grace_key]),
            "0",
            "the grace key is gone from Redis"
        );
    }
    c.cancel(id).await;
    match c.frame().await {
        ServerFrame::CancelAck { status, .. } => assert_eq!(status, CancelStatus::NotFound),
        other => panic!("expected cancel_ack, got {other:?}"),
    }
    let (code, body) = stack.ai.cancel(c.session_id, id).await;
    assert_eq!((code, body["status"].as_str()), (404, Some("not_found")));
    // The message itself is still readable (the resume window is longer than the grace).
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    assert_eq!(stored.state, MessageState::Completed);
}

async fn a_cancel_before_the_first_token_wins(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    // One token every 20 s: the first is far away.
    let id = c.chat("!demo tokens=5 rate=0.05\nslow start").await;
    match c.frame().await {
        ServerFrame::Ack { message_id } => assert_eq!(message_id, id),
        other => panic!("expected ack, got {other:?}"),
    }
    c.cancel(id).await;
    let mut t = Transcript::new(id);
    let (ack, others) = c.await_cancel(&mut t).await;
    assert!(others.is_empty(), "unexpected frames {others:?}");
    assert_eq!(ack, Some(CancelStatus::Cancelling));
    assert!(t.seqs.is_empty(), "no chunk before or after the cancel");
    assert_eq!(
        t.done.as_ref().map(|d| (d.0, d.1)),
        Some((0, FinalStatus::Cancelled))
    );
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    assert_eq!(
        (stored.state, stored.last_seq),
        (MessageState::Cancelled, 0)
    );
    // The generation task is gone (its provider stream dropped), long before its first token.
    wait_no_generations(&stack.ai).await;
}

/// Waits until the ai-service reports no running generation.
async fn wait_no_generations(ai: &AiApi) {
    wait_metric(&ai.admin_url(), "streamline_ai_generations_running", 0.0).await;
}

async fn a_cancel_sent_to_another_replica_stops_the_generation(backend: Backend) {
    let redis = backend.start_redis();
    let owner = AiService::start(&redis.url(), &[]).await;
    let other = AiService::start(&redis.url(), &[]).await;
    let gw = Gateway::start(&redis.url(), &owner.url(), &[]).await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    let id = c.chat("!demo tokens=100000 rate=50\nendless").await;
    let mut t = Transcript::new(id);
    c.read_chunks(&mut t, 3).await;
    // The cancel goes to the replica that does not run the generation.
    let (code, body) = other.cancel(c.session_id, id).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("cancelling")));
    while t.done.is_none() {
        let f = c.frame().await;
        assert!(absorb(&mut t, &f), "unexpected frame {f:?}");
    }
    assert_eq!(t.status(), Some(FinalStatus::Cancelled));
    t.assert_well_formed();
    // The owner dropped the generation (it would otherwise run for 2,000 s).
    wait_no_generations(&owner.api()).await;
    let stored = owner.message(c.session_id, id).await.expect("stored");
    assert_eq!(stored.last_seq, t.seqs.len() as u64);
}

async fn a_slow_consumer_is_closed_and_its_neighbour_streams_normally(backend: Backend) {
    let stack = backend
        .start_with(
            &[],
            &[("SEND_QUEUE_BYTES", "65536"), ("SEND_TIMEOUT", "2s")],
        )
        .await;
    let port = stack.gateway.port;
    let mut slow = WsClient::connect_small_buffer(&stack.gateway.ws_url(), port).await;
    let slow_id = slow.chat("!demo tokens=2000000 rate=0\nflood").await;
    // The slow client now reads nothing. Its neighbour streams a normal answer.
    let mut ok = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = ok.chat("!demo tokens=200 rate=100\nneighbour").await;
    let (t, _) = ok.collect(id).await;
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    let stored = stack.ai.message(ok.session_id, id).await.expect("stored");
    assert_eq!(t.text, stored.text);

    // Let the flood run until the gateway has closed a slow consumer (its counter says so), or
    // until the flood is fully produced (far more than the gateway's bounds for the client).
    // Waiting for the counter rather than for all 2,000,000 tokens keeps the test fast on every
    // store: the in-memory one writes one chunk per token (no round trip to coalesce behind).
    // Then stop the flood: were the client not closed, it would now get `done`, which fails.
    let start = std::time::Instant::now();
    loop {
        if metric(
            &stack.gateway.admin_url(),
            "streamline_gateway_slow_consumer_closes_total",
        )
        .await
        .unwrap_or(0.0)
            >= 1.0
        {
            break;
        }
        if let Some(v) = stack.ai.message(slow.session_id, slow_id).await {
            if v.state.is_terminal() {
                break;
            }
        }
        assert!(
            start.elapsed() < PATIENCE * 2,
            "the slow client was never closed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.ai.cancel(slow.session_id, slow_id).await;
    stack.ai.wait_terminal(slow.session_id, slow_id).await;
    // Now read what the slow client got: frames, then a 4008 close.
    let mut frames = 0u64;
    loop {
        match slow.recv().await {
            Incoming::Frame(ServerFrame::Done { .. }) => {
                panic!("the slow client got its whole answer: it was never closed")
            }
            Incoming::Frame(_) => frames += 1,
            Incoming::Garbage(g) => panic!("garbage: {g:.80}"),
            Incoming::Close(close) => {
                let (code, reason) = close.expect("a close frame with a code");
                assert_eq!(code, 4008, "close code (reason {reason:?})");
                assert_eq!(reason, "slow consumer");
                break;
            }
        }
    }
    assert!(frames > 0);
    // The gateway still serves new clients.
    let mut again = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = again.chat("!demo tokens=10 rate=0\nstill alive").await;
    let (t, _) = again.collect(id).await;
    t.assert_well_formed();
}

async fn bad_input_gets_a_stable_error_code_and_the_connection_keeps_working(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let cases: Vec<(Message, ErrorCode)> = vec![
        (Message::Text("not json".into()), ErrorCode::InvalidJson),
        (
            Message::Text(r#"{"type":"dance"}"#.into()),
            ErrorCode::UnknownType,
        ),
        (
            Message::Text(r#"{"content":"no type"}"#.into()),
            ErrorCode::UnknownType,
        ),
        (
            Message::Text(r#"{"type":"chat"}"#.into()),
            ErrorCode::InvalidFrame,
        ),
        (
            Message::Text(r#"{"type":"cancel"}"#.into()),
            ErrorCode::InvalidFrame,
        ),
        (
            Message::Text(r#"{"type":"cancel","message_id":"not-a-uuid"}"#.into()),
            ErrorCode::InvalidMessageId,
        ),
        (
            Message::Text(r#"{"type":"chat","content":"  "}"#.into()),
            ErrorCode::EmptyContent,
        ),
        (
            Message::Binary(vec![1u8, 2, 3].into()),
            ErrorCode::BinaryNotSupported,
        ),
        (
            Message::Text(
                serde_json::json!({"type":"resume","message_id":Uuid::new_v4(),"after_seq":0})
                    .to_string()
                    .into(),
            ),
            ErrorCode::ResumeUnavailable,
        ),
    ];
    for (input, expected) in cases {
        c.send_raw(input.clone()).await;
        match c.frame().await {
            ServerFrame::Error { code, .. } => assert_eq!(code, expected, "for {input:?}"),
            other => panic!("for {input:?}: expected error, got {other:?}"),
        }
    }
    // An unknown (well-formed) message id is not an error for cancel: it is `not_found`.
    let unknown = Uuid::new_v4();
    c.cancel(unknown).await;
    match c.frame().await {
        ServerFrame::CancelAck { message_id, status } => {
            assert_eq!((message_id, status), (unknown, CancelStatus::NotFound))
        }
        other => panic!("expected cancel_ack, got {other:?}"),
    }
    // The same connection still streams.
    let id = c.chat("!demo tokens=20 rate=0\nstill fine").await;
    let (t, _) = c.collect(id).await;
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
}

async fn a_failing_model_ends_the_message_as_failed(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=50 rate=0 fail_after=7\nbreak").await;
    let (t, _) = c.collect(id).await;
    t.assert_well_formed();
    let (_, status, error) = t.done.clone().expect("done");
    assert_eq!(status, FinalStatus::Failed);
    assert_eq!(error.map(|e| e.code), Some(ErrorCode::UpstreamError));
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    assert_eq!(stored.state, MessageState::Failed);
    assert_eq!(stored.text, t.text);
    assert_eq!(t.text.split(' ').count(), 7);
}

async fn a_retried_chat_never_starts_a_second_generation(backend: Backend) {
    let stack = backend.start().await;
    let session = Uuid::new_v4();
    let id = Uuid::new_v4();
    let url = format!("{}/v1/sessions/{session}/messages", stack.ai.url());
    let http = reqwest::Client::new();
    let posts = (0..10).map(|_| {
        http.post(&url)
            .json(&serde_json::json!({"message_id": id, "content": "!demo tokens=30 rate=300\nx"}))
            .send()
    });
    for r in join_all(posts).await {
        assert_eq!(r.expect("post").status().as_u16(), 202);
    }
    let view = stack.ai.wait_terminal(session, id).await;
    assert_eq!(view.state, MessageState::Completed);
    assert_eq!(
        view.text.split(' ').count(),
        30,
        "one generation, not several"
    );
}

async fn resume_mid_stream_on_another_gateway_loses_and_repeats_nothing(backend: Backend) {
    let redis = backend.start_redis();
    let ai = AiService::start(&redis.url(), &[]).await;
    let gw1 = Gateway::start(&redis.url(), &ai.url(), &[]).await;
    let gw2 = Gateway::start(&redis.url(), &ai.url(), &[]).await;
    let mut c = WsClient::connect(&gw1.ws_url()).await;
    let id = c.chat("!demo tokens=300 rate=150\nresume me").await;
    let mut t = Transcript::new(id);
    c.read_chunks(&mut t, 20).await;
    let (session, token) = (c.session_id, c.resume_token.clone());
    c.drop_connection();
    let mut c2 = WsClient::resume_session(&gw2.ws_url(), session, &token).await;
    match &c2.welcome {
        ServerFrame::Welcome { active, .. } => {
            assert!(active.iter().any(|a| a.message_id == id), "{active:?}")
        }
        _ => unreachable!(),
    }
    c2.resume(id, t.seqs.len() as u64).await;
    while t.done.is_none() {
        let f = c2.frame().await;
        assert!(absorb(&mut t, &f), "unexpected {f:?}");
    }
    t.assert_well_formed();
    let stored = ai.message(session, id).await.expect("stored");
    assert_eq!(t.text, stored.text);

    // A bad token is refused at the handshake.
    let bad = format!(
        "{}?session_id={session}&resume_token=deadbeef",
        gw2.ws_url()
    );
    let err = tokio_tungstenite::connect_async(bad)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("401"), "{err}");
}

/// How many back-to-back chat + cancel pairs the ordering tests send.
const BACK_TO_BACK_RUNS: usize = 200;

/// Reads the frames of one back-to-back run until its `done` (and, when `want_ack`, its
/// `cancel_ack`): returns the transcript and the ack's status.
async fn read_run(
    c: &mut WsClient,
    id: Uuid,
    want_ack: bool,
) -> (Transcript, Option<CancelStatus>) {
    let mut t = Transcript::new(id);
    let mut ack = None;
    while t.done.is_none() || (want_ack && ack.is_none()) {
        match c.frame().await {
            ServerFrame::Ack { message_id } => assert_eq!(message_id, id),
            ServerFrame::CancelAck { message_id, status } => {
                assert_eq!(message_id, id);
                assert!(ack.replace(status).is_none(), "two cancel_acks");
            }
            f => assert!(absorb(&mut t, &f), "unexpected frame {f:?}"),
        }
    }
    (t, ack)
}

/// Stop right after Enter: `chat` and `cancel` written back to back in one flush (one TCP
/// segment, usually), with no await between them, 200 times. Every run ends `cancelled`, the
/// `cancel_ack` is `cancelling` (never `not_found`, which is what a cancel that overtook its
/// chat used to get while the answer ran to the end), and at `rate=4` at most one chunk made it
/// out before the cancel.
async fn a_cancel_right_behind_its_chat_always_wins(backend: Backend) {
    let stack = backend
        .start_with(&[], &[("RATE_LIMIT_PER_SEC", "0")])
        .await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    for run in 0..BACK_TO_BACK_RUNS {
        let id = Uuid::new_v4();
        c.feed_text(
            serde_json::json!({"type":"chat","content":"!demo tokens=6 rate=4\nslow","message_id":id})
                .to_string(),
        )
        .await;
        c.feed_text(serde_json::json!({"type":"cancel","message_id":id}).to_string())
            .await;
        c.flush().await;
        let (t, ack) = read_run(&mut c, id, true).await;
        assert_eq!(ack, Some(CancelStatus::Cancelling), "run {run}");
        assert_eq!(t.status(), Some(FinalStatus::Cancelled), "run {run}");
        assert!(t.seqs.len() <= 1, "run {run}: {} chunks", t.seqs.len());
        t.assert_well_formed();
    }
}

/// The same race through two ai-service replicas: the `chat` goes over the socket (its
/// gateway posts it to replica A) and, right behind it, the operator's cancel goes over HTTP to
/// replica B. Whichever reaches the store first, the cancel wins: before the create, its
/// tombstone ends the message at the create and B, told so, answers `cancelling`.
async fn a_cancel_over_http_right_behind_its_chat_always_wins(backend: Backend) {
    let redis = backend.start_redis();
    let owner = AiService::start(&redis.url(), &[]).await;
    let other = AiService::start(&redis.url(), &[]).await;
    let gw = Gateway::start(&redis.url(), &owner.url(), &[("RATE_LIMIT_PER_SEC", "0")]).await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    let other = other.api();
    for run in 0..BACK_TO_BACK_RUNS {
        let id = Uuid::new_v4();
        c.send_json(
            serde_json::json!({"type":"chat","content":"!demo tokens=6 rate=4\nslow","message_id":id}),
        )
        .await;
        let (api, sid) = (other.clone(), c.session_id);
        let cancel = tokio::spawn(async move { api.cancel(sid, id).await });
        let (t, _) = read_run(&mut c, id, false).await;
        let (code, body) = cancel.await.expect("cancel task");
        assert_eq!(
            (code, body["status"].as_str()),
            (200, Some("cancelling")),
            "run {run}"
        );
        assert_eq!(t.status(), Some(FinalStatus::Cancelled), "run {run}");
        assert!(t.seqs.len() <= 1, "run {run}: {} chunks", t.seqs.len());
        t.assert_well_formed();
    }
}

/// The tombstone path on its own, in a fixed order: the cancel reaches the store first (its
/// tombstone key exists), the chat comes after. The message ends `cancelled` at its create,
/// without a chunk, and the waiting cancel answers `cancelling`.
async fn a_cancel_that_reached_the_store_first_ends_the_later_chat(backend: Backend) {
    let redis = backend.start_redis();
    let owner = AiService::start(&redis.url(), &[]).await;
    let other = AiService::start(&redis.url(), &[("CANCEL_GRACE", "20s")]).await;
    let gw = Gateway::start(&redis.url(), &owner.url(), &[]).await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    let id = Uuid::new_v4();
    let (api, sid) = (other.api(), c.session_id);
    let cancel = tokio::spawn(async move { api.cancel(sid, id).await });
    let tomb = format!("s:{{{sid}}}:m:{id}:tomb");
    let start = std::time::Instant::now();
    while redis.cli(&["exists", &tomb]) != "1" {
        assert!(start.elapsed() < PATIENCE, "no tombstone was written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    c.send_json(
        serde_json::json!({"type":"chat","content":"!demo tokens=6 rate=4\nslow","message_id":id}),
    )
    .await;
    let (t, _) = read_run(&mut c, id, false).await;
    assert_eq!(t.status(), Some(FinalStatus::Cancelled));
    assert!(t.seqs.is_empty(), "no chunk: {:?}", t.seqs);
    t.assert_well_formed();
    let (code, body) = cancel.await.expect("cancel task");
    assert_eq!((code, body["status"].as_str()), (200, Some("cancelling")));
    assert_eq!(redis.cli(&["exists", &tomb]), "0", "the create consumed it");
    // A repeat is what it is for any cancelled message.
    let (code, body) = other.cancel(sid, id).await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("already_cancelled"))
    );
    // An id nobody creates is still not found (after the short wait for a create).
    let (code, body) = other.cancel(sid, Uuid::new_v4()).await;
    assert_eq!((code, body["status"].as_str()), (404, Some("not_found")));
}

/// Reads frames into `t` until its `done`, returning the `started` frames and ignoring acks
/// and cancel_acks; anything else fails.
async fn follow_to_done(c: &mut WsClient, t: &mut Transcript) -> Vec<(Uuid, String)> {
    let mut started = Vec::new();
    while t.done.is_none() {
        match c.frame().await {
            ServerFrame::Started {
                message_id,
                content,
            } => started.push((message_id, content)),
            ServerFrame::Ack { .. } | ServerFrame::CancelAck { .. } => {}
            f => assert!(absorb(t, &f), "unexpected frame {f:?}"),
        }
    }
    started
}

/// Two sockets of one session (two tabs): a message started in one appears in the other
/// (`started`), both receive every chunk, and a cancel from the other ends it for both.
async fn two_sockets_of_a_session_share_every_answer(backend: Backend) {
    let stack = backend.start().await;
    let url = stack.gateway.ws_url();
    let mut a = WsClient::connect(&url).await;
    let mut b = WsClient::resume_session(&url, a.session_id, &a.resume_token).await;
    assert_eq!(b.session_id, a.session_id);
    let content = "!demo tokens=40 rate=20\nshared";
    let id = a.chat(content).await;
    let mut ta = Transcript::new(id);
    let mut tb = Transcript::new(id);
    a.read_chunks(&mut ta, 2).await;
    b.read_chunks(&mut tb, 2).await;
    b.cancel(id).await;
    let started_a = follow_to_done(&mut a, &mut ta).await;
    let started_b = follow_to_done(&mut b, &mut tb).await;
    ta.assert_well_formed();
    tb.assert_well_formed();
    assert_eq!(ta.status(), Some(FinalStatus::Cancelled));
    assert_eq!(tb.status(), Some(FinalStatus::Cancelled));
    assert_eq!(
        (ta.seqs.clone(), ta.text.clone()),
        (tb.seqs.clone(), tb.text.clone())
    );
    assert!(
        started_a.is_empty(),
        "the starting tab needs no announcement"
    );
    let _ = started_b;
    let stored = stack.ai.message(a.session_id, id).await.expect("stored");
    assert_eq!(stored.text, ta.text);
}

/// The `started` frame comes before the message's first chunk on the other socket.
async fn a_message_started_in_one_tab_is_announced_in_the_other(backend: Backend) {
    let stack = backend.start().await;
    let url = stack.gateway.ws_url();
    let mut a = WsClient::connect(&url).await;
    let mut b = WsClient::resume_session(&url, a.session_id, &a.resume_token).await;
    let content = "!demo tokens=5 rate=0\nannounce me";
    let id = a.chat(content).await;
    match b.frame().await {
        ServerFrame::Started {
            message_id,
            content: c,
        } => assert_eq!((message_id, c.as_str()), (id, content)),
        other => panic!("expected started, got {other:?}"),
    }
    let mut tb = Transcript::new(id);
    assert!(follow_to_done(&mut b, &mut tb).await.is_empty());
    tb.assert_well_formed();
    assert_eq!(tb.status(), Some(FinalStatus::Completed));
}

/// A session's sockets on one gateway are capped: one more than `MAX_SOCKETS_PER_SESSION`
/// closes the oldest with 4001; the others stay.
async fn the_oldest_of_too_many_sockets_is_closed_with_4001(backend: Backend) {
    let stack = backend
        .start_with(&[], &[("MAX_SOCKETS_PER_SESSION", "2")])
        .await;
    let url = stack.gateway.ws_url();
    let mut first = WsClient::connect(&url).await;
    let mut second = WsClient::resume_session(&url, first.session_id, &first.resume_token).await;
    let mut third = WsClient::resume_session(&url, first.session_id, &first.resume_token).await;
    match first.recv().await {
        Incoming::Close(Some((code, reason))) => {
            assert_eq!((code, reason.as_str()), (4001, "session replaced"))
        }
        other => panic!("expected close 4001, got {other:?}"),
    }
    for c in [&mut second, &mut third] {
        c.send_json(serde_json::json!({"type":"heartbeat"})).await;
        assert!(matches!(c.frame().await, ServerFrame::HeartbeatAck {}));
    }
}

/// A reloaded tab redraws its session from `conversation`: the finished messages with their
/// text and status, and the running one with its text so far, which it then resumes from
/// `last_seq` to the end with nothing missing or repeated.
async fn conversation_lists_the_sessions_messages_for_a_reload(backend: Backend) {
    let stack = backend.start().await;
    let url = stack.gateway.ws_url();
    let mut c = WsClient::connect(&url).await;
    let first = c.chat("!demo tokens=5 rate=0\nfirst").await;
    let (t1, _) = c.collect(first).await;
    let second = c.chat("!demo tokens=3000 rate=0.05\nnever answered").await;
    c.cancel(second).await;
    let mut t2 = Transcript::new(second);
    c.await_cancel(&mut t2).await;
    let third = c.chat("!demo tokens=60 rate=20\nstill running").await;
    let mut t3 = Transcript::new(third);
    c.read_chunks(&mut t3, 3).await;
    // The reload: a new socket of the session.
    let mut r = WsClient::resume_session(&url, c.session_id, &c.resume_token).await;
    r.send_json(serde_json::json!({"type":"conversation"}))
        .await;
    let messages = loop {
        match r.frame().await {
            ServerFrame::Conversation { messages } => break messages,
            ServerFrame::Started { .. } | ServerFrame::Chunk { .. } | ServerFrame::Done { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let ids: Vec<Uuid> = messages.iter().map(|m| m.message_id).collect();
    assert_eq!(ids, vec![first, second, third]);
    assert_eq!(messages[0].content, "!demo tokens=5 rate=0\nfirst");
    assert_eq!(
        (messages[0].state, messages[0].text.as_str()),
        (MessageState::Completed, t1.text.as_str())
    );
    assert_eq!(messages[0].status, Some(FinalStatus::Completed));
    assert_eq!(
        (messages[1].state, messages[1].status),
        (MessageState::Cancelled, Some(FinalStatus::Cancelled))
    );
    let running = &messages[2];
    assert!(!running.state.is_terminal());
    assert_eq!(running.status, None);
    assert!(running.text.len() >= t3.text.len().min(1) && !running.text.is_empty());
    // The reloaded tab resumes the running answer where its snapshot ended.
    r.resume(third, running.last_seq).await;
    let mut rest = Transcript::new(third);
    while rest.done.is_none() {
        let f = r.frame().await;
        absorb(&mut rest, &f);
    }
    let stored = stack.ai.message(c.session_id, third).await.expect("stored");
    assert_eq!(format!("{}{}", running.text, rest.text), stored.text);
    assert_eq!(rest.seqs.first().copied(), Some(running.last_seq + 1));
}

/// A `resume` of a finished message with any `after_seq` beyond its log (the last `seq` + 1
/// included, issue 18) yields its `done` at once, with the message's real last `seq`.
async fn a_resume_beyond_a_finished_log_yields_the_done(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=4 rate=0\nshort").await;
    let (t, _) = c.collect(id).await;
    let (last, status, _) = t.done.expect("done");
    assert_eq!(status, FinalStatus::Completed);
    for after_seq in [last, last + 1, last + 2, 1000] {
        c.resume(id, after_seq).await;
        match c.frame().await {
            ServerFrame::Done {
                message_id,
                seq,
                status,
                ..
            } => assert_eq!(
                (message_id, seq, status),
                (id, last, FinalStatus::Completed),
                "after_seq {after_seq}"
            ),
            other => panic!("after_seq {after_seq}: expected the done, got {other:?}"),
        }
    }
    // The same from another socket of the session (a reload), which never followed it.
    let mut r =
        WsClient::resume_session(&stack.gateway.ws_url(), c.session_id, &c.resume_token).await;
    r.resume(id, last + 1).await;
    match r.frame().await {
        ServerFrame::Done { seq, status, .. } => {
            assert_eq!((seq, status), (last, FinalStatus::Completed))
        }
        other => panic!("a new socket's resume: expected the done, got {other:?}"),
    }
}

/// The demo model's reasoning (`reasoning=N`): N reasoning chunks before the answer, apart from
/// its text, and the stored answer holds the text only.
async fn reasoning_chunks_come_before_the_answer_and_are_not_part_of_it(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c
        .chat("!demo tokens=6 rate=30 reasoning=4\nthink first")
        .await;
    let mut t = Transcript::new(id);
    let mut kinds = Vec::new();
    while t.done.is_none() {
        match c.frame().await {
            ServerFrame::Ack { .. } => {}
            f => {
                if let ServerFrame::Chunk { kind, .. } = &f {
                    kinds.push(*kind);
                }
                assert!(absorb(&mut t, &f), "unexpected frame {f:?}");
            }
        }
    }
    t.assert_well_formed();
    assert!(t.reasoning.starts_with("Hmm,"), "{:?}", t.reasoning);
    let first_text = kinds
        .iter()
        .position(|k| *k == DeltaKind::Text)
        .expect("text");
    assert!(kinds[..first_text]
        .iter()
        .all(|k| *k == DeltaKind::Reasoning));
    assert!(
        kinds[first_text..].iter().all(|k| *k == DeltaKind::Text),
        "{kinds:?}"
    );
    assert_eq!(t.text.split(' ').count(), 6);
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    assert_eq!(stored.text, t.text, "the answer holds no reasoning");
}

/// Two sockets of one session on two gateways share every answer too.
async fn two_sockets_on_two_gateways_share_every_answer(backend: Backend) {
    let redis = backend.start_redis();
    let ai = AiService::start(&redis.url(), &[]).await;
    let gw1 = Gateway::start(&redis.url(), &ai.url(), &[]).await;
    let gw2 = Gateway::start(&redis.url(), &ai.url(), &[]).await;
    let mut a = WsClient::connect(&gw1.ws_url()).await;
    let mut b = WsClient::resume_session(&gw2.ws_url(), a.session_id, &a.resume_token).await;
    let id = a.chat("!demo tokens=40 rate=20\nacross gateways").await;
    match b.frame().await {
        ServerFrame::Started { message_id, .. } => assert_eq!(message_id, id),
        other => panic!("expected started, got {other:?}"),
    }
    let mut ta = Transcript::new(id);
    let mut tb = Transcript::new(id);
    b.read_chunks(&mut tb, 2).await;
    b.cancel(id).await;
    follow_to_done(&mut a, &mut ta).await;
    follow_to_done(&mut b, &mut tb).await;
    assert_eq!(ta.status(), Some(FinalStatus::Cancelled));
    assert_eq!(
        (ta.seqs.clone(), ta.text.clone()),
        (tb.seqs.clone(), tb.text.clone())
    );
}

/// Every end carries usage (issue: interrupted streams were billed wrong). The demo model
/// reports none, so it is counted: the completion tokens streamed, the prompt estimated, marked
/// `estimated`. A cancelled answer counts what it streamed before the cancel, whoever wrote the
/// end; one cancelled before its first token counts no completion.
async fn every_end_carries_usage_counted_when_not_reported(backend: Backend) {
    let stack = backend.start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let usage_of = |f: &ServerFrame| match f {
        ServerFrame::Done { usage, .. } => *usage,
        _ => None,
    };
    // Completed.
    let id = c.chat("!demo tokens=12 rate=0\ncount me").await;
    let done = loop {
        let f = c.frame().await;
        if matches!(&f, ServerFrame::Done { message_id, .. } if *message_id == id) {
            break f;
        }
    };
    let u = usage_of(&done).expect("usage on a completed done");
    assert!(u.estimated);
    assert_eq!(u.completion_tokens, 12);
    assert!(u.prompt_tokens > 0);
    assert_eq!(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    // Cancelled mid-answer: the cancel writes the end, and counts what was streamed.
    let id = c.chat("!demo tokens=1000 rate=50\ncancel me").await;
    let mut t = Transcript::new(id);
    c.read_chunks(&mut t, 5).await;
    c.cancel(id).await;
    c.await_cancel(&mut t).await;
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    let u = stored.usage.expect("usage on a cancelled end");
    assert!(u.estimated);
    assert_eq!(
        u.completion_tokens,
        t.text.split(' ').filter(|w| !w.is_empty()).count() as u64
    );
    assert!(u.prompt_tokens > 0);
    // Cancelled before its first token: nothing streamed, the prompt estimated from the content.
    let content = "!demo tokens=5 rate=0.05\nnever answered";
    let id = c.chat(content).await;
    c.cancel(id).await;
    let mut t = Transcript::new(id);
    c.await_cancel(&mut t).await;
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    let u = stored
        .usage
        .expect("usage on a cancel before the first token");
    assert_eq!((u.completion_tokens, u.estimated), (0, true));
    assert!(u.prompt_tokens >= (content.len() as u64).div_ceil(4));
}

/// Instantiates the tests: those of `every` on every backend (`redis::…`, `memory::…`,
/// `cluster::…`), those of `shared_store` on the backends whose store lives outside the
/// processes, so that several ai-service or gateway processes can share it (`redis::…`,
/// `cluster::…`).
macro_rules! backend_tests {
    (every: [$($every:ident),* $(,)?], shared_store: [$($shared:ident),* $(,)?] $(,)?) => {
        mod redis {
            backend_tests!(@tests Redis, $($every,)* $($shared,)*);
        }
        mod memory {
            backend_tests!(@tests Memory, $($every,)*);
        }
        mod cluster {
            backend_tests!(@tests RedisCluster, $($every,)* $($shared,)*);
        }
    };
    (@tests $variant:ident, $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Backend::$variant).await
            }
        )*
    };
}

backend_tests! {
    every: [
        chat_streams_in_order_and_matches_the_stored_text,
        a_model_faster_than_the_store_comes_in_bounded_chunks,
        a_gateway_assigned_message_id_comes_back_in_ack,
        a_thousand_heartbeats_while_streaming_never_interleave,
        cancel_storm_yields_acks_and_exactly_one_cancelled_done,
        cancel_after_completion_then_after_the_grace_period,
        a_cancel_before_the_first_token_wins,
        a_slow_consumer_is_closed_and_its_neighbour_streams_normally,
        bad_input_gets_a_stable_error_code_and_the_connection_keeps_working,
        a_failing_model_ends_the_message_as_failed,
        a_retried_chat_never_starts_a_second_generation,
        a_cancel_right_behind_its_chat_always_wins,
        two_sockets_of_a_session_share_every_answer,
        a_message_started_in_one_tab_is_announced_in_the_other,
        the_oldest_of_too_many_sockets_is_closed_with_4001,
        conversation_lists_the_sessions_messages_for_a_reload,
        reasoning_chunks_come_before_the_answer_and_are_not_part_of_it,
        a_resume_beyond_a_finished_log_yields_the_done,
        every_end_carries_usage_counted_when_not_reported,
    ],
    // Several processes on one store: a cancel sent to another ai-service replica, a resume on
    // another gateway. The embedded mode has one of each by construction.
    shared_store: [
        a_cancel_sent_to_another_replica_stops_the_generation,
        resume_mid_stream_on_another_gateway_loses_and_repeats_nothing,
        a_cancel_over_http_right_behind_its_chat_always_wins,
        a_cancel_that_reached_the_store_first_ends_the_later_chat,
        two_sockets_on_two_gateways_share_every_answer,
    ],
}
