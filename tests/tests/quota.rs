//! Issue 16, point 5, end to end: per-user token budgets (`USER_TOKEN_BUDGET` completion
//! tokens per `USER_TOKEN_WINDOW`), charged as chunks are written, in the user's own Redis
//! key, shared by every ai-service replica.
//!
//! - A running answer that spends its user's budget stops within one chunk of it and ends
//!   `failed/quota_exceeded`, with its usage.
//! - The next `chat` of that user gets `error{quota_exceeded}` with `retry_after_s`; another
//!   user is not affected; anonymous chats are never charged.
//! - Two answers of one user on two replicas (two gateways, two ai-services, one Redis)
//!   together stop within one chunk each of the budget.
//!
//! The demo model's tokens are words, so a chunk's token count is its delta's word count and
//! the bounds below are exact, whatever the machine's speed.

use e2e_tests::auth::{test_jwt, with_token};
use e2e_tests::{AiService, Gateway, RedisServer, WsClient};
use shared_proto::{ErrorCode, FinalStatus, ServerFrame, Usage};
use uuid::Uuid;

/// `USER_TOKEN_BUDGET` in [`BUDGET_ENV`].
const BUDGET: u64 = 40;

/// How one answer ended, read from its frames.
#[derive(Debug)]
struct Ended {
    status: FinalStatus,
    code: Option<ErrorCode>,
    usage: Usage,
    /// Tokens (words) streamed, summed over the chunks.
    streamed: u64,
    /// Tokens in the last chunk.
    last_chunk: u64,
}

