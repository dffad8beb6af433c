//! The OpenAI-compatible provider against a scripted upstream.
//!
//! The upstream is the test kit's fake OpenAI server (`test_support::upstream`) with a
//! byte-level script per request, so each test controls the exact bytes, their framing
//! (chunked or close-delimited) and when the connection ends, and can observe the client
//! going away. Synchronisation is by events (requests seen, reads returning 0), never by
//! sleeping; every wait has a generous overall bound so a bug fails a
//! test instead of hanging it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ai_service::provider::openai::{OpenAiConfig, OpenAiProvider};
use ai_service::provider::{
    GenerationRequest, Provider, ProviderError, ProviderEvent, ProviderStream, Role, Turn,
};
use futures_util::StreamExt;
use serde_json::json;
use shared_proto::{ErrorCode, Usage};
use test_support::upstream::{noisy, split_events, FakeOpenAi, RawConn, Reply};
use tokio::net::TcpListener;
use tokio::time::{timeout, Instant};
use uuid::Uuid;

/// Upper bound for anything a test waits for; only reached when something is broken.
const BOUND: Duration = Duration::from_secs(30);

const OPENAI: &[u8] = include_bytes!("fixtures/openai.sse");
const OPENAI_TEXT: &str = "Hello! Grüße from 日本 🦀\n\nDone.";
const LLAMA: &[u8] = include_bytes!("fixtures/llama_server.sse");
const LLAMA_TEXT: &str = "The answer is 42… ça va?";
const OLLAMA: &[u8] = include_bytes!("fixtures/ollama.sse");
const OLLAMA_TEXT: &str = "Sure! Here you go: ✓";

// ---------------------------------------------------------------------------------------------
// The scripted upstream: the test kit's fake server, every request handed to a script.

/// Starts the kit's fake OpenAI server with every request answered by `script`, which gets the
/// raw connection after the request was read and recorded.
async fn upstream<F, Fut>(script: F) -> FakeOpenAi
where
    F: Fn(RawConn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let up = FakeOpenAi::start().await;
    up.set_default(Reply::script(script));
    up
}

// ---------------------------------------------------------------------------------------------
// The client side.

fn config(base_url: &str) -> OpenAiConfig {
    let mut cfg = OpenAiConfig::new(base_url, "test-model");
    cfg.max_retries = 2;
    cfg.retry_base_delay = Duration::from_millis(10);
    cfg.first_token_timeout = Duration::from_secs(20);
    cfg.idle_timeout = Duration::from_secs(20);
    cfg.connect_timeout = Duration::from_secs(5);
    cfg
}

fn request(content: &str) -> GenerationRequest {
    GenerationRequest {
        session_id: Uuid::new_v4(),
        message_id: Uuid::new_v4(),
        content: content.into(),
        history: vec![],
    }
}

/// What a whole stream produced.
#[derive(Debug, Default)]
struct Outcome {
    text: String,
    /// Reasoning text (`reasoning_content` / `reasoning`), apart from the answer.
    reasoning: String,
    tokens: usize,
    usage: Vec<Usage>,
    error: Option<ProviderError>,
}

/// Drains a stream (bounded), checking the contract: nothing after an error.
async fn collect(mut stream: ProviderStream) -> Outcome {
    timeout(BOUND, async move {
        let mut out = Outcome::default();
        while let Some(item) = stream.next().await {
            assert!(out.error.is_none(), "item after an error: {item:?}");
            match item {
                Ok(ProviderEvent::Token(t)) => {
                    assert!(!t.is_empty(), "empty token");
                    out.text.push_str(&t);
                    out.tokens += 1;
                }
                Ok(ProviderEvent::Reasoning(t)) => {
                    assert!(!t.is_empty(), "empty reasoning");
                    out.reasoning.push_str(&t);
                }
                Ok(ProviderEvent::Usage(u)) => out.usage.push(u),
                Err(e) => out.error = Some(e),
            }
        }
        out
    })
    .await
    .expect("the provider stream did not end in time")
}

async fn run(cfg: OpenAiConfig) -> Outcome {
    let provider = OpenAiProvider::new(cfg).unwrap();
    collect(provider.stream(request("hi"))).await
}

