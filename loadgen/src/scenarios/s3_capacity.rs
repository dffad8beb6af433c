//! S3: capacity. Waves of growing size (then a bisection between the last passing and the
//! first failing one) find the most tokens/s delivered with a steady p99 under the limit,
//! compared with what `redis-benchmark` measures for plain PUBLISH on the same Redis.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::wave::{wave, WaveSpec};
use super::Ctx;
use crate::procs::round3;

pub struct S3 {
    pub start: usize,
    pub factor: f64,
    pub max: usize,
    pub step_secs: f64,
    pub rate: f64,
    pub p99_limit_ms: f64,
    pub bench_requests: u64,
    /// Bisection steps between the last passing and the first failing step (0: none).
    pub refine_steps: usize,
    pub ramp: Duration,
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

/// One S3 step of `chats` chats: its JSON, and `Some((tokens/s, steady p99 ms))` if it passed.
async fn s3_step(
    ctx: &Arc<Ctx>,
    p: &S3,
    chats: usize,
    tokens: u64,
    what: &str,
) -> (Value, Option<(f64, f64)>) {
    let (mut v, _, p99_steady, tps) = wave(
        ctx,
        WaveSpec {
            chats,
            tokens,
            rate: p.rate,
            ramp: p.ramp,
        },
    )
    .await;
    let failures = v["failures"].as_u64().unwrap_or(0);
    let passed = match (p99_steady, tps) {
        (Some(p99), Some(tps)) if p99 <= p.p99_limit_ms && failures * 100 <= chats as u64 => {
            Some((tps, p99))
        }
        _ => None,
    };
    v["pass"] = json!(passed.is_some());
    eprintln!(
        "loadgen: S3 {what} {chats} chats: steady p99 {p99_steady:?} ms, {tps:?} tokens/s, {failures} failures → {}",
        if passed.is_some() { "pass" } else { "fail" }
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    (v, passed)
}

pub async fn s3_capacity(ctx: Arc<Ctx>, p: S3) -> Value {
    let c = ctx.clone();
    let req = p.bench_requests;
    let (p1, p16) = tokio::task::spawn_blocking(move || {
        (redis_benchmark(&c, 1, req), redis_benchmark(&c, 16, req))
    })
    .await
    .unwrap_or((Value::Null, Value::Null));
    let tokens = (p.rate * p.step_secs).ceil().max(1.0) as u64;
    let mut steps = Vec::new();
    let mut best: Option<(usize, f64, f64)> = None;
    let mut first_fail: Option<usize> = None;
    let mut k = p.start.max(1);
    let mut last_pass = 0usize;
    // Raise the number of chats by `factor` until a step fails.
    loop {
        let (v, pass) = s3_step(&ctx, &p, k, tokens, "step").await;
        if let Some(b) = pass {
            last_pass = k;
            if best.is_none_or(|x| b.0 > x.1) {
                best = Some((k, b.0, b.1));
            }
        } else {
            first_fail = Some(k);
        }
        steps.push(v);
        if first_fail.is_some() {
            break;
        }
        let next = ((k as f64) * p.factor).ceil() as usize;
        if next > p.max {
            break;
        }
        k = next.max(k + 1);
    }
    // Then bisect between the last pass and the first failure, so the result is not quantised
    // to the factor's steps (1,013 → 1,520 chats is 25k tokens/s at 50 tokens/s each).
    if let Some(fail) = first_fail {
        let (mut lo, mut hi) = (last_pass, fail);
        for _ in 0..p.refine_steps {
            let mid = (lo + hi) / 2;
            if lo == 0 || mid <= lo || mid >= hi {
                break;
            }
            let (v, pass) = s3_step(&ctx, &p, mid, tokens, "refine").await;
            steps.push(v);
            match pass {
                Some(b) => {
                    lo = mid;
                    if best.is_none_or(|x| b.0 > x.1) {
                        best = Some((mid, b.0, b.1));
                    }
                }
                None => hi = mid,
            }
        }
    }
    let ratio = |b: &Value| -> Value {
        match (best, b["ops_per_s"].as_f64()) {
            (Some((_, tps, _)), Some(ops)) if ops > 0.0 => json!(round3(tps / ops)),
            _ => Value::Null,
        }
    };
    json!({
        "params": {"start": p.start, "factor": p.factor, "max": p.max, "step_s": p.step_secs,
                   "refine_steps": p.refine_steps,
                   "rate": p.rate, "tokens_per_chat": tokens, "p99_limit_ms": p.p99_limit_ms},
        "redis_publish_p1": p1,
        "redis_publish_p16": p16,
        "best": best.map(|(k, tps, p99)| json!({"chats": k, "tokens_per_s": tps, "p99_ms": p99})),
        "first_failing_chats": first_fail,
        "ratio_to_publish_p1": ratio(&p1),
        "ratio_to_publish_p16": ratio(&p16),
        "steps": steps,
        "target": {"ratio_to_publish_p1_min": 1.0},
    })
}
