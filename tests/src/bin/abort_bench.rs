//! Benchmark: how fast a Stop closes the upstream model request.
//!
//! Starts redis-server, the ai-service with `PROVIDER=openai` pointed at the test kit's fake
//! OpenAI-compatible server (the real streaming wire format, one token every 20 ms), and the
//! gateway; then, `--runs` times: a chat over a real WebSocket, a `cancel` after the third
//! chunk, and the time from sending the cancel to the fake server seeing its client's TCP
//! connection close. Prints the distribution as JSON.
//!
//! Command (release binaries first):
//! `cargo build --release --workspace --bins && cargo run --release -p e2e-tests --bin abort-bench -- --runs 100`

use std::time::Duration;

use tokio::time::Instant;

use e2e_tests::stats::percentile;
use e2e_tests::{Stack, WsClient};
use test_support::upstream::{FakeOpenAi, StreamReply};
use test_support::Transcript;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let fake = FakeOpenAi::start().await;
    let base_url = fake.base_url();
    let stack = Stack::start_with(
        &[
            ("PROVIDER", "openai"),
            ("OPENAI_BASE_URL", base_url.as_str()),
            ("OPENAI_MODEL", "bench-model"),
        ],
        &[],
    )
    .await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let tokens: Vec<String> = (0..1000).map(|i| format!(" w{i}")).collect();
    let mut delays_ms = Vec::with_capacity(runs);
    for run in 0..runs {
        fake.push(StreamReply::new(&tokens).pace(Duration::from_millis(20)));
        let id = c.chat("a long answer please").await;
        let mut t = Transcript::new(id);
        c.read_chunks(&mut t, 3).await;
        let sent = Instant::now();
        c.cancel(id).await;
        let gone = tokio::time::timeout(Duration::from_secs(10), fake.disconnected(run))
            .await
            .expect("the upstream request was not aborted within 10 s");
        delays_ms.push(gone.at.saturating_duration_since(sent).as_secs_f64() * 1000.0);
        // Drain this message's remaining frames (its done, the cancel_ack) before the next.
        c.await_cancel(&mut t).await;
    }
    let mut sorted = delays_ms.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let report = serde_json::json!({
        "scenario": "upstream abort after cancel (cancel sent -> upstream TCP closed)",
        "runs": runs,
        "p50_ms": percentile(&sorted, 50.0),
        "p99_ms": percentile(&sorted, 99.0),
        "max_ms": sorted.last().copied().unwrap_or(f64::NAN),
        "target_ms": 50,
    });
    println!("{report}");
}
