//! S8: the real provider path. S3's capacity search (`capacity.rs`) against a second stack
//! whose ai-service runs `PROVIDER=openai` against the `fake-openai` process, so that every
//! token also costs an HTTP chunk, an SSE parse and a JSON decode in the ai-service.
//!
//! Contract: [`s8_openai`] runs the search through its own [`Ctx`] (the second gateway, its
//! ai-service, and the processes to watch: gateway, ai-service, redis, fake-openai, loadgen)
//! and reports the best tokens/s at the p99 limit and each process's CPU µs per delivered
//! token in every step. The prompts are the demo model's `!demo tokens=N rate=R`, which the
//! fake server obeys too. [`compare_with_s3`] adds what needs the same run's S3: the ratio of
//! the best tokens/s, and the CPU per token of each process at the largest chat count both
//! passed (the ai-service's difference is the provider path's cost per token).

use std::sync::Arc;

use serde_json::{json, Value};

use super::capacity::{self, Best, Search};
use super::Ctx;
use crate::procs::{ratio, round3};

pub async fn s8_openai(ctx: Option<Arc<Ctx>>, search: Search) -> Value {
    let Some(ctx) = ctx else {
        return json!({
            "skipped": "no --s8-gateway-url / --s8-ai-url (bench/run.sh starts the S8 stack and passes them)",
            "params": search.params_json(),
        });
    };
    let found = capacity::search(&ctx, &search, "S8").await;
    let best_step = found.best.and_then(|b| {
        found
            .steps
            .iter()
            .find(|s| s["params"]["chats"].as_u64() == Some(b.chats as u64) && s["pass"] == true)
    });
    json!({
        "params": search.params_json(),
        "provider": "openai (fake-openai process)",
        "best": found.best.map(Best::to_json),
        "best_cpu_us_per_token": best_step.map(|s| s["cpu_us_per_token"].clone()),
        "first_failing_chats": found.first_fail,
        "ratio_to_s3": Value::Null,
        "steps": found.steps,
    })
}

/// The passing step with the most chats among those whose chat count is in `chats`.
fn largest_passing<'a>(steps: &'a Value, chats: &[u64]) -> Option<&'a Value> {
    steps
        .as_array()?
        .iter()
        .filter(|s| s["pass"] == true)
        .filter(|s| {
            s["params"]["chats"]
                .as_u64()
                .is_some_and(|c| chats.contains(&c))
        })
        .max_by_key(|s| s["params"]["chats"].as_u64().unwrap_or(0))
}

/// Fills in S8's comparison with the same run's S3 (both already in `s8` and `s3`).
pub fn compare_with_s3(s8: &mut Value, s3: &Value) {
    s8["ratio_to_s3"] = json!(ratio(
        s8["best"]["tokens_per_s"].as_f64(),
        s3["best"]["tokens_per_s"].as_f64(),
    ));
    let passed = |v: &Value| -> Vec<u64> {
        v["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["pass"] == true)
            .filter_map(|s| s["params"]["chats"].as_u64())
            .collect()
    };
    let s3_chats = passed(s3);
    let common: Vec<u64> = passed(s8)
        .into_iter()
        .filter(|c| s3_chats.contains(c))
        .collect();
    let (Some(a), Some(b)) = (
        largest_passing(&s8["steps"], &common),
        largest_passing(&s3["steps"], &common),
    ) else {
        return;
    };
    let ai = |s: &Value| s["cpu_us_per_token"]["ai-service"].as_f64();
    s8["vs_s3_same_chats"] = json!({
        "chats": a["params"]["chats"],
        "s8_cpu_us_per_token": a["cpu_us_per_token"],
        "s3_cpu_us_per_token": b["cpu_us_per_token"],
        "ai_service_extra_us_per_token": match (ai(a), ai(b)) {
            (Some(x), Some(y)) => json!(round3(x - y)),
            _ => Value::Null,
        },
    });
}
