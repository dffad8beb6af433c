//! The capacity search shared by S3 (demo model) and S8 (`PROVIDER=openai`): waves of growing
//! size, then a bisection between the last passing and the first failing one, find the most
//! tokens/s delivered with a steady p99 under the limit.
//!
//! Contract: [`search`] runs the steps against whatever stack its [`Ctx`] points at and
//! returns every step's JSON (the wave's numbers, `cpu_us_per_token` among them: each watched
//! process's CPU per delivered token; and `pass`), the best passing step and the first failing
//! size. It
//! knows nothing of the baseline each scenario compares against.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::wave::{wave, WaveSpec};
use super::Ctx;

/// How the search steps.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    /// Chats of the first step; each step multiplies by `factor` up to `max`.
    pub start: usize,
    pub factor: f64,
    pub max: usize,
    /// Seconds of streaming per step (tokens per chat = rate × this).
    pub step_secs: f64,
    /// Tokens/s of each chat.
    pub rate: f64,
    pub p99_limit_ms: f64,
    /// Bisection steps between the last passing and the first failing step (0: none).
    pub refine_steps: usize,
    pub ramp: Duration,
}

impl Search {
    pub fn tokens_per_chat(&self) -> u64 {
        (self.rate * self.step_secs).ceil().max(1.0) as u64
    }

    /// The parameters, as the results record them.
    pub fn params_json(&self) -> Value {
        json!({"start": self.start, "factor": self.factor, "max": self.max,
               "step_s": self.step_secs, "refine_steps": self.refine_steps,
               "rate": self.rate, "tokens_per_chat": self.tokens_per_chat(),
               "p99_limit_ms": self.p99_limit_ms})
    }
}

/// The best passing step.
#[derive(Debug, Clone, Copy)]
pub struct Best {
    pub chats: usize,
    pub tokens_per_s: f64,
    pub p99_ms: f64,
}

impl Best {
    pub fn to_json(self) -> Value {
        json!({"chats": self.chats, "tokens_per_s": self.tokens_per_s, "p99_ms": self.p99_ms})
    }
}

/// What a search found.
pub struct Found {
    pub steps: Vec<Value>,
    pub best: Option<Best>,
    pub first_fail: Option<usize>,
}

/// Whether one step met the limit.
enum Verdict {
    Pass(Best),
    Fail,
}

/// One step of `chats` chats: its JSON and its verdict.
async fn step(
    ctx: &Arc<Ctx>,
    p: &Search,
    label: &str,
    chats: usize,
    what: &str,
) -> (Value, Verdict) {
    let (mut v, _, p99_steady, tps) = wave(
        ctx,
        WaveSpec {
            chats,
            tokens: p.tokens_per_chat(),
            rate: p.rate,
            ramp: p.ramp,
        },
    )
    .await;
    let failures = v["failures"].as_u64().unwrap_or(0);
    let verdict = match (p99_steady, tps) {
        (Some(p99), Some(tps)) if p99 <= p.p99_limit_ms && failures * 100 <= chats as u64 => {
            Verdict::Pass(Best {
                chats,
                tokens_per_s: tps,
                p99_ms: p99,
            })
        }
        _ => Verdict::Fail,
    };
    let passed = matches!(verdict, Verdict::Pass(_));
    v["pass"] = json!(passed);
    eprintln!(
        "loadgen: {label} {what} {chats} chats: steady p99 {p99_steady:?} ms, {tps:?} tokens/s, {failures} failures → {}",
        if passed { "pass" } else { "fail" }
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    (v, verdict)
}

/// Keeps `b` if it beats the best so far.
fn keep(found: &mut Found, b: Best) {
    if found.best.is_none_or(|x| b.tokens_per_s > x.tokens_per_s) {
        found.best = Some(b);
    }
}

/// Runs the search (see the module's contract); `label` names the scenario in progress lines.
pub async fn search(ctx: &Arc<Ctx>, p: &Search, label: &str) -> Found {
    let mut found = Found {
        steps: Vec::new(),
        best: None,
        first_fail: None,
    };
    let mut k = p.start.max(1);
    let mut last_pass = 0usize;
    // Raise the number of chats by `factor` until a step fails.
    loop {
        let (v, verdict) = step(ctx, p, label, k, "step").await;
        found.steps.push(v);
        match verdict {
            Verdict::Pass(b) => {
                last_pass = k;
                keep(&mut found, b);
            }
            Verdict::Fail => {
                found.first_fail = Some(k);
                break;
            }
        }
        let next = ((k as f64) * p.factor).ceil() as usize;
        if next > p.max {
            break;
        }
        k = next.max(k + 1);
    }
    // Then bisect between the last pass and the first failure, so the result is not quantised
    // to the factor's steps (1,013 → 1,520 chats is 25k tokens/s at 50 tokens/s each).
    if let Some(fail) = found.first_fail {
        let (mut lo, mut hi) = (last_pass, fail);
        for _ in 0..p.refine_steps {
            let mid = (lo + hi) / 2;
            if lo == 0 || mid <= lo || mid >= hi {
                break;
            }
            let (v, verdict) = step(ctx, p, label, mid, "refine").await;
            found.steps.push(v);
            match verdict {
                Verdict::Pass(b) => {
                    lo = mid;
                    keep(&mut found, b);
                }
                Verdict::Fail => hi = mid,
            }
        }
    }
    found
}
