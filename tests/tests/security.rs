//! Issue 8 end to end: JWT authentication and session ownership, origins, the ops API's
//! bearer token, limits, metrics and readiness. See `docs/SECURITY.md`.

use std::time::{Duration, Instant};

use e2e_tests::auth::{mint_jwt, sign_claims, test_jwt, with_token, TEST_AUTH_SECRET};
use e2e_tests::client::{absorb, Transcript};
use e2e_tests::handshake::{code_of, handshake};
use e2e_tests::metrics::metrics_text;
use e2e_tests::{AiService, Gateway, RedisServer, Stack, WsClient, PATIENCE};
use shared_proto::{CancelStatus, ErrorCode, FinalStatus, ServerFrame};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_requires_a_valid_jwt() {
    // No clock-skew leeway, so that a token expired a second ago is refused.
    let stack = Stack::start_with(&[], &[("JWT_LEEWAY", "0s")]).await;
    let url = stack.gateway.ws_url();
    let exp = now() + 600;
    let bad_tokens = [
        "".to_string(),
        "not-a-jwt".to_string(),
        mint_jwt("another-secret-0123456789", "alice"),
        sign_claims(
            TEST_AUTH_SECRET,
            &serde_json::json!({"sub":"alice","exp":now() - 1}),
        ),
        sign_claims(TEST_AUTH_SECRET, &serde_json::json!({"sub":"alice"})),
        sign_claims(TEST_AUTH_SECRET, &serde_json::json!({"exp":exp})),
        sign_claims(
            TEST_AUTH_SECRET,
            &serde_json::json!({"sub":"alice","exp":exp,"nbf":now() + 600}),
        ),
        // alg=none with the claims of a valid token.
        format!(
            "eyJhbGciOiJub25lIn0.{}.",
            test_jwt("alice").split('.').nth(1).unwrap_or_default()
        ),
    ];
    // No token at all.
    let (status, body) = handshake(&url, &[]).await.expect_err("refused");
    assert_eq!((status, code_of(&body)), (401, Some("unauthorized")));
    for bad in &bad_tokens {
        let (status, body) = handshake(&with_token(&url, bad), &[])
            .await
            .expect_err("refused");
        assert_eq!(
            (status, code_of(&body)),
            (401, Some("unauthorized")),
            "{bad}"
        );
        let proto = format!("bearer.{bad}");
        if HeaderValue::from_str(&proto).is_ok() && !bad.is_empty() {
            let (status, _) = handshake(&url, &[("Sec-WebSocket-Protocol", &proto)])
                .await
                .expect_err("refused");
            assert_eq!(status, 401, "{bad}");
        }
    }
    // A valid token in the query.
    let mut c = WsClient::connect(&with_token(&url, &test_jwt("alice"))).await;
    let id = c.chat("!demo tokens=3 rate=0\nhi").await;
    let (t, _) = c.collect(id).await;
    t.assert_well_formed();
    // In Sec-WebSocket-Protocol: the app protocol is selected when offered, else the bearer
    // entry itself is echoed (the handshake requires one offered protocol back).
    let jwt = test_jwt("alice");
    let offered = format!("streamline.v1, bearer.{jwt}");
    let selected = handshake(&url, &[("Sec-WebSocket-Protocol", &offered)])
        .await
        .expect("accepted");
    assert_eq!(selected.as_deref(), Some("streamline.v1"));
    let offered = format!("bearer.{jwt}");
    let selected = handshake(&url, &[("Sec-WebSocket-Protocol", &offered)])
        .await
        .expect("accepted");
    assert_eq!(selected.as_deref(), Some(offered.as_str()));
    // The metrics saw the refusals.
    let m = metrics_text(&stack.gateway.admin_url()).await;
    assert!(
        m.lines().any(|l| l
            .starts_with("streamline_gateway_auth_failures_total{reason=\"expired\"} ")
            && !l.ends_with(" 0")),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_sessions_work_without_auth_secret() {
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), &[]).await;
    // The harness always sets AUTH_SECRET; start this gateway by hand without it.
    let (port, admin_port) = (e2e_tests::free_port(), e2e_tests::free_port());
    let mut cmd = std::process::Command::new(e2e_tests::process::bin_path("gateway"));
    cmd.env("GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .env("ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
        .env("REDIS_URL", redis.url())
        .env("AI_SERVICE_URL", ai.url())
        .env_remove("AUTH_SECRET");
    let _proc = e2e_tests::process::Proc::spawn("gateway", cmd);
    let gw_url = format!("ws://127.0.0.1:{port}/ws");
    e2e_tests::stack::wait_ready(&format!("http://127.0.0.1:{admin_port}/readyz")).await;
    // No token: welcome. A token is ignored (and a bearer protocol still completes).
    let selected = handshake(&gw_url, &[]).await.expect("anonymous");
    assert_eq!(selected, None);
    let offered = format!("bearer.{}", test_jwt("whoever"));
    let selected = handshake(&gw_url, &[("Sec-WebSocket-Protocol", &offered)])
        .await
        .expect("anonymous with a protocol");
    assert_eq!(selected.as_deref(), Some(offered.as_str()));
    let mut c = WsClient::connect(&gw_url).await;
    let id = c.chat("!demo tokens=3 rate=0\nanon").await;
    let (t, _) = c.collect(id).await;
    t.assert_well_formed();
    let (sid, token) = (c.session_id, c.resume_token.clone());
    c.close().await;
    let c2 = WsClient::resume_session(&gw_url, sid, &token).await;
    assert_eq!(c2.session_id, sid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_belongs_to_its_sub() {
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), &[]).await;
    let gw1 = Gateway::start(&redis.url(), &ai.url(), &[]).await;
    let gw2 = Gateway::start(&redis.url(), &ai.url(), &[]).await;
    let alice_url = with_token(&gw1.ws_url(), &test_jwt("alice"));
    let mut alice = WsClient::connect(&alice_url).await;
    let id = alice.chat("!demo tokens=200 rate=50\nalice's answer").await;
    let mut t = Transcript::new(id);
    alice.read_chunks(&mut t, 3).await;
    let (sid, token) = (alice.session_id, alice.resume_token.clone());

    // Bob, with alice's session id and resume token: refused exactly like an unknown session.
    let bob_jwt = test_jwt("bob");
    let steal = format!(
        "{}?session_id={sid}&resume_token={token}&token={bob_jwt}",
        gw2.ws_url()
    );
    let unknown = format!(
        "{}?session_id={}&resume_token={}&token={bob_jwt}",
        gw2.ws_url(),
        Uuid::new_v4(),
        "ab".repeat(32)
    );
    let stolen = handshake(&steal, &[]).await.expect_err("refused");
    let unknown = handshake(&unknown, &[]).await.expect_err("refused");
    assert_eq!(stolen, unknown, "another user's session looks unknown");
    assert_eq!(stolen.0, 401);

    // On his own session, bob can neither cancel nor resume alice's message.
    let mut bob = WsClient::connect(&with_token(&gw2.ws_url(), &bob_jwt)).await;
    assert_ne!(bob.session_id, sid);
    assert_ne!(bob.resume_token, token);
    bob.cancel(id).await;
    match bob.frame().await {
        ServerFrame::CancelAck { message_id, status } => {
            assert_eq!((message_id, status), (id, CancelStatus::NotFound))
        }
        other => panic!("expected cancel_ack, got {other:?}"),
    }
    let unknown_id = Uuid::new_v4();
    for mid in [id, unknown_id] {
        bob.resume(mid, 0).await;
        match bob.frame().await {
            ServerFrame::Error {
                code, message_id, ..
            } => assert_eq!(
                (code, message_id),
                (ErrorCode::ResumeUnavailable, Some(mid))
            ),
            other => panic!("expected resume_unavailable, got {other:?}"),
        }
    }

    // Alice resumes her own session on the other gateway and gets the whole answer.
    alice.drop_connection();
    let mut alice2 = WsClient::connect(&format!(
        "{}?session_id={sid}&resume_token={token}&token={}",
        gw2.ws_url(),
        test_jwt("alice")
    ))
    .await;
    assert_eq!(alice2.session_id, sid);
    assert_eq!(
        alice2.resume_token, token,
        "the token is stable per (sub, session)"
    );
    alice2.resume(id, t.seqs.len() as u64).await;
    while t.done.is_none() {
        let f = alice2.frame().await;
        assert!(absorb(&mut t, &f), "unexpected {f:?}");
    }
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    let stored = ai.message(sid, id).await.expect("stored");
    assert_eq!(t.text, stored.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_origins_may_connect() {
    let stack = Stack::start_with(
        &[],
        &[(
            "ALLOWED_ORIGINS",
            "https://chat.example.com,http://localhost:8080",
        )],
    )
    .await;
    let url = with_token(&stack.gateway.ws_url(), &test_jwt("alice"));
    let (status, body) = handshake(&url, &[("Origin", "https://evil.example.net")])
        .await
        .expect_err("refused");
    assert_eq!((status, code_of(&body)), (403, Some("origin_not_allowed")));
    let (status, _) = handshake(&url, &[("Origin", "null")])
        .await
        .expect_err("refused");
    assert_eq!(status, 403);
    handshake(&url, &[("Origin", "https://chat.example.com")])
        .await
        .expect("allowed origin");
    handshake(&url, &[("Origin", "http://localhost:8080")])
        .await
        .expect("allowed origin");
    // No Origin: a non-browser client.
    handshake(&url, &[]).await.expect("no origin");
    // The origin check comes first: a refused origin learns nothing about its token.
    let (status, _) = handshake(
        &stack.gateway.ws_url(),
        &[("Origin", "https://evil.example.net")],
    )
    .await
    .expect_err("refused");
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_api_requires_its_bearer_token() {
    const TOKEN: &str = "ops-token-0123456789abcdef";
    let stack = Stack::start_with(
        &[("AI_SERVICE_TOKEN", TOKEN)],
        &[("AI_SERVICE_TOKEN", TOKEN)],
    )
    .await;
    // Through the gateway, everything works.
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=5 rate=0\nwith a token").await;
    let (t, _) = c.collect(id).await;
    t.assert_well_formed();
    c.cancel(id).await;
    match c.frame().await {
        ServerFrame::CancelAck { status, .. } => assert_eq!(status, CancelStatus::AlreadyCompleted),
        other => panic!("{other:?}"),
    }
    // Directly: every /v1 route wants the token.
    let http = reqwest::Client::new();
    let base = stack.ai.url();
    let view = format!("{base}/v1/sessions/{}/messages/{id}", c.session_id);
    let start = format!("{base}/v1/sessions/{}/messages", c.session_id);
    let cancel = format!("{view}/cancel");
    for auth in [None, Some("Bearer wrong-token-0123456789"), Some(TOKEN)] {
        let with = |r: reqwest::RequestBuilder| match auth {
            Some(a) if a == TOKEN => r.bearer_auth(a),
            Some(a) => r.header("Authorization", a),
            None => r,
        };
        let responses = [
            with(http.get(&view)).send().await.expect("get"),
            with(http.post(&cancel)).send().await.expect("cancel"),
            with(http.post(&start))
                .json(&serde_json::json!({"message_id": Uuid::new_v4(), "content": "!demo tokens=1 rate=0\nx"}))
                .send()
                .await
                .expect("start"),
        ];
        for r in responses {
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            if auth == Some(TOKEN) {
                assert!(matches!(status, 200 | 202), "{status} {body}");
            } else {
                assert_eq!((status, code_of(&body)), (401, Some("unauthorized")));
            }
        }
    }
    // Probes and the scraper stay open (the scraper on the admin port only).
    let admin = stack.ai.admin_url();
    for url in [
        format!("{base}/healthz"),
        format!("{base}/readyz"),
        format!("{admin}/healthz"),
        format!("{admin}/readyz"),
        format!("{admin}/metrics"),
    ] {
        let r = http.get(&url).send().await.expect("open");
        assert!(r.status().is_success(), "{url}");
    }
    // A gateway with the wrong token cannot start answers.
    let gw = Gateway::start(
        &stack.redis.url(),
        &stack.ai.url(),
        &[("AI_SERVICE_TOKEN", "wrong-token-0123456789")],
    )
    .await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    let id = c.chat("!demo tokens=5 rate=0\nrefused").await;
    match c.frame().await {
        ServerFrame::Error {
            code, message_id, ..
        } => assert_eq!(
            (code, message_id),
            (ErrorCode::AiServiceUnavailable, Some(id))
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_answer_503() {
    let stack = Stack::start_with(
        &[],
        &[
            ("MAX_CONNECTIONS", "6"),
            ("MAX_CONNECTIONS_PER_IP", "2"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let url = stack.gateway.ws_url();
    let jwt_url = with_token(&url, &test_jwt("alice"));
    // Per IP (the proxy in front, 127.0.0.1, is trusted: X-Forwarded-For names the client).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut req = jwt_url.as_str().into_client_request().expect("req");
        req.headers_mut().insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.7, 203.0.113.5"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("allowed");
        held.push(ws);
    }
    let (status, body) = handshake(&jwt_url, &[("X-Forwarded-For", "203.0.113.5")])
        .await
        .expect_err("per-ip limit");
    assert_eq!(
        (status, code_of(&body)),
        (503, Some("too_many_connections"))
    );
    // Spoofing the left part of the header changes nothing: the right-most entry counts.
    let (status, _) = handshake(&jwt_url, &[("X-Forwarded-For", "1.2.3.4, 203.0.113.5")])
        .await
        .expect_err("per-ip limit");
    assert_eq!(status, 503);
    // Another client IP is fine.
    let mut req = jwt_url.as_str().into_client_request().expect("req");
    req.headers_mut()
        .insert("x-forwarded-for", HeaderValue::from_static("203.0.113.6"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("allowed");
    held.push(ws);
    // Loopback clients are exempt from the per-IP bound, not from MAX_CONNECTIONS (6).
    let mut locals = Vec::new();
    for _ in 0..3 {
        locals.push(WsClient::connect(&url).await);
    }
    let (status, body) = handshake(&jwt_url, &[]).await.expect_err("total limit");
    assert_eq!(
        (status, code_of(&body)),
        (503, Some("too_many_connections"))
    );
    // Closing one frees its slot.
    if let Some(c) = locals.pop() {
        c.close().await;
    }
    let start = Instant::now();
    loop {
        match handshake(&jwt_url, &[]).await {
            Ok(_) => break,
            Err((503, _)) if start.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_rate_limited_but_heartbeats_and_stop_are_not() {
    let stack = Stack::start_with(
        &[],
        &[("RATE_LIMIT_PER_SEC", "1"), ("RATE_LIMIT_BURST", "5")],
    )
    .await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=100000 rate=20\nendless").await;
    // 30 invalid frames: the bucket has 4 tokens left (the chat took one).
    for _ in 0..30 {
        c.feed_text("not json".into()).await;
    }
    // 200 heartbeats: never limited.
    for _ in 0..200 {
        c.feed_text(r#"{"type":"heartbeat"}"#.into()).await;
    }
    c.flush().await;
    let (mut invalid, mut limited, mut hb) = (0, 0, 0);
    while invalid + limited < 30 || hb < 200 {
        match c.frame().await {
            ServerFrame::Error {
                code: ErrorCode::InvalidJson,
                ..
            } => invalid += 1,
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            ServerFrame::HeartbeatAck {} => hb += 1,
            ServerFrame::Ack { .. } | ServerFrame::Chunk { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!((4..=6).contains(&invalid), "invalid {invalid}");
    assert_eq!(invalid + limited, 30);
    // Stop still works: cancels have a bucket of their own.
    c.cancel(id).await;
    let mut t = Transcript::new(id);
    let (ack, _) = c.await_cancel(&mut t).await;
    assert_eq!(ack, Some(CancelStatus::Cancelling));
    assert_eq!(t.status(), Some(FinalStatus::Cancelled));
}

/// Reads until `refused` gets `error{too_many_generations}`; meanwhile only the running
/// messages' frames may come (their acks, chunks, and on a resumed socket their `started`:
/// a start entry published after the resume subscribed reaches it live, §3.2).
async fn refused_as_too_many(c: &mut WsClient, refused: Uuid, running: &[Uuid]) {
    loop {
        match c.frame().await {
            ServerFrame::Error {
                code, message_id, ..
            } => {
                assert_eq!(
                    (code, message_id),
                    (ErrorCode::TooManyGenerations, Some(refused))
                );
                return;
            }
            ServerFrame::Ack { message_id }
            | ServerFrame::Chunk { message_id, .. }
            | ServerFrame::Started { message_id, .. }
                if running.contains(&message_id) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_at_most_max_generations() {
    let stack = Stack::start_with(&[], &[("MAX_GENERATIONS_PER_SESSION", "2")]).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let a = c.chat("!demo tokens=100000 rate=5\na").await;
    let b = c.chat("!demo tokens=100000 rate=5\nb").await;
    let third = c.chat("!demo tokens=3 rate=0\nc").await;
    refused_as_too_many(&mut c, third, &[a, b]).await;
    // A resumed session inherits its running answers: the limit holds across reconnects.
    let (sid, token) = (c.session_id, c.resume_token.clone());
    c.drop_connection();
    let mut c = WsClient::resume_session(&stack.gateway.ws_url(), sid, &token).await;
    let fourth = c.chat("!demo tokens=3 rate=0\nd").await;
    refused_as_too_many(&mut c, fourth, &[a, b]).await;
    // When one ends, there is room again.
    c.cancel(a).await;
    loop {
        if let ServerFrame::CancelAck { status, .. } = c.frame().await {
            assert_eq!(status, CancelStatus::Cancelling);
            break;
        }
    }
    stack.ai.wait_terminal(sid, a).await;
    let start = Instant::now();
    loop {
        let id = c.chat("!demo tokens=3 rate=0\nnow").await;
        match c.frame().await {
            ServerFrame::Ack { message_id } => {
                assert_eq!(message_id, id);
                let (t, _) = c.collect(id).await;
                t.assert_well_formed();
                break;
            }
            ServerFrame::Error {
                code: ErrorCode::TooManyGenerations,
                ..
            } if start.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            other => panic!("{other:?}"),
        }
    }
    c.cancel(b).await;
}

fn has_series(text: &str, name: &str) -> bool {
    text.lines()
        .any(|l| !l.starts_with('#') && l.split([' ', '{']).next() == Some(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_exist_after_a_short_chat() {
    let stack = Stack::start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=10 rate=0\nmetrics").await;
    let (t, _) = c.collect(id).await;
    t.assert_well_formed();
    c.cancel(id).await;
    let _ = c.frame().await;
    let gw = metrics_text(&stack.gateway.admin_url()).await;
    for name in [
        "streamline_gateway_connections",
        "streamline_gateway_frames_in_total",
        "streamline_gateway_frames_out_total",
        "streamline_gateway_send_queue_bytes",
        "streamline_gateway_slow_consumer_closes_total",
        "streamline_gateway_delivery_lag_seconds_bucket",
        "streamline_gateway_cancels_total",
        "streamline_gateway_rate_limited_total",
        "streamline_gateway_too_many_generations_total",
        "streamline_gateway_connections_refused_total",
        "streamline_gateway_auth_failures_total",
        "streamline_gateway_ai_errors_total",
        "streamline_store_redis_errors_total",
        "streamline_store_redis_reconnects_total",
    ] {
        assert!(
            has_series(&gw, name),
            "gateway /metrics lacks {name}:\n{gw}"
        );
    }
    assert!(gw.contains("streamline_gateway_frames_out_total{type=\"chunk\"}"));
    assert!(gw.contains("streamline_gateway_cancels_total{status=\"already_completed\"} 1"));
    let ai = metrics_text(&stack.ai.admin_url()).await;
    for name in [
        "streamline_ai_generations_total",
        "streamline_ai_generations_running",
        "streamline_ai_cancels_total",
        "streamline_ai_upstream_errors_total",
        "streamline_store_redis_errors_total",
        "streamline_store_redis_reconnects_total",
    ] {
        assert!(
            has_series(&ai, name),
            "ai-service /metrics lacks {name}:\n{ai}"
        );
    }
    assert!(
        ai.contains("streamline_ai_generations_total{status=\"completed\"} 1"),
        "{ai}"
    );
    assert!(
        ai.contains("streamline_ai_cancels_total{status=\"already_completed\"} 1"),
        "{ai}"
    );
    assert!(
        ai.contains("streamline_ai_upstream_errors_total{code=\"upstream_timeout\"} 0"),
        "{ai}"
    );
}

async fn ready(base: &str) -> (u16, String) {
    match reqwest::Client::new()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

async fn wait_ready_is(base: &str, want: u16) -> String {
    let start = Instant::now();
    loop {
        let (status, body) = ready(base).await;
        if status == want {
            return body;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "readyz stays {status} {body:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_a_pubsub_round_trip() {
    let stack = Stack::start().await;
    let base = stack.gateway.admin_url();
    assert_eq!(ready(&base).await.0, 200);
    // Publishing wedged (PING still answers): not ready, and ready again once it flows.
    stack.redis.cli(&["client", "pause", "5000", "write"]);
    assert_eq!(stack.redis.cli(&["ping"]), "PONG");
    let why = wait_ready_is(&base, 503).await;
    assert!(
        why.contains("round trip") || why.contains("publish"),
        "{why}"
    );
    wait_ready_is(&base, 200).await;
    // Redis frozen altogether: not ready; thawed: ready.
    let pid = stack.redis.cli(&["info", "server"]);
    let pid = pid
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .map(|p| p.trim().to_string())
        .expect("redis pid");
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill -STOP");
    let why = wait_ready_is(&base, 503).await;
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .expect("kill -CONT");
    assert!(!why.is_empty());
    wait_ready_is(&base, 200).await;
}
