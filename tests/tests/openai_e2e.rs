//! The OpenAI-compatible provider end to end: a browser-like WebSocket client → the real
//! gateway → the real ai-service (`PROVIDER=openai`) → a fake OpenAI server
//! ([`e2e_tests::upstream`]) that speaks the real streaming wire format, records every request
//! and sees its client disconnect. One real `redis-server` per test.

use std::time::Duration;

use e2e_tests::client::{absorb, Transcript};
use e2e_tests::upstream::{FakeOpenAi, Recorded, Reply, StreamReply};
use e2e_tests::{Stack, WsClient, PATIENCE};
use shared_proto::{CancelStatus, ErrorBody, ErrorCode, FinalStatus, MessageState, ServerFrame};
use shared_proto::{Usage, PROTOCOL_VERSION};
use tokio::time::{timeout, Instant};
use uuid::Uuid;

/// How long the upstream may take to see its client go after a cancel or a timeout. Generous:
/// only a broken abort path (a leaked request that runs on) should ever exceed it.
const DISCONNECT_BOUND: Duration = Duration::from_secs(5);

/// Redis + ai-service (`PROVIDER=openai` against `fake`) + gateway.
async fn openai_stack(fake: &FakeOpenAi, extra_env: &[(&str, &str)]) -> Stack {
    let base_url = fake.base_url();
    let mut env = vec![
        ("PROVIDER", "openai"),
        ("OPENAI_BASE_URL", base_url.as_str()),
        ("OPENAI_MODEL", "test-model"),
    ];
    env.extend_from_slice(extra_env);
    Stack::start_with(&env, &[]).await
}

/// A message as the client saw it.
#[derive(Debug)]
struct Answer {
    t: Transcript,
    usage: Option<Usage>,
    error: Option<ErrorBody>,
    cancel_acks: Vec<CancelStatus>,
}

impl Answer {
    fn code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|e| e.code)
    }
}

/// Sends `content` and reads until its `done`.
async fn chat(c: &mut WsClient, content: &str) -> (Uuid, Answer) {
    let id = c.chat(content).await;
    (id, read_answer(c, id, None).await)
}

/// Reads `id`'s frames until its `done`. With `cancel_after = Some(k)`, sends a `cancel` over
/// the socket once `k` chunks have arrived, and also waits for its `cancel_ack`.
async fn read_answer(c: &mut WsClient, id: Uuid, cancel_after: Option<usize>) -> Answer {
    let (answer, _) = read_answer_timed(c, id, cancel_after, false).await;
    answer
}

/// [`read_answer`], also returning when the cancel was sent. `cancel_sent`: the caller sent a
/// cancel already (wait for its `cancel_ack` too).
async fn read_answer_timed(
    c: &mut WsClient,
    id: Uuid,
    cancel_after: Option<usize>,
    cancel_sent: bool,
) -> (Answer, Option<Instant>) {
    let mut answer = Answer {
        t: Transcript::new(id),
        usage: None,
        error: None,
        cancel_acks: Vec::new(),
    };
    let mut cancelled_at = None;
    let mut acked = false;
    // Until the `done`, and the `cancel_ack` of a cancel we sent.
    while answer.t.done.is_none()
        || ((cancel_sent || cancelled_at.is_some()) && answer.cancel_acks.is_empty())
    {
        if let Some(k) = cancel_after {
            if cancelled_at.is_none() && answer.t.done.is_none() && answer.t.seqs.len() >= k {
                cancelled_at = Some(Instant::now());
                c.cancel(id).await;
            }
        }
        let frame = c.frame().await;
        match &frame {
            ServerFrame::Ack { message_id } if *message_id == id => {
                assert!(!acked, "two acks");
                assert!(answer.t.seqs.is_empty(), "ack after a chunk");
                acked = true;
            }
            ServerFrame::CancelAck { message_id, status } if *message_id == id => {
                answer.cancel_acks.push(*status)
            }
            ServerFrame::Done {
                message_id,
                error,
                usage,
                ..
            } if *message_id == id => {
                answer.usage = *usage;
                answer.error = error.clone();
                absorb(&mut answer.t, &frame);
            }
            ServerFrame::Error { code, message, .. } => panic!("error frame: {code} {message}"),
            _ => assert!(absorb(&mut answer.t, &frame), "unexpected frame {frame:?}"),
        }
    }
    assert!(acked, "no ack");
    answer.t.assert_well_formed();
    (answer, cancelled_at)
}

