//! Observability end to end, on the real binaries: one chat is one trace across the gateway,
//! the ai-service and the model server (a test OTLP receiver gets the spans, the fake upstream
//! sees the trace's `traceparent`); every series of `docs/OBSERVABILITY.md` exists right after
//! start; the access log and `X-Request-Id`; `--healthcheck`; and the drain in waves after
//! SIGTERM.

use std::process::Command;
use std::time::Duration;

use e2e_tests::client::Incoming;
use e2e_tests::metrics::metrics_text;
use e2e_tests::otlp::{OtlpReceiver, ReceivedSpan};
use e2e_tests::process::{bin_path, free_port, Proc, RedisServer};
use e2e_tests::stack::wait_ready;
use e2e_tests::upstream::{FakeOpenAi, StreamReply};
use e2e_tests::{AiService, Gateway, Stack, WsClient, PATIENCE};
use shared_proto::FinalStatus;
use tokio::time::Instant;
use uuid::Uuid;

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn otel_env<'a>(otlp: &'a str, service: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
        ("OTEL_SERVICE_NAME", service),
        // Export within 100 ms rather than the default 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]
}

fn find<'a>(
    spans: &'a [ReceivedSpan],
    service: &str,
    name: &str,
    trace: &str,
) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.service == service && s.name == name && s.trace_id == trace)
}

