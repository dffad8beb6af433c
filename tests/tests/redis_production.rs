//! Production Redis settings, with real processes: the warning about an evicting
//! `maxmemory-policy`, and a standalone Redis with AOF restarted under a running stack.

use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::process::bin_path;
use e2e_tests::stack::wait_ready;
use e2e_tests::{free_port, AiService, Gateway, Proc, RedisServer, WsClient, PATIENCE};
use shared_proto::FinalStatus;

const EVICTION_WARNING: &str = "Redis may evict keys under memory pressure";

/// An ai-service on `redis`, stderr captured, once ready.
async fn ai_logged(redis: &RedisServer) -> Proc {
    let (port, admin_port) = (free_port(), free_port());
    let mut cmd = Command::new(bin_path("ai-service"));
    cmd.env("AI_ADDR", format!("127.0.0.1:{port}"))
        .env("ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
        .env("REDIS_URL", redis.url())
        .env("RUST_LOG", "info");
    let proc = Proc::spawn_capturing("ai-service", cmd);
    wait_ready(&format!("http://127.0.0.1:{port}/readyz")).await;
    proc
}

/// Waits until `proc` logged `needle` (the event), or fails.
async fn wait_logged(proc: &Proc, needle: &str) {
    let start = Instant::now();
    while !proc.stderr().contains(needle) {
        assert!(
            start.elapsed() < PATIENCE,
            "no {needle:?} in:\n{}",
            proc.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_maxmemory_policy_is_warned_about_once() {
    let redis = RedisServer::start();
    assert_eq!(
        redis.cli(&["config", "set", "maxmemory-policy", "volatile-lru"]),
        "OK"
    );
    let ai = ai_logged(&redis).await;
    wait_logged(&ai, EVICTION_WARNING).await;
    assert_eq!(ai.stderr().matches(EVICTION_WARNING).count(), 1);
    assert!(ai.stderr().contains("volatile-lru"));

    // `noeviction` (the advice): no warning, only the line that says it was checked.
    let safe = RedisServer::start();
    assert_eq!(
        safe.cli(&["config", "set", "maxmemory-policy", "noeviction"]),
        "OK"
    );
    let quiet = ai_logged(&safe).await;
    wait_logged(&quiet, "maxmemory-policy noeviction").await;
    assert!(
        !quiet.stderr().contains(EVICTION_WARNING),
        "{}",
        quiet.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_answer_survives_a_redis_restart_with_aof() {
    let mut redis = RedisServer::start_with_aof();
    let ai = AiService::start(&redis.url(), &[]).await;
    let gateway = Gateway::start(&redis.url(), &ai.url(), &[]).await;
    let mut c = WsClient::connect(&gateway.ws_url()).await;
    let id = c.chat("!demo tokens=10 rate=0\nkeep me").await;
    let (t, _) = c.collect(id).await;
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    // everysec: make the write durable now rather than wait for the next second.
    assert!(!redis.cli(&["bgrewriteaof"]).is_empty());
    let start = Instant::now();
    while !redis
        .cli(&["info", "persistence"])
        .contains("aof_rewrite_in_progress:0")
        || redis
            .cli(&["info", "persistence"])
            .contains("aof_rewrite_scheduled:1")
    {
        assert!(start.elapsed() < PATIENCE, "AOF rewrite did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.restart();
    // The message is still answerable after the restart: its state came back from the AOF.
    let start = Instant::now();
    loop {
        if let Some(view) = ai.message(c.session_id, id).await {
            assert!(view.state.is_terminal());
            break;
        }
        assert!(start.elapsed() < PATIENCE, "the message was lost");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
