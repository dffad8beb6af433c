//! S3: capacity. The capacity search (`capacity.rs`: waves of growing size, then a bisection)
//! against the demo model finds the most tokens/s delivered with a steady p99 under the limit,
//! compared with what `redis-benchmark` measures for plain PUBLISH on the same Redis.
//!
//! With a floor ([`S3::floor`], `--s3-floor-url`: `loadgen floor-server`, which answers each
//! chat with paced chunk frames and does no other work per token), the same search runs
//! against it afterwards, with the same client: what it reaches bounds what any gateway can
//! reach on this machine, so the run says how much of the gap to `PUBLISH -P 1` is the stack's
//! and how much is the last hop's alone (`ratio_to_floor`, and the floor's own ratio).

use std::sync::Arc;

use serde_json::{json, Value};

use super::capacity::{self, Best, Search};
use super::Ctx;
use crate::procs::ratio;

pub struct S3 {
    pub search: Search,
    /// Requests per redis-benchmark run (the PUBLISH baselines).
    pub bench_requests: u64,
    /// The floor server's context (its URL, and the processes to watch: floor-server, loadgen).
    pub floor: Option<Arc<Ctx>>,
}

fn redis_benchmark(ctx: &Ctx, pipeline: u32, requests: u64) -> Value {
    let Some(port) = ctx.redis_port else {
        return json!({"error": "no --redis-port"});
    };
    let out = std::process::Command::new(&ctx.redis_benchmark)
        .args(["-p", &port.to_string(), "-q", "-n", &requests.to_string()])
        .args(["-P", &pipeline.to_string(), "publish", "ch", "hello"])
        .output();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            let rps = text
                .split(['\r', '\n'])
                .filter(|l| l.contains("requests per second"))
                .filter_map(|l| {
                    l.split(':')
                        .nth(1)?
                        .split_whitespace()
                        .next()?
                        .parse::<f64>()
                        .ok()
                })
                .next_back();
            let line = text
                .split(['\r', '\n'])
                .rfind(|l| l.contains("requests per second"))
                .map(|l| l.trim().to_string());
            json!({"pipeline": pipeline, "requests": requests, "ops_per_s": rps, "output": line})
        }
        Err(e) => json!({"pipeline": pipeline, "error": e.to_string()}),
    }
}

pub async fn s3_capacity(ctx: Arc<Ctx>, p: S3) -> Value {
    let c = ctx.clone();
    let req = p.bench_requests;
    let (p1, p16) = tokio::task::spawn_blocking(move || {
        (redis_benchmark(&c, 1, req), redis_benchmark(&c, 16, req))
    })
    .await
    .unwrap_or((Value::Null, Value::Null));
    let search = p.search;
    let found = capacity::search(&ctx, &search, "S3").await;
    let best = found.best;
    let best_tps = best.map(|b| b.tokens_per_s);
    let floor = match &p.floor {
        Some(floor_ctx) => {
            let f = capacity::search(floor_ctx, &search, "S3 floor").await;
            let floor_best = f.best.map(|b| b.tokens_per_s);
            json!({
                "server": "loadgen floor-server (paced chunk frames; no Redis, no producer)",
                "best": f.best.map(Best::to_json),
                "first_failing_chats": f.first_fail,
                "ratio_to_publish_p1": ratio(floor_best, p1["ops_per_s"].as_f64()),
                "s3_ratio_to_floor": ratio(best_tps, floor_best),
                "steps": f.steps,
            })
        }
        None => Value::Null,
    };
    json!({
        "params": search.params_json(),
        "redis_publish_p1": p1,
        "redis_publish_p16": p16,
        "best": best.map(Best::to_json),
        "first_failing_chats": found.first_fail,
        "ratio_to_publish_p1": ratio(best_tps, p1["ops_per_s"].as_f64()),
        "ratio_to_publish_p16": ratio(best_tps, p16["ops_per_s"].as_f64()),
        "steps": found.steps,
        "floor": floor,
        "target": {"ratio_to_publish_p1_min": 1.0},
    })
}
