//! While the producer lives, a Redis restart or failover costs a pause, never an answer.
//!
//! Twenty chats stream; the store is disturbed mid-answer (killed and restarted empty, killed
//! and restarted from its AOF, frozen for 5 s, a Sentinel failover, a Cluster master failover);
//! every chat still ends `completed`, with every seq once and the same text as an undisturbed
//! run of the same prompt (the demo model is deterministic for a prompt in a fresh session),
//! and no client gets an error frame. A cancel sent while the store is down still stops the
//! model at once, and the answer ends `cancelled` once the store is back.

use std::time::Duration;

use e2e_tests::client::{absorb, Transcript};
use e2e_tests::upstream::{FakeOpenAi, StreamReply};
use e2e_tests::{
    AiService, Gateway, RedisCluster, RedisSentinels, RedisServer, WsClient, PATIENCE,
};
use futures_util::future::join_all;
use shared_proto::{CancelStatus, FinalStatus, ServerFrame};
use tokio::time::timeout;

const CHATS: usize = 20;
/// Eight seconds of answer at 25 tokens/s: the disturbance comes well inside it.
const PROMPT: &str = "!demo tokens=200 rate=25\nkeep streaming through the outage";

/// Reads `t`'s message to its `done`; any other frame (an error above all) fails the test.
async fn read_to_end(c: &mut WsClient, t: &mut Transcript) {
    while t.done.is_none() {
        match c.frame().await {
            ServerFrame::Ack { .. } => {}
            f => assert!(absorb(t, &f), "unexpected frame {f:?}"),
        }
    }
}

/// The text of an undisturbed answer to `PROMPT`.
async fn reference_text(ws_url: &str) -> String {
    let mut c = WsClient::connect(ws_url).await;
    let id = c.chat(PROMPT).await;
    let mut t = Transcript::new(id);
    read_to_end(&mut c, &mut t).await;
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    t.text
}

/// Starts `CHATS` chats (one session each), waits until every one streams, runs `disturb`,
/// then reads every answer to its end and checks it against the undisturbed text.
async fn chats_survive<F, Fut>(ws_url: &str, disturb: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let reference = reference_text(ws_url).await;
    let mut running = Vec::new();
    for _ in 0..CHATS {
        let mut c = WsClient::connect(ws_url).await;
        let id = c.chat(PROMPT).await;
        running.push((c, Transcript::new(id)));
    }
    // Every answer streams before the store is disturbed.
    join_all(running.iter_mut().map(|(c, t)| c.read_chunks(t, 3))).await;
    disturb().await;
    join_all(running.iter_mut().map(|(c, t)| read_to_end(c, t))).await;
    for (i, (_, t)) in running.iter().enumerate() {
        t.assert_well_formed();
        assert_eq!(
            t.status(),
            Some(FinalStatus::Completed),
            "chat {i}: {:?}",
            t.done
        );
        assert_eq!(t.text, reference, "chat {i}: the same text as undisturbed");
    }
}

/// Redis + one ai-service + one gateway, on `url`.
async fn services(url: &str) -> (AiService, Gateway) {
    let ai = AiService::start(url, &[]).await;
    let gateway = Gateway::start(url, &ai.url(), &[]).await;
    (ai, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_restart_after_two_seconds_loses_no_answer() {
    let mut redis = RedisServer::start();
    let (_ai, gateway) = services(&redis.url()).await;
    chats_survive(&gateway.ws_url(), || async {
        redis.kill();
        // The outage itself: two seconds without Redis, then back with nothing in it.
        tokio::time::sleep(Duration::from_secs(2)).await;
        redis.restart();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_from_the_aof_loses_no_answer() {
    let mut redis = RedisServer::start_with_aof();
    let (_ai, gateway) = services(&redis.url()).await;
    chats_survive(&gateway.ws_url(), || async {
        redis.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        redis.restart();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_second_freeze_loses_no_answer() {
    let redis = RedisServer::start();
    let (_ai, gateway) = services(&redis.url()).await;
    chats_survive(&gateway.ws_url(), || async {
        // SIGSTOP: connections stay open, nothing answers; commands time out meanwhile.
        redis.signal(19);
        tokio::time::sleep(Duration::from_secs(5)).await;
        redis.signal(18);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_loses_no_answer() {
    let mut sentinels = RedisSentinels::start();
    let (_ai, gateway) = services(&sentinels.url()).await;
    chats_survive(&gateway.ws_url(), || async {
        tokio::task::block_in_place(|| sentinels.kill_master_and_wait_failover());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_failover_loses_no_answer() {
    let mut cluster = RedisCluster::start_with_replicas();
    let (_ai, gateway) = services(&cluster.url()).await;
    // Which master dies does not matter: some of the twenty sessions live on each.
    chats_survive(&gateway.ws_url(), || async {
        tokio::task::block_in_place(|| cluster.kill_master_of("{any}"));
    })
    .await;
}

/// A cancel that reaches the owner while the store is down stops the model at once (the
/// upstream sees its client go), is acknowledged `cancelling`, and the answer ends `cancelled`
/// once the store is back (the owner writes that end itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_the_outage_stops_the_model_and_ends_cancelled() {
    let fake = FakeOpenAi::start().await;
    let tokens: Vec<String> = (0..400).map(|i| format!(" w{i}")).collect();
    fake.push(StreamReply::new(&tokens).pace(Duration::from_millis(50)));
    let mut redis = RedisServer::start();
    let base_url = fake.base_url();
    let ai = AiService::start(
        &redis.url(),
        &[
            ("PROVIDER", "openai"),
            ("OPENAI_BASE_URL", base_url.as_str()),
            ("OPENAI_MODEL", "test-model"),
        ],
    )
    .await;
    let gateway = Gateway::start(&redis.url(), &ai.url(), &[]).await;
    let mut c = WsClient::connect(&gateway.ws_url()).await;
    let id = c.chat("a long answer").await;
    let mut t = Transcript::new(id);
    c.read_chunks(&mut t, 3).await;

    redis.kill();
    c.cancel(id).await;
    let mut ack = None;
    while ack.is_none() {
        match c.frame().await {
            ServerFrame::CancelAck { status, .. } => ack = Some(status),
            ServerFrame::Ack { .. } => {}
            f => assert!(absorb(&mut t, &f), "unexpected frame {f:?}"),
        }
    }
    assert_eq!(ack, Some(CancelStatus::Cancelling));
    // The model stops now, with the store still down.
    timeout(PATIENCE, fake.disconnected(0))
        .await
        .expect("the upstream request was not aborted");
    assert!(
        t.done.is_none(),
        "no end can be written while the store is down"
    );

    redis.restart();
    read_to_end(&mut c, &mut t).await;
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Cancelled));
    assert!(
        tokens.concat().starts_with(&t.text),
        "a prefix of the answer"
    );
    let stored = ai.wait_terminal(c.session_id, id).await;
    assert_eq!(
        stored.text, t.text,
        "the restored log holds what the client got"
    );
}