/// Asserts the stored message agrees with what the client received.
async fn assert_stored(stack: &Stack, c: &WsClient, id: Uuid, a: &Answer, state: MessageState) {
    let stored = stack
        .ai
        .message(c.session_id, id)
        .await
        .expect("stored message");
    assert_eq!(stored.state, state);
    assert_eq!(stored.text, a.t.text, "stored text = streamed text");
    assert_eq!(stored.last_seq, a.t.seqs.len() as u64);
    assert_eq!(stored.error, a.error);
    assert_eq!(stored.usage, a.usage);
}

fn roles(messages: &[(&str, &str)]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .collect()
}

/// Waits for request `index` (bounded).
async fn request(fake: &FakeOpenAi, index: usize) -> Recorded {
    timeout(PATIENCE, fake.request(index))
        .await
        .unwrap_or_else(|_| panic!("request {index} never reached the upstream"))
}

// ---------------------------------------------------------------------------------------------
// 1. Text and usage.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_text_arrives_intact_and_done_carries_usage() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[]).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    assert!(
        matches!(c.welcome, ServerFrame::Welcome { protocol, .. } if protocol == PROTOCOL_VERSION)
    );

    // Tokens that break naive handling: multi-byte UTF-8 (also split across deltas in the
    // upstream's own tokenisation), blank lines, quotes, backslashes, `data:` look-alikes, JSON
    // and HTML fragments, whitespace-only tokens.
    let mut tokens: Vec<String> = [
        "Hello",
        ",",
        " wörld",
        " 🦀",
        "\n\n",
        "\"quoted\"",
        " back\\slash",
        "\ttab",
        " ",
        " <b>&amp;</b>",
        " 日本",
        "語",
        "\ndata: [DONE]\n",
        " {\"json\": 1}",
        " \r\n",
        "…",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tokens.extend((0..150).map(|i| format!(" t{i}")));
    tokens.push(" end.".into());
    let reply = StreamReply::new(&tokens)
        .pace(Duration::from_millis(1))
        .usage(42, tokens.len() as u64);
    let expected = reply.text();
    fake.push(reply);

    let (id, a) = chat(&mut c, "Say hello").await;
    assert_eq!(a.t.status(), Some(FinalStatus::Completed), "{a:?}");
    assert_eq!(a.t.text, expected, "text arrives intact");
    assert_eq!(
        a.usage,
        Some(Usage::reported(
            42,
            tokens.len() as u64,
            42 + tokens.len() as u64
        ))
    );
    assert_stored(&stack, &c, id, &a, MessageState::Completed).await;

    // What the upstream received: one well-formed streaming request.
    let r = request(&fake, 0).await;
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.body["model"], "test-model");
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["stream_options"]["include_usage"], true);
    assert_eq!(r.messages(), roles(&[("user", "Say hello")]));
    assert_eq!(r.header("authorization"), None, "no key configured");
    assert!(r.body.get("max_tokens").is_none() && r.body.get("temperature").is_none());

    // An upstream that sends no usage chunk: `done` carries counted usage, marked estimated.
    fake.push(Reply::tokens(&["No", " usage", " here"]));
    let (id2, a2) = chat(&mut c, "again").await;
    assert_eq!(a2.t.status(), Some(FinalStatus::Completed));
    assert_eq!(a2.t.text, "No usage here");
    let u = a2.usage.expect("usage on every end");
    assert_eq!((u.completion_tokens, u.estimated), (3, true));
    assert!(u.prompt_tokens > 0);
    assert_stored(&stack, &c, id2, &a2, MessageState::Completed).await;
    assert_eq!(fake.requests().len(), 2);
    println!(
        "2 requests over {} upstream connection(s)",
        fake.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_settings_reach_the_upstream() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(
        &fake,
        &[
            ("OPENAI_API_KEY", "sk-e2e-key"),
            ("MAX_TOKENS", "77"),
            ("TEMPERATURE", "0.25"),
            ("SYSTEM_PROMPT", "Be brief."),
        ],
    )
    .await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let (_, a) = chat(&mut c, "hi").await;
    assert_eq!(a.t.status(), Some(FinalStatus::Completed));
    let r = request(&fake, 0).await;
    assert_eq!(r.header("authorization"), Some("Bearer sk-e2e-key"));
    assert_eq!(r.body["max_tokens"], 77);
    assert_eq!(r.body["temperature"], 0.25);
    assert_eq!(
        r.messages(),
        roles(&[("system", "Be brief."), ("user", "hi")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Reasoning deltas reach the client as `chunk{kind:"reasoning"}` frames, in order with the
/// answer's, and are not part of the answer: not its text, not its stored text, not its history.
async fn reasoning_deltas_reach_the_client_apart_from_the_answer() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[]).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    fake.push(
        StreamReply::new(&["The", " answer", " is", " 4."])
            .reasoning(&["Let me", " think:", " 2+2", " = 4"])
            .usage(10, 8),
    );
    let (id, a) = chat(&mut c, "2+2?").await;
    assert_eq!(a.t.status(), Some(FinalStatus::Completed), "{a:?}");
    assert_eq!(a.t.text, "The answer is 4.");
    assert_eq!(a.t.reasoning, "Let me think: 2+2 = 4");
    assert_stored(&stack, &c, id, &a, MessageState::Completed).await;
    // The next request's history holds the answer only.
    fake.push(StreamReply::new(&["ok"]));
    let (_, b) = chat(&mut c, "and 3+3?").await;
    assert_eq!(b.t.status(), Some(FinalStatus::Completed));
    let history = request(&fake, 1).await.messages();
    assert!(
        history.contains(&("assistant".to_string(), "The answer is 4.".to_string())),
        "{history:?}"
    );
    assert!(!format!("{history:?}").contains("think"), "{history:?}");
}

// ---------------------------------------------------------------------------------------------
// 2. Stop aborts the upstream request.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_over_the_socket_closes_the_upstream_connection() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[]).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    // 300 tokens, one every 50 ms: 15 s of answer, far longer than the test.
    let tokens: Vec<String> = (0..300).map(|i| format!(" w{i}")).collect();
    let full: String = tokens.concat();
    fake.push(StreamReply::new(&tokens).pace(Duration::from_millis(50)));

    let id = c.chat("a long answer please").await;
    let (a, cancelled_at) = read_answer_timed(&mut c, id, Some(3), false).await;
    let cancelled_at = cancelled_at.expect("cancel sent");
    assert_eq!(a.t.status(), Some(FinalStatus::Cancelled), "{a:?}");
    assert_eq!(a.cancel_acks, vec![CancelStatus::Cancelling]);
    assert!(a.t.seqs.len() >= 3);
    assert!(
        full.starts_with(&a.t.text) && a.t.text.len() < full.len(),
        "a strict prefix of the answer: {:?}",
        a.t.text
    );
    assert_stored(&stack, &c, id, &a, MessageState::Cancelled).await;
    // A cancelled stream gets no usage from the upstream: it is counted, and says so.
    let stored = stack.ai.message(c.session_id, id).await.expect("stored");
    let u = stored.usage.expect("usage on the cancelled end");
    assert!(u.estimated, "{u:?}");
    assert_eq!(u.completion_tokens, a.t.text.matches(" w").count() as u64);

    // The upstream sees its client go away: the model server would stop generating now.
    let gone = timeout(DISCONNECT_BOUND, fake.disconnected(0))
        .await
        .expect("the upstream request was not aborted after the cancel");
    assert!(gone.during_response, "the answer was still streaming");
    println!(
        "upstream saw the disconnect {:?} after the cancel was sent",
        gone.at.saturating_duration_since(cancelled_at)
    );
    assert_eq!(fake.requests().len(), 1, "no retry after a cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_the_upstream_is_still_silent_closes_its_connection() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[]).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    // A model server still processing the prompt: request read, no response yet.
    fake.push(Reply::hang());
    let id = c.chat("a slow prompt").await;
    request(&fake, 0).await;
    let cancelled_at = Instant::now();
    c.cancel(id).await;
    let (a, _) = read_answer_timed(&mut c, id, None, true).await;
    assert_eq!(a.t.status(), Some(FinalStatus::Cancelled), "{a:?}");
    assert_eq!(a.cancel_acks, vec![CancelStatus::Cancelling]);
    assert!(a.t.seqs.is_empty());
    assert_stored(&stack, &c, id, &a, MessageState::Cancelled).await;
    let gone = timeout(DISCONNECT_BOUND, fake.disconnected(0))
        .await
        .expect("the upstream request was not aborted after the cancel");
    assert!(gone.during_response);
    println!(
        "silent upstream saw the disconnect {:?} after the cancel was sent",
        gone.at.saturating_duration_since(cancelled_at)
    );
    assert_eq!(fake.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 3. Failure modes → `done{failed, error.code}`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_fails_with_upstream_auth_without_retry_and_without_the_key() {
    let fake = FakeOpenAi::start().await;
    let key = "sk-e2e-REJECTED-0123456789";
    let stack = openai_stack(&fake, &[("OPENAI_API_KEY", key)]).await;
    // OpenAI echoes (part of) the rejected key in its message.
    fake.set_default(Reply::unauthorized(&format!(
        "Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys."
    )));
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let (id, a) = chat(&mut c, "hi").await;
    assert_eq!(a.t.status(), Some(FinalStatus::Failed));
    assert_eq!(a.code(), Some(ErrorCode::UpstreamAuth), "{a:?}");
    let message = &a.error.as_ref().unwrap().message;
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains(key), "the key leaked: {message}");
    assert!(a.t.seqs.is_empty());
    assert_stored(&stack, &c, id, &a, MessageState::Failed).await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "401 is not retried");
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_that_persists_fails_with_upstream_rate_limited_after_the_retries() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[("UPSTREAM_MAX_RETRIES", "2")]).await;
    fake.set_default(Reply::rate_limited(None));
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let (id, a) = chat(&mut c, "hi").await;
    assert_eq!(a.t.status(), Some(FinalStatus::Failed));
    assert_eq!(a.code(), Some(ErrorCode::UpstreamRateLimited), "{a:?}");
    assert!(a.t.seqs.is_empty());
    assert_stored(&stack, &c, id, &a, MessageState::Failed).await;
    assert_eq!(fake.requests().len(), 3, "1 attempt + 2 retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_that_persists_fails_with_upstream_error_after_the_retries() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[("UPSTREAM_MAX_RETRIES", "1")]).await;
    fake.set_default(Reply::server_error());
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let (id, a) = chat(&mut c, "hi").await;
    assert_eq!(a.t.status(), Some(FinalStatus::Failed));
    assert_eq!(a.code(), Some(ErrorCode::UpstreamError), "{a:?}");
    assert!(a.error.as_ref().unwrap().message.contains("500"), "{a:?}");
    assert_stored(&stack, &c, id, &a, MessageState::Failed).await;
    assert_eq!(fake.requests().len(), 2, "1 attempt + 1 retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_mid_stream_fails_with_upstream_error_and_keeps_the_partial_text() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[]).await;
    let tokens = [
        "Partial", " answer", " that", " breaks", " here", " NEVER", " SENT",
    ];
    let reply = StreamReply::new(&tokens)
        .pace(Duration::from_millis(10))
        .drop_after(5);
    let partial = reply.text();
    assert_eq!(partial, "Partial answer that breaks here");
    fake.push(reply);
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let (id, a) = chat(&mut c, "hi").await;
    assert_eq!(a.t.status(), Some(FinalStatus::Failed));
    assert_eq!(a.code(), Some(ErrorCode::UpstreamError), "{a:?}");
    assert_eq!(a.t.text, partial, "the tokens sent are kept");
    assert_stored(&stack, &c, id, &a, MessageState::Failed).await;
    assert_eq!(
        fake.requests().len(),
        1,
        "no retry once a token was delivered"
    );

    // The failed turn stays in the conversation with its partial text.
    fake.push(Reply::tokens(&["ok"]));
    let (_, a2) = chat(&mut c, "go on").await;
    assert_eq!(a2.t.status(), Some(FinalStatus::Completed));
    assert_eq!(
        request(&fake, 1).await.messages(),
        roles(&[("user", "hi"), ("assistant", &partial), ("user", "go on")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_in_time_fails_with_upstream_timeout_and_aborts_the_request() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(
        &fake,
        &[
            ("UPSTREAM_FIRST_TOKEN_TIMEOUT", "1s"),
            ("UPSTREAM_IDLE_TIMEOUT", "1s"),
        ],
    )
    .await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let cases: [(&str, Reply, &str); 3] = [
        ("no response head at all", Reply::hang(), ""),
        (
            "200 and a role-only delta, then nothing",
            Reply::hang_after_head(),
            "",
        ),
        (
            "three tokens, then nothing (idle timeout)",
            StreamReply::new(&["one", " two", " three", " four"])
                .stall_after(3)
                .into(),
            "one two three",
        ),
    ];
    for (index, (what, reply, text)) in cases.into_iter().enumerate() {
        fake.push(reply);
        let started = Instant::now();
        let (id, a) = chat(&mut c, what).await;
        let elapsed = started.elapsed();
        assert_eq!(a.t.status(), Some(FinalStatus::Failed), "{what}: {a:?}");
        assert_eq!(a.code(), Some(ErrorCode::UpstreamTimeout), "{what}: {a:?}");
        assert_eq!(a.t.text, text, "{what}");
        assert!(
            elapsed >= Duration::from_millis(900),
            "{what}: failed after {elapsed:?}, before the 1 s timeout"
        );
        assert_stored(&stack, &c, id, &a, MessageState::Failed).await;
        let gone = timeout(DISCONNECT_BOUND, fake.disconnected(index))
            .await
            .unwrap_or_else(|_| panic!("{what}: the hung upstream request was not aborted"));
        assert!(gone.during_response);
        println!("{what}: upstream_timeout after {elapsed:?}");
    }
    assert_eq!(fake.requests().len(), 3, "a timeout is not retried");
}

// ---------------------------------------------------------------------------------------------
// 4. Retry-After.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_before_the_first_token_is_retried_and_completes() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[]).await;
    fake.push(Reply::rate_limited(Some(1)));
    fake.push(Reply::Stream(
        StreamReply::new(&["Worth", " the", " wait"]).usage(5, 3),
    ));
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let (id, a) = chat(&mut c, "hi").await;
    assert_eq!(a.t.status(), Some(FinalStatus::Completed), "{a:?}");
    assert_eq!(a.t.text, "Worth the wait");
    assert_eq!(a.usage.map(|u| u.total_tokens), Some(8));
    assert_stored(&stack, &c, id, &a, MessageState::Completed).await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the same request again");
    let waited = requests[1].at.saturating_duration_since(requests[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured (retried after {waited:?})"
    );
    println!("retried {waited:?} after the 429");
}

// ---------------------------------------------------------------------------------------------
// 5. Conversation history.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_third_request_carries_the_whole_conversation_in_order() {
    let fake = FakeOpenAi::start().await;
    let system = "You are a terse test assistant.";
    let stack = openai_stack(&fake, &[("SYSTEM_PROMPT", system)]).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let turns = [
        ("What is 2+2?", vec!["It", " is", " 4."]),
        ("And doubled?\nThink 🤔", vec!["8", ", of", " course", "."]),
        ("Thanks!", vec!["You're", " welcome."]),
    ];
    let mut answers = Vec::new();
    for (prompt, reply) in &turns {
        fake.push(Reply::tokens(reply));
        let (_, a) = chat(&mut c, prompt).await;
        assert_eq!(a.t.status(), Some(FinalStatus::Completed));
        assert_eq!(a.t.text, reply.concat());
        answers.push(a.t.text);
    }
    assert_eq!(
        request(&fake, 0).await.messages(),
        roles(&[("system", system), ("user", turns[0].0)])
    );
    assert_eq!(
        request(&fake, 2).await.messages(),
        roles(&[
            ("system", system),
            ("user", turns[0].0),
            ("assistant", &answers[0]),
            ("user", turns[1].0),
            ("assistant", &answers[1]),
            ("user", turns[2].0),
        ])
    );
    // History is per session: a new connection (new session) starts from scratch.
    let mut other = WsClient::connect(&stack.gateway.ws_url()).await;
    fake.push(Reply::tokens(&["fresh"]));
    let (_, a) = chat(&mut other, "new session").await;
    assert_eq!(a.t.status(), Some(FinalStatus::Completed));
    assert_eq!(
        request(&fake, 3).await.messages(),
        roles(&[("system", system), ("user", "new session")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_answer_stays_in_the_history_as_its_partial_text() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[]).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;

    fake.push(Reply::tokens(&["First", " answer."]));
    let (_, a1) = chat(&mut c, "one").await;
    assert_eq!(a1.t.status(), Some(FinalStatus::Completed));

    let long: Vec<String> = (0..300).map(|i| format!(" x{i}")).collect();
    fake.push(StreamReply::new(&long).pace(Duration::from_millis(40)));
    let id2 = c.chat("two").await;
    let a2 = read_answer(&mut c, id2, Some(3)).await;
    assert_eq!(a2.t.status(), Some(FinalStatus::Cancelled));
    assert!(!a2.t.text.is_empty() && a2.t.text.len() < long.concat().len());
    assert_stored(&stack, &c, id2, &a2, MessageState::Cancelled).await;

    fake.push(Reply::tokens(&["Third."]));
    let (_, a3) = chat(&mut c, "three").await;
    assert_eq!(a3.t.status(), Some(FinalStatus::Completed));
    assert_eq!(
        request(&fake, 2).await.messages(),
        roles(&[
            ("user", "one"),
            ("assistant", "First answer."),
            ("user", "two"),
            ("assistant", &a2.t.text),
            ("user", "three"),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_turns_bounds_what_is_sent() {
    let fake = FakeOpenAi::start().await;
    let stack = openai_stack(&fake, &[("HISTORY_TURNS", "1")]).await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    for (i, prompt) in ["p1", "p2", "p3"].iter().enumerate() {
        fake.push(Reply::tokens(&[format!("a{}", i + 1)]));
        let (_, a) = chat(&mut c, prompt).await;
        assert_eq!(a.t.status(), Some(FinalStatus::Completed));
    }
    assert_eq!(
        request(&fake, 2).await.messages(),
        roles(&[("user", "p2"), ("assistant", "a2"), ("user", "p3")]),
        "only the last turn pair is kept"
    );
}

// ---------------------------------------------------------------------------------------------
// The demo provider also answers with the history: its text depends on the earlier turns.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_text_changes_with_the_history() {
    let stack = Stack::start().await;
    let prompt = "!demo tokens=12 rate=0\nthe same prompt";
    let mut first = WsClient::connect(&stack.gateway.ws_url()).await;
    let (_, a) = chat(&mut first, prompt).await;
    let (_, b) = chat(&mut first, prompt).await;
    let mut second = WsClient::connect(&stack.gateway.ws_url()).await;
    let (_, fresh) = chat(&mut second, prompt).await;
    for x in [&a, &b, &fresh] {
        assert_eq!(x.t.status(), Some(FinalStatus::Completed));
    }
    assert_eq!(a.t.text, fresh.t.text, "same prompt, no history: same text");
    assert_ne!(a.t.text, b.t.text, "one earlier turn changes the text");
}