fn error_code(out: &Outcome) -> ErrorCode {
    out.error
        .as_ref()
        .unwrap_or_else(|| panic!("expected an error, got {out:?}"))
        .code
}

// ---------------------------------------------------------------------------------------------
// (a) Transcripts of real servers arrive intact.

#[tokio::test]
async fn openai_transcript() {
    let up = upstream(|mut c| async move { c.replay_chunked(OPENAI).await }).await;
    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    assert_eq!(out.text, OPENAI_TEXT);
    assert_eq!(out.tokens, 8);
    assert_eq!(out.usage, vec![Usage::reported(19, 10, 29)]);
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn llama_server_transcript_close_delimited() {
    // llama-server shape (`content: null`, usage and `timings` in the finish chunk), sent as a
    // body without length that ends when the connection closes.
    let up = FakeOpenAi::start().await;
    up.set_default(Reply::transcript_close_delimited(LLAMA));
    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    assert_eq!(out.text, LLAMA_TEXT);
    assert_eq!(out.usage, vec![Usage::reported(12, 7, 19)]);
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn ollama_transcript() {
    let up = upstream(|mut c| async move { c.replay_chunked(OLLAMA).await }).await;
    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    assert_eq!(out.text, OLLAMA_TEXT);
    assert_eq!(out.tokens, 6);
    assert_eq!(out.usage.len(), 1);
    assert_eq!(out.usage[0].total_tokens, 32);
}

#[tokio::test]
async fn byte_by_byte_with_keepalives_and_crlf() {
    // Every byte its own HTTP chunk (so reads split events, lines, `\r\n` pairs and UTF-8
    // characters), with comments and blank keep-alive lines in between.
    for (transcript, text) in [
        (OPENAI, OPENAI_TEXT),
        (LLAMA, LLAMA_TEXT),
        (OLLAMA, OLLAMA_TEXT),
    ] {
        let body = Arc::new(noisy(transcript));
        let up = upstream(move |mut c| {
            let body = body.clone();
            async move {
                let _ = c.sse_head().await;
                for b in body.iter() {
                    if c.chunk(std::slice::from_ref(b)).await.is_err() {
                        return;
                    }
                }
                let _ = c.end_chunked().await;
            }
        })
        .await;
        let out = run(config(&up.base_url())).await;
        assert!(out.error.is_none(), "{out:?}");
        assert_eq!(out.text, text);
        assert_eq!(out.usage.len(), 1);
    }
}

#[tokio::test]
async fn done_without_trailing_blank_line() {
    // A server that closes right after `data: [DONE]` (no blank line) still completes.
    let up = upstream(|mut c| async move {
        let _ = c.sse_head().await;
        let body = OLLAMA.strip_suffix(b"\n\n").unwrap();
        let _ = c.chunk(body).await;
        let _ = c.end_chunked().await;
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    assert_eq!(out.text, OLLAMA_TEXT);
}

#[tokio::test]
async fn finish_reason_then_eof_without_done_is_complete() {
    let up = upstream(|mut c| async move {
        let _ = c.sse_head().await;
        let events = split_events(LLAMA);
        // Everything but `[DONE]`.
        for e in &events[..events.len() - 1] {
            let _ = c.chunk(e).await;
        }
        let _ = c.end_chunked().await;
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    assert_eq!(out.text, LLAMA_TEXT);
    assert_eq!(out.usage.len(), 1);
}

#[tokio::test]
async fn non_streaming_json_answer_is_accepted() {
    let up = upstream(|mut c| async move {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole answer"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        });
        c.respond(
            "200 OK",
            &[("Content-Type", "application/json")],
            &body.to_string(),
        )
        .await;
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    assert_eq!(out.text, "whole answer");
    assert_eq!(out.usage.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// (b) Dropping the stream closes the upstream connection.

#[tokio::test]
async fn dropping_the_stream_mid_answer_disconnects_the_upstream() {
    let up = upstream(|mut c| async move {
        let _ = c.sse_head().await;
        let events = split_events(OPENAI);
        // The role delta and three tokens, then the "model" keeps thinking.
        for e in &events[..4] {
            let _ = c.chunk(e).await;
        }
        c.disconnected().await;
    })
    .await;
    let provider = OpenAiProvider::new(config(&up.base_url())).unwrap();
    let mut stream = provider.stream(request("hi"));
    let mut text = String::new();
    for _ in 0..2 {
        match timeout(BOUND, stream.next()).await.unwrap() {
            Some(Ok(ProviderEvent::Token(t))) => text.push_str(&t),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(text, "Hello!");
    drop(stream);
    let gone = timeout(BOUND, up.disconnected(0))
        .await
        .expect("the upstream did not see the client disconnect");
    assert!(gone.during_response);
}

#[tokio::test]
async fn dropping_the_stream_before_the_response_disconnects_the_upstream() {
    let up = upstream(|c| async move {
        // Never answers: the model is still processing the prompt.
        c.disconnected().await;
    })
    .await;
    let provider = OpenAiProvider::new(config(&up.base_url())).unwrap();
    let mut stream = provider.stream(request("hi"));
    tokio::select! {
        item = stream.next() => panic!("no answer expected, got {item:?}"),
        seen = up.request(0) => assert_eq!(seen.path, "/v1/chat/completions"),
        _ = tokio::time::sleep(BOUND) => panic!("the request never arrived"),
    }
    drop(stream);
    let gone = timeout(BOUND, up.disconnected(0))
        .await
        .expect("the upstream did not see the client disconnect");
    assert!(gone.during_response);
}

#[tokio::test]
async fn nothing_is_sent_before_the_first_poll() {
    let up = upstream(|mut c| async move { c.replay_chunked(OPENAI).await }).await;
    let provider = OpenAiProvider::new(config(&up.base_url())).unwrap();
    let stream = provider.stream(request("hi"));
    drop(stream);
    // A full generation afterwards proves the upstream works, and it saw only that one.
    let out = collect(provider.stream(request("hi"))).await;
    assert_eq!(out.text, OPENAI_TEXT);
    assert_eq!(up.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// (c), (d) Failure modes.

#[tokio::test]
async fn unauthorized_is_upstream_auth_without_retry_and_without_the_key() {
    for status in ["401 Unauthorized", "403 Forbidden"] {
        let up = upstream(move |mut c| async move {
            let body = r#"{"error":{"message":"Incorrect API key provided: sk-test-SECRET-1234","type":"invalid_request_error","code":"invalid_api_key"}}"#;
            c.respond(status, &[("Content-Type", "application/json")], body)
                .await;
        })
        .await;
        let mut cfg = config(&up.base_url());
        cfg.api_key = Some("sk-test-SECRET-1234".into());
        let out = run(cfg).await;
        assert_eq!(error_code(&out), ErrorCode::UpstreamAuth, "{status}");
        let message = out.error.unwrap().message;
        assert!(!message.contains("SECRET"), "{message}");
        assert!(message.contains("Incorrect API key"), "{message}");
        assert_eq!(up.requests().len(), 1, "{status} must not be retried");
    }
}

#[tokio::test]
async fn rate_limited_until_retries_are_exhausted() {
    let up = upstream(|mut c| async move {
        c.respond(
            "429 Too Many Requests",
            &[("Content-Type", "application/json")],
            r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
        )
        .await;
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert_eq!(error_code(&out), ErrorCode::UpstreamRateLimited);
    assert!(out.error.unwrap().message.contains("Rate limit reached"));
    assert_eq!(up.requests().len(), 3, "1 attempt + max_retries (2)");
}

#[tokio::test]
async fn rate_limited_with_retry_after_then_success() {
    let up = upstream(|mut c| async move {
        if c.index == 0 {
            c.respond(
                "429 Too Many Requests",
                &[("Retry-After", "1")],
                "slow down",
            )
            .await;
        } else {
            c.replay_chunked(OPENAI).await;
        }
    })
    .await;
    let started = Instant::now();
    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    assert_eq!(out.text, OPENAI_TEXT);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After ignored: {:?}",
        started.elapsed()
    );
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn server_error_then_success_on_retry() {
    let up = upstream(|mut c| async move {
        if c.index == 0 {
            c.respond("500 Internal Server Error", &[], "oops").await;
        } else {
            c.replay_chunked(OPENAI).await;
        }
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    assert_eq!(out.text, OPENAI_TEXT);
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn server_error_until_retries_are_exhausted() {
    let up = upstream(|mut c| async move {
        c.respond("503 Service Unavailable", &[], "Loading model")
            .await;
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert_eq!(error_code(&out), ErrorCode::UpstreamError);
    assert!(out.error.unwrap().message.contains("Loading model"));
    assert_eq!(up.requests().len(), 3);
}

#[tokio::test]
async fn other_client_errors_carry_the_upstream_message_without_retry() {
    let up = upstream(|mut c| async move {
        let long = "x".repeat(5000);
        let body = json!({"error": {"message": format!("model 'test-model' not found {long}")}});
        c.respond(
            "404 Not Found",
            &[("Content-Type", "application/json")],
            &body.to_string(),
        )
        .await;
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert_eq!(error_code(&out), ErrorCode::UpstreamError);
    let message = out.error.unwrap().message;
    assert!(
        message.contains("model 'test-model' not found"),
        "{message}"
    );
    assert!(
        message.len() < 1000,
        "not truncated: {} bytes",
        message.len()
    );
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn connection_refused_is_upstream_error() {
    let addr: SocketAddr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }; // dropped: nothing listens there any more
    let mut cfg = config(&format!("http://{addr}/v1"));
    cfg.api_key = Some("sk-never-shown".into());
    let provider = OpenAiProvider::new(cfg).unwrap();
    let out = collect(provider.stream(request("hi"))).await;
    assert_eq!(error_code(&out), ErrorCode::UpstreamError);
    let message = out.error.unwrap().message;
    assert!(!message.contains("sk-never-shown"), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn connection_dropped_mid_answer_keeps_the_tokens() {
    let up = upstream(|mut c| async move {
        let _ = c.sse_head().await;
        for e in &split_events(OPENAI)[..4] {
            let _ = c.chunk(e).await;
        }
        // Closing without the last chunk: the body is cut off.
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert_eq!(out.text, "Hello! Grüße");
    assert_eq!(error_code(&out), ErrorCode::UpstreamError);
    assert_eq!(up.requests().len(), 1, "no retry once tokens were yielded");
}

#[tokio::test]
async fn close_delimited_body_ending_mid_answer_is_an_error() {
    let up = upstream(|mut c| async move {
        let _ = c.close_delimited_head().await;
        for e in &split_events(LLAMA)[..3] {
            let _ = c.write(e).await;
        }
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert_eq!(out.text, "The answer");
    assert_eq!(error_code(&out), ErrorCode::UpstreamError);
}

#[tokio::test]
async fn body_ending_before_any_token_is_retried() {
    let up = upstream(|mut c| async move {
        if c.index == 0 {
            let _ = c.sse_head().await;
            let _ = c.chunk(split_events(OPENAI)[0]).await; // role delta only
        } else {
            c.replay_chunked(OPENAI).await;
        }
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    assert_eq!(out.text, OPENAI_TEXT);
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn error_object_inside_the_stream() {
    let up = upstream(|mut c| async move {
        let _ = c.sse_head().await;
        for e in &split_events(OLLAMA)[..2] {
            let _ = c.chunk(e).await;
        }
        let _ = c
            .chunk(b"data: {\"error\":{\"message\":\"CUDA out of memory\",\"type\":\"server_error\"}}\n\n")
            .await;
        c.disconnected().await;
    })
    .await;
    let out = run(config(&up.base_url())).await;
    assert_eq!(out.text, "Sure!");
    assert_eq!(error_code(&out), ErrorCode::UpstreamError);
    assert!(out.error.unwrap().message.contains("CUDA out of memory"));
}

#[tokio::test]
async fn no_first_token_in_time() {
    // Headers, a role-only delta and keep-alives, but no token: the keep-alives must not count.
    let up = upstream(|mut c| async move {
        let _ = c.sse_head().await;
        let _ = c.chunk(split_events(OPENAI)[0]).await;
        let _ = c.chunk(b": keep-alive\n\n").await;
        c.disconnected().await;
    })
    .await;
    let mut cfg = config(&up.base_url());
    cfg.first_token_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let out = run(cfg).await;
    assert_eq!(error_code(&out), ErrorCode::UpstreamTimeout);
    assert!(out.text.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(290));
}

#[tokio::test]
async fn no_response_headers_in_time() {
    let up = upstream(|c| async move {
        c.disconnected().await;
    })
    .await;
    let mut cfg = config(&up.base_url());
    cfg.first_token_timeout = Duration::from_millis(300);
    let out = run(cfg).await;
    assert_eq!(error_code(&out), ErrorCode::UpstreamTimeout);
}

#[tokio::test]
async fn idle_after_first_token() {
    // Two tokens, then only keep-alive comments until the client goes away.
    let up = upstream(|mut c| async move {
        let _ = c.sse_head().await;
        // One write, so that a slow machine cannot stretch the gap between the two tokens.
        let _ = c.chunk(&split_events(OPENAI)[..3].concat()).await;
        loop {
            if c.chunk(b": keep-alive\n\n").await.is_err() {
                return;
            }
            tokio::select! {
                _ = c.disconnected() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
    .await;
    let mut cfg = config(&up.base_url());
    cfg.idle_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let out = run(cfg).await;
    assert_eq!(out.text, "Hello!");
    assert!(started.elapsed() >= Duration::from_millis(490));
    assert_eq!(error_code(&out), ErrorCode::UpstreamTimeout);
}

// ---------------------------------------------------------------------------------------------
// (e), (f) What the upstream receives.

#[tokio::test]
async fn request_body_has_system_prompt_and_history_in_order() {
    let up = upstream(|mut c| async move { c.replay_chunked(OPENAI).await }).await;
    let mut cfg = config(&up.base_url());
    cfg.system_prompt = Some("You are terse.".into());
    cfg.max_tokens = Some(128);
    cfg.temperature = Some(0.5);
    let provider = OpenAiProvider::new(cfg).unwrap();
    let mut req = request("and now?");
    req.history = vec![
        Turn {
            role: Role::User,
            content: "first question".into(),
        },
        Turn {
            role: Role::Assistant,
            content: "first answer".into(),
        },
        Turn {
            role: Role::User,
            content: "second question".into(),
        },
    ];
    let out = collect(provider.stream(req)).await;
    assert!(out.error.is_none(), "{out:?}");
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert!(seen
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    assert_eq!(
        seen.body,
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"},
                {"role": "user", "content": "and now?"},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 128,
            "temperature": 0.5,
        })
    );
}

#[tokio::test]
async fn authorization_header_only_with_an_api_key() {
    let up = upstream(|mut c| async move { c.replay_chunked(OPENAI).await }).await;

    let out = run(config(&up.base_url())).await;
    assert!(out.error.is_none(), "{out:?}");
    let without = up.requests();
    assert_eq!(without.len(), 1);
    assert_eq!(without[0].header("authorization"), None);
    // Optional fields are left out, not sent as null.
    assert_eq!(without[0].body.get("max_tokens"), None);
    assert_eq!(without[0].body.get("temperature"), None);
    assert_eq!(without[0].body["messages"].as_array().unwrap().len(), 1);

    let mut cfg = config(&up.base_url());
    cfg.api_key = Some("sk-test-key".into());
    let out = run(cfg).await;
    assert!(out.error.is_none(), "{out:?}");
    let all = up.requests();
    let with = &all[without.len()..];
    assert_eq!(with.len(), 1);
    assert_eq!(with[0].header("authorization"), Some("Bearer sk-test-key"));
}

#[tokio::test]
async fn connections_are_reused_between_generations() {
    // The kit's server keeps a connection alive after a complete chunked transcript.
    let up = FakeOpenAi::start().await;
    up.set_default(Reply::transcript(OLLAMA));
    let provider = OpenAiProvider::new(config(&up.base_url())).unwrap();
    for _ in 0..3 {
        let out = collect(provider.stream(request("hi"))).await;
        assert!(out.error.is_none(), "{out:?}");
        assert_eq!(out.text, OLLAMA_TEXT);
    }
    assert_eq!(up.connections(), 1);
}