/// Reads `message_id`'s frames until its `done`.
async fn ended(client: &mut WsClient, message_id: Uuid) -> Ended {
    let (mut streamed, mut last_chunk) = (0, 0);
    loop {
        match client.frame().await {
            ServerFrame::Chunk {
                message_id: m,
                delta,
                ..
            } if m == message_id => {
                last_chunk = delta.split_whitespace().count() as u64;
                streamed += last_chunk;
            }
            ServerFrame::Done {
                message_id: m,
                status,
                error,
                usage,
                ..
            } if m == message_id => {
                return Ended {
                    status,
                    code: error.map(|e| e.code),
                    usage: usage.expect("usage on every end"),
                    streamed,
                    last_chunk,
                }
            }
            ServerFrame::Ack { .. } => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The `error` a chat is refused with.
async fn refused(client: &mut WsClient) -> (ErrorCode, Option<u64>) {
    match client.frame().await {
        ServerFrame::Error {
            code,
            retry_after_s,
            ..
        } => (code, retry_after_s),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn connect_as(gateway: &Gateway, sub: &str) -> String {
    with_token(&gateway.ws_url(), &test_jwt(sub))
}

/// Long, slow enough answers that the budget, not the model, ends them.
const LONG: &str = "!demo tokens=400 rate=200\nTell me a long story";

/// The ai-services' settings: a budget of [`BUDGET`] tokens an hour.
const BUDGET_ENV: &[(&str, &str)] = &[("USER_TOKEN_BUDGET", "40"), ("USER_TOKEN_WINDOW", "1h")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_stops_at_its_users_budget_and_the_next_chat_is_refused() {
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), BUDGET_ENV).await;
    let gateway = Gateway::start(&redis.url(), &ai.url(), &[]).await;

    let mut alice = WsClient::connect(&connect_as(&gateway, "alice")).await;
    let id = alice.chat(LONG).await;
    let end = ended(&mut alice, id).await;
    assert_eq!(end.status, FinalStatus::Failed, "{end:?}");
    assert_eq!(end.code, Some(ErrorCode::QuotaExceeded), "{end:?}");
    // The usage is what was streamed, and the budget was crossed by the last chunk.
    assert_eq!(end.usage.completion_tokens, end.streamed, "{end:?}");
    assert!(end.streamed >= BUDGET, "{end:?}");
    assert!(end.streamed - end.last_chunk < BUDGET, "{end:?}");
    // Far from the model's 400 tokens: the upstream was stopped.
    assert!(end.streamed < 400, "{end:?}");

    // Her next chat is refused at once, with the time until the window frees.
    alice.chat("!demo tokens=3\nAnother one").await;
    let (code, retry_after_s) = refused(&mut alice).await;
    assert_eq!(code, ErrorCode::QuotaExceeded);
    let secs = retry_after_s.expect("retry_after_s");
    assert!((1..=3600).contains(&secs), "retry_after_s {secs}");

    // Bob has a budget of his own.
    let mut bob = WsClient::connect(&connect_as(&gateway, "bob")).await;
    let id = bob.chat("!demo tokens=5\nHi").await;
    let end = ended(&mut bob, id).await;
    assert_eq!(end.status, FinalStatus::Completed, "{end:?}");
    assert_eq!(end.usage.completion_tokens, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_chats_are_never_charged() {
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), BUDGET_ENV).await;
    // No JWT key at all: anonymous mode (the harness client's token is ignored), chats carry
    // no user.
    let gateway = Gateway::start_without(&redis.url(), &ai.url(), &[], &["AUTH_SECRET"]).await;
    let mut client = WsClient::connect(&gateway.ws_url()).await;
    for _ in 0..2 {
        let id = client.chat("!demo tokens=30 rate=0\nHi").await;
        let end = ended(&mut client, id).await;
        assert_eq!(end.status, FinalStatus::Completed, "{end:?}");
        assert_eq!(end.usage.completion_tokens, 30);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_answers_of_one_user_on_two_replicas_stop_together_at_the_budget() {
    let redis = RedisServer::start();
    let ai1 = AiService::start(&redis.url(), BUDGET_ENV).await;
    let ai2 = AiService::start(&redis.url(), BUDGET_ENV).await;
    let gw1 = Gateway::start(&redis.url(), &ai1.url(), &[]).await;
    let gw2 = Gateway::start(&redis.url(), &ai2.url(), &[]).await;

    // Two sessions of one user, one on each replica pair.
    let mut c1 = WsClient::connect(&connect_as(&gw1, "carol")).await;
    let mut c2 = WsClient::connect(&connect_as(&gw2, "carol")).await;
    // Slower than LONG: both must be admitted before either spends the budget (a chat after
    // that is refused, which the first test covers).
    let slow = "!demo tokens=400 rate=50\nTell me a long story";
    let id1 = c1.chat(slow).await;
    let id2 = c2.chat(slow).await;
    let (e1, e2) = tokio::join!(ended(&mut c1, id1), ended(&mut c2, id2));

    let total = e1.streamed + e2.streamed;
    for e in [&e1, &e2] {
        assert_eq!(e.usage.completion_tokens, e.streamed, "{e:?}");
        assert!(
            e.streamed < 400,
            "the budget, not the model, ended it: {e:?}"
        );
    }
    // Whichever ended first, the other was stopped by the shared counter (not by its own
    // answer's length); together they are within one chunk each of the budget.
    assert!(
        [&e1, &e2]
            .iter()
            .all(|e| e.status == FinalStatus::Failed && e.code == Some(ErrorCode::QuotaExceeded)),
        "{e1:?} {e2:?}"
    );
    assert!(total >= BUDGET, "{total} tokens: {e1:?} {e2:?}");
    assert!(
        total - e1.last_chunk - e2.last_chunk < BUDGET,
        "{total} tokens, more than one chunk each over {BUDGET}: {e1:?} {e2:?}"
    );
}

#[test]
fn bad_budget_settings_exit_2_with_one_line() {
    use e2e_tests::process::exits_2_with_one_line;
    exits_2_with_one_line(
        "ai-service",
        &[("USER_TOKEN_BUDGET", "0")],
        "USER_TOKEN_BUDGET",
    );
    exits_2_with_one_line(
        "ai-service",
        &[("USER_TOKEN_BUDGET", "lots")],
        "USER_TOKEN_BUDGET",
    );
    exits_2_with_one_line(
        "ai-service",
        &[("USER_TOKEN_WINDOW", "0s")],
        "USER_TOKEN_WINDOW",
    );
    exits_2_with_one_line(
        "streamline",
        &[("USER_TOKEN_WINDOW", "soon")],
        "USER_TOKEN_WINDOW",
    );
}
