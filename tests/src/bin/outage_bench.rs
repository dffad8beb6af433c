//! Benchmark: how long an answer pauses when Redis goes away and comes back, and what running
//! answers cost Redis.
//!
//! - `empty_restart`: `--chats` answers stream (one session each); Redis is SIGKILLed, stays
//!   down 2 s, and comes back empty. For each answer: the time from Redis answering again to
//!   the first chunk the client receives after that (its owner restored it and wrote on).
//! - `sentinel_failover`: the same through a Sentinel failover (a master, a replica, three
//!   sentinels; the master SIGKILLed); "back" is when every sentinel names the new master.
//! - `memory`: Redis `used_memory` with `--running` answers running, each about 100 tokens
//!   (≈ 600 B of text) in, against the same Redis before them: bytes per 1,000 running answers.
//!
//! Every answer must still end `completed`. Prints one JSON line per scenario.
//!
//! Command (release binaries first):
//! `cargo build --release --workspace --bins && cargo run --release -p e2e-tests --bin outage-bench -- --chats 50 --running 1000`

use std::sync::Arc;
use std::time::Duration;

use e2e_tests::args::arg;
use e2e_tests::client::{absorb, Transcript};
use e2e_tests::stats::summary_ms;
use e2e_tests::{AiService, Gateway, RedisSentinels, RedisServer, WsClient};
use futures_util::future::join_all;
use shared_proto::{FinalStatus, ServerFrame};
use tokio::sync::watch;
use tokio::time::Instant;

/// Twenty seconds of answer: the outage comes well inside it.
const PROMPT: &str = "!demo tokens=400 rate=20\nthrough the outage";

/// Follows one answer to its end; returns when the first chunk came after `back` was set.
async fn follow(
    mut c: WsClient,
    mut t: Transcript,
    back: watch::Receiver<Option<Instant>>,
) -> Duration {
    let mut first_after = None;
    while t.done.is_none() {
        let f = c.frame().await;
        let now = Instant::now();
        if let ServerFrame::Chunk { .. } = f {
            if first_after.is_none() {
                if let Some(b) = *back.borrow() {
                    first_after = Some(now.saturating_duration_since(b));
                }
            }
        }
        if !matches!(f, ServerFrame::Ack { .. }) {
            assert!(absorb(&mut t, &f), "unexpected frame {f:?}");
        }
    }
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed), "{:?}", t.done);
    first_after.expect("a chunk after Redis came back")
}

/// `chats` answers through `disturb`, which returns when Redis is back.
async fn pauses<F, Fut>(ws_url: &str, chats: usize, disturb: F) -> Vec<f64>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut running = Vec::new();
    for _ in 0..chats {
        let mut c = WsClient::connect(ws_url).await;
        let id = c.chat(PROMPT).await;
        let mut t = Transcript::new(id);
        c.read_chunks(&mut t, 3).await;
        running.push((c, t));
    }
    let (tx, rx) = watch::channel(None);
    let followers: Vec<_> = running
        .into_iter()
        .map(|(c, t)| tokio::spawn(follow(c, t, rx.clone())))
        .collect();
    disturb().await;
    let _ = tx.send(Some(Instant::now()));
    join_all(followers)
        .await
        .into_iter()
        .map(|r| r.expect("follower").as_secs_f64() * 1000.0)
        .collect()
}

fn used_memory(redis: &RedisServer) -> u64 {
    redis
        .cli(&["info", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let chats = arg("--chats", 50);
    let running = arg("--running", 1000);

    {
        let mut redis = RedisServer::start();
        let ai = AiService::start(&redis.url(), &[]).await;
        let gw = Gateway::start(&redis.url(), &ai.url(), &[]).await;
        let samples = pauses(&gw.ws_url(), chats, || async {
            redis.kill();
            tokio::time::sleep(Duration::from_secs(2)).await;
            redis.restart();
        })
        .await;
        println!(
            "{}",
            serde_json::json!({"scenario": "empty_restart", "chats": chats, "back_to_first_chunk": summary_ms(&samples)})
        );
    }

    {
        let mut sentinels = RedisSentinels::start();
        let ai = AiService::start(&sentinels.url(), &[]).await;
        let gw = Gateway::start(&sentinels.url(), &ai.url(), &[]).await;
        let samples = pauses(&gw.ws_url(), chats, || async {
            tokio::task::block_in_place(|| sentinels.kill_master_and_wait_failover());
        })
        .await;
        println!(
            "{}",
            serde_json::json!({"scenario": "sentinel_failover", "chats": chats, "back_to_first_chunk": summary_ms(&samples)})
        );
    }

    {
        let redis = Arc::new(RedisServer::start());
        let ai = AiService::start(&redis.url(), &[("SHUTDOWN_TIMEOUT", "1s")]).await;
        let gw = Gateway::start(&redis.url(), &ai.url(), &[("MAX_CONNECTIONS_PER_IP", "0")]).await;
        let before = used_memory(&redis);
        let mut clients = Vec::new();
        for _ in 0..running {
            let mut c = WsClient::connect(&gw.ws_url()).await;
            let id = c.chat("!demo tokens=100000 rate=20\nrunning").await;
            clients.push((c, Transcript::new(id)));
        }
        join_all(clients.iter_mut().map(|(c, t)| c.read_chunks(t, 100))).await;
        let after = used_memory(&redis);
        let per_1000 = (after.saturating_sub(before)) as f64 * 1000.0 / running as f64;
        println!(
            "{}",
            serde_json::json!({"scenario": "memory", "running": running, "tokens_each": 100,
                "used_memory_before": before, "used_memory_after": after,
                "bytes_per_1000_running": per_1000.round()})
        );
    }
}
