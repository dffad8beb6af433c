//! The fast streaming mode over a real socket: a request's `!demo` line steers the answer,
//! the answer is in OpenAI's wire format (usage when asked for, `[DONE]`), and the connection
//! carries a second request (keep-alive).

use std::sync::Arc;
use std::time::Duration;

use test_support::upstream::{FakeOpenAi, Generate, Plan, Recording, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn post(prompt: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": prompt}],
    })
    .to_string();
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one chunked response (until its last chunk) and returns the body's text.
async fn response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    while !buf.ends_with(b"0\r\n\r\n") {
        let n = s.read(&mut tmp).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&tmp[..n]);
    }
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn generated_answers_follow_the_prompt_and_keep_the_connection() {
    let fake = FakeOpenAi::bind("127.0.0.1:0".parse().unwrap(), Recording::Off)
        .await
        .unwrap();
    let plan = Plan {
        tokens: 4,
        rate: 0.0,
    };
    fake.set_default(Reply::Generate(Arc::new(Generate::new("fake", plan))));
    let mut s = TcpStream::connect(("127.0.0.1", fake.port)).await.unwrap();
    for (prompt, tokens) in [("hello", 4), ("!demo tokens=7 rate=1000\nhi", 7)] {
        s.write_all(&post(prompt)).await.unwrap();
        let text = tokio::time::timeout(Duration::from_secs(30), response(&mut s))
            .await
            .unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert_eq!(
            text.matches(r#""delta":{"content":" "#).count(),
            tokens,
            "{text}"
        );
        assert!(text.contains(r#""finish_reason":"stop""#), "{text}");
        assert!(
            text.contains(&format!(r#""completion_tokens":{tokens}"#)),
            "{text}"
        );
        assert!(text.contains("data: [DONE]\n\n"), "{text}");
    }
    assert_eq!(fake.received(), 2);
    assert_eq!(fake.connections(), 1);
    assert!(fake.requests().is_empty(), "recording is off");
}