/// The five spans of one chat, each the child of the one before.
fn chat_trace_complete(spans: &[ReceivedSpan], trace: &str) -> bool {
    let Some(chat) = find(spans, "gateway", "chat", trace) else {
        return false;
    };
    let Some(call) = find(
        spans,
        "gateway",
        "POST /v1/sessions/{session_id}/messages",
        trace,
    ) else {
        return false;
    };
    let Some(server) = spans.iter().find(|s| {
        s.service == "ai-service" && s.trace_id == trace && s.parent_span_id == call.span_id
    }) else {
        return false;
    };
    let Some(generation) = find(spans, "ai-service", "generation", trace) else {
        return false;
    };
    let Some(upstream) = find(spans, "ai-service", "POST chat/completions", trace) else {
        return false;
    };
    call.parent_span_id == chat.span_id
        && generation.parent_span_id == server.span_id
        && upstream.parent_span_id == generation.span_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_chat_is_one_trace_across_both_services_and_the_model_server() {
    let otlp = OtlpReceiver::start().await;
    let fake = FakeOpenAi::start().await;
    fake.set_default(StreamReply::new(&["Hel", "lo", "!"]).usage(7, 3));
    let base = fake.base_url();
    let endpoint = otlp.base_url();
    let mut ai_env = vec![
        ("PROVIDER", "openai"),
        ("OPENAI_BASE_URL", base.as_str()),
        ("OPENAI_MODEL", "test-model"),
    ];
    ai_env.extend(otel_env(&endpoint, "ai-service"));
    let stack = Stack::start_with(&ai_env, &otel_env(&endpoint, "gateway")).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;

    // 1. The client's traceparent is the trace's parent.
    let id = Uuid::new_v4();
    c.send_json(serde_json::json!({
        "type": "chat", "content": "hi", "message_id": id,
        "traceparent": format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"),
    }))
    .await;
    let (t, _) = c.collect(id).await;
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    let spans = otlp
        .wait_for("the chat's five spans under the client's trace", |s| {
            chat_trace_complete(s, CLIENT_TRACE)
        })
        .await;
    let chat = find(&spans, "gateway", "chat", CLIENT_TRACE).unwrap();
    assert_eq!(
        chat.parent_span_id, CLIENT_SPAN,
        "the client's span is the parent"
    );
    let server = spans
        .iter()
        .find(|s| s.service == "ai-service" && s.trace_id == CLIENT_TRACE && s.kind == 2)
        .expect("the ai-service's server span");
    assert!(
        server.name.starts_with("POST /v1/sessions/") && server.name.ends_with("/messages"),
        "{server:?}"
    );
    // The model server saw the upstream span's traceparent.
    let upstream = find(&spans, "ai-service", "POST chat/completions", CLIENT_TRACE).unwrap();
    let sent = fake.requests();
    let tp = sent
        .last()
        .and_then(|r| r.header("traceparent"))
        .expect("traceparent sent upstream");
    assert_eq!(tp, format!("00-{CLIENT_TRACE}-{}-01", upstream.span_id));

    // 2. An invalid traceparent is ignored: the chat is a trace of its own, still whole.
    let id2 = Uuid::new_v4();
    c.send_json(serde_json::json!({
        "type": "chat", "content": "again", "message_id": id2,
        "traceparent": "00-NOT-A-TRACEPARENT-01",
    }))
    .await;
    let (t2, _) = c.collect(id2).await;
    assert_eq!(t2.status(), Some(FinalStatus::Completed));
    let id2s = id2.to_string();
    let spans = otlp
        .wait_for("the second chat's trace", |s| {
            s.iter()
                .find(|x| x.name == "chat" && x.attr("message_id") == Some(id2s.as_str()))
                .is_some_and(|chat| chat_trace_complete(s, &chat.trace_id))
        })
        .await;
    let chat2 = spans
        .iter()
        .find(|x| x.name == "chat" && x.attr("message_id") == Some(id2s.as_str()))
        .unwrap();
    assert!(chat2.parent_span_id.is_empty(), "a root: {chat2:?}");
    assert_ne!(chat2.trace_id, CLIENT_TRACE);
    // Connections are not traces; every chat span is a trace's root or the client's child.
    assert!(spans.iter().all(|s| s.name != "connection"));
}

/// `(series, type, where)` of every row of the docs table.
fn documented_series() -> Vec<(String, String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/OBSERVABILITY.md");
    let doc = std::fs::read_to_string(path).expect("docs/OBSERVABILITY.md");
    let rows: Vec<_> = doc
        .lines()
        .filter(|l| l.starts_with("| `streamline_"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (
                cells[0].trim_matches('`').to_string(),
                cells[1].to_string(),
                cells[cells.len() - 1].to_string(),
            )
        })
        .collect();
    assert!(rows.len() > 30, "the table has {} rows", rows.len());
    rows
}

/// Whether `text` has a sample of `name` (a histogram: its `_count`).
fn has_series(text: &str, name: &str, kind: &str) -> bool {
    let sample = if kind == "histogram" {
        format!("{name}_count")
    } else {
        name.to_string()
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.split([' ', '{']).next() == Some(sample.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_series_exists_right_after_start() {
    let stack = Stack::start().await;
    let gateway = metrics_text(&stack.gateway.admin_url()).await;
    let ai = metrics_text(&stack.ai.admin_url()).await;
    let mut missing = Vec::new();
    for (name, kind, place) in documented_series() {
        let scrapes: Vec<(&str, &String)> = match place.as_str() {
            "gateway" => vec![("gateway", &gateway)],
            "ai-service" => vec![("ai-service", &ai)],
            "both" => vec![("gateway", &gateway), ("ai-service", &ai)],
            other => panic!("{name}: unknown `where` {other:?}"),
        };
        for (service, text) in scrapes {
            if !has_series(text, &name, &kind) {
                missing.push(format!("{name} ({kind}) on {service}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented but not served: {missing:#?}"
    );
    // And nothing is served under another prefix.
    for (service, text) in [("gateway", &gateway), ("ai-service", &ai)] {
        let stray: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter(|l| !l.starts_with("streamline_"))
            .collect();
        assert!(
            stray.is_empty(),
            "{service} serves unprefixed series: {stray:?}"
        );
    }
    assert!(gateway.contains("streamline_build_info{"), "build info");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_get_an_id_and_one_access_line_without_secrets() {
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), &[]).await;
    let (port, admin_port) = (free_port(), free_port());
    let mut cmd = Command::new(bin_path("gateway"));
    cmd.env("GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .env("ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
        .env("REDIS_URL", redis.url())
        .env("AI_SERVICE_URL", ai.url())
        .env("RUST_LOG", "info");
    let gw = Proc::spawn_capturing("gateway", cmd);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("http://127.0.0.1:{admin_port}/readyz")).await;
    let http = reqwest::Client::new();

    // A sane id is kept and echoed; a hostile one is replaced.
    let r = http
        .get(format!("{base}/"))
        .header("X-Request-Id", "req-42.a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42.a");
    let r = http
        .get(format!("{base}/"))
        .header("X-Request-Id", "evil\" id")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    // The ai-service's API does the same.
    let r = http
        .get(format!("{}/v1/sessions/x/messages/y", ai.url()))
        .header("X-Request-Id", "from-gw-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-request-id"], "from-gw-1");

    // A handshake with secrets in its query: logged, without them.
    let r = http
        .get(format!(
            "{base}/ws?session_id=abc&resume_token=sekrit-resume&token=sekrit-jwt"
        ))
        .send()
        .await
        .unwrap();
    let ws_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let start = Instant::now();
    let line = loop {
        let log = gw.stderr();
        if let Some(l) = log
            .lines()
            .find(|l| l.contains(&ws_id) && l.contains("path="))
        {
            break l.to_string();
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no access line for {ws_id}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        line.contains("resume_token=<redacted>") && line.contains("token=<redacted>"),
        "{line}"
    );
    assert!(line.contains("status="), "{line}");
    let log = gw.stderr();
    assert!(!log.contains("sekrit"), "a secret reached the log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_check_their_own_health() {
    let stack = Stack::start().await;
    // The check asks the admin port (ADMIN_ADDR), where both probes are.
    let status = |bin: &str, port: u16| {
        Command::new(bin_path(bin))
            .arg("--healthcheck")
            .env("ADMIN_ADDR", format!("127.0.0.1:{port}"))
            .status()
            .expect("run")
            .code()
    };
    assert_eq!(status("gateway", stack.gateway.admin_port), Some(0));
    assert_eq!(status("ai-service", stack.ai.admin_port), Some(0));
    let nobody = free_port();
    assert_eq!(status("gateway", nobody), Some(1));
    assert_eq!(status("ai-service", nobody), Some(1));
    // `ready` asks /readyz.
    let ready = Command::new(bin_path("gateway"))
        .arg("--healthcheck=ready")
        .env(
            "ADMIN_ADDR",
            format!("127.0.0.1:{}", stack.gateway.admin_port),
        )
        .status()
        .expect("run")
        .code();
    assert_eq!(ready, Some(0));
}

/// The status a WebSocket handshake to `url` gets (101 on success).
async fn handshake_status(url: &str) -> u16 {
    let url = e2e_tests::auth::with_default_token(url);
    match tokio_tungstenite::connect_async(url).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("handshake: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_the_sockets_in_waves_over_drain_spread() {
    const N: usize = 8;
    let spread = Duration::from_secs(3);
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), &[]).await;
    let mut gw = Gateway::start(
        &redis.url(),
        &ai.url(),
        &[("DRAIN_SPREAD", "3s"), ("SHUTDOWN_TIMEOUT", "20s")],
    )
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..N {
        let mut c = WsClient::connect(&gw.ws_url()).await;
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                if let Incoming::Close(close) = c.recv_within(PATIENCE).await {
                    let _ = tx.send((Instant::now(), close.map(|c| c.0)));
                    return;
                }
            }
        });
    }
    drop(tx);

    gw.proc.signal(15);
    let mut closes = vec![rx.recv().await.expect("a first close")];
    // While the drain goes on, new handshakes are refused.
    let refused = handshake_status(&gw.ws_url()).await;
    let refused_at = Instant::now();
    assert_eq!(refused, 503, "a handshake during the drain");
    while let Some(c) = rx.recv().await {
        closes.push(c);
    }
    assert_eq!(closes.len(), N);
    assert!(
        closes.iter().all(|(_, code)| *code == Some(1001)),
        "{closes:?}"
    );
    let first = closes.iter().map(|c| c.0).min().unwrap();
    let last = closes.iter().map(|c| c.0).max().unwrap();
    assert!(
        last - first >= spread / 2,
        "the closes came within {:?}, not spread over {spread:?}",
        last - first
    );
    assert!(refused_at < last, "the 503 came after the drain");
    assert_eq!(gw.proc.wait_exit(Duration::from_secs(30)), Some(0));
}
