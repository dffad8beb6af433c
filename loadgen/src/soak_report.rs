//! The soak's Markdown section: what ran, the verdicts next to their targets, and the samples
//! over time (at most about 30 rows, evenly picked, the first and the last always shown).
//! `loadgen report` appends it when a results file holds a soak; `loadgen soak-report` writes
//! it alone, to paste into BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::table::{group, num, Table};

/// Rows of the samples table at most (plus the last sample).
const MAX_ROWS: usize = 30;

fn mib(v: &Value, unit: f64) -> String {
    v.as_f64()
        .map_or("–".into(), |x| format!("{:.1}", x * unit / 1_048_576.0))
}

fn growth_row(t: &mut Table, name: &str, g: &Value, max: &Value) {
    t.row(
        &format!("{name} RSS growth after warm-up (least-squares slope; first → last)"),
        format!(
            "{} MB per 10,000 chats ({} MB per 10,000; {} → {} MB)",
            num(&g["slope_mb_per_10k_chats"]),
            num(&g["first_last_mb_per_10k_chats"]),
            num(&g["rss_mb_first"]),
            num(&g["rss_mb_last"])
        ),
        &format!("< {} MB per 10,000 chats", num(max)),
        g["met"].as_bool(),
    );
}

/// The section for one soak result (`scenarios.soak` of a results file).
pub fn section(s: &Value) -> String {
    let p = &s["params"];
    let c = &s["chats"];
    let g = &s["growth"];
    let target = &s["target"];
    let mut md = String::new();
    let ttl = p["stream_ttl"].as_str().unwrap_or("as configured");
    let _ = writeln!(
        md,
        "## Soak: memory over {} chats\n\n{} sockets for {} s, chats back to back (`{}`), {} cancelled after its first chunk, nothing scraping `/metrics`; every {} s the RSS of the gateway and the ai-service and Redis `used_memory`. STREAM_TTL {ttl}; warm-up: the first {} s. {} chats ended ({} completed, {} cancelled, {} failed; {} chats/s); {} error frames, {} client failures{}.\n",
        group(c["ended"].as_u64().unwrap_or(0)),
        num(&p["sockets"]),
        num(&p["duration_s"]),
        p["prompt"].as_str().unwrap_or("").replace('\n', "\\n"),
        match p["cancel_every"].as_u64() {
            Some(0) => "no chat".to_string(),
            Some(n) => format!("one chat in {n}"),
            None => "–".to_string(),
        },
        num(&p["sample_every_s"]),
        num(&p["warmup_s"]),
        num(&c["ended"]),
        num(&c["completed"]),
        num(&c["cancelled"]),
        num(&c["failed"]),
        num(&s["chats_per_s"]),
        num(&c["error_frames"]),
        num(&c["client_failures"]),
        c["first_failure"]
            .as_str()
            .map(|f| format!(" (first: {f})"))
            .unwrap_or_default(),
    );
    let mut t = Table::new();
    let max = &target["rss_growth_mb_per_10k_chats_max"];
    growth_row(&mut t, "gateway", &g["gateway"], max);
    growth_row(&mut t, "ai-service", &g["ai-service"], max);
    let r = &g["redis"];
    t.row(
        "Redis used_memory, mean of the last third ÷ the middle third",
        format!(
            "{} ({} ÷ {} MiB)",
            num(&r["ratio"]),
            mib(&r["last_third_mean_bytes"], 1.0),
            mib(&r["middle_third_mean_bytes"], 1.0)
        ),
        &format!(
            "plateaus (≤ {}) at what STREAM_TTL ({ttl}) retains",
            num(&target["redis_plateau_ratio_max"])
        ),
        r["plateaus"].as_bool(),
    );
    t.info("post-warm-up samples", num(&g["post_warmup_samples"]));
    md.push_str(&t.0);
    let _ = writeln!(
        md,
        "\n| minute | chats so far | gateway RSS MiB | ai-service RSS MiB | Redis used_memory MiB | Redis keys |\n|---|---|---|---|---|---|"
    );
    let samples = s["samples"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let step = samples.len().div_ceil(MAX_ROWS).max(1);
    for (i, x) in samples.iter().enumerate() {
        if i % step != 0 && i + 1 != samples.len() {
            continue;
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            x["t_s"]
                .as_f64()
                .map_or("–".into(), |t| format!("{:.1}", t / 60.0)),
            num(&x["chats"]),
            mib(&x["gateway_rss_kib"], 1024.0),
            mib(&x["ai_rss_kib"], 1024.0),
            mib(&x["redis_used_memory"], 1.0),
            num(&x["redis_keys"]),
        );
    }
    md
}

pub fn write(input: &Path, output: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", input.display()))?;
    let soak = &doc["scenarios"]["soak"];
    if soak.is_null() {
        return Err(format!("{}: no soak in this results file", input.display()));
    }
    std::fs::write(output, section(soak)).map_err(|e| format!("{}: {e}", output.display()))
}
