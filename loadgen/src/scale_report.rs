//! `loadgen scale-report`: one scale-out measurement (bench/scale.sh) as JSON and Markdown.
//!
//! Contract: the input is one folder per layout, named on the command line (`NAME=DIR`), as
//! bench/scale.sh writes it:
//! - `layout.json`: `{"gateways": n, "ai_services": n, "redis": "standalone"|"cluster",
//!   "shards": [{"name": "redis-1", "port": p}, …]}`;
//! - `loadgen.json`: a `loadgen run --scenario s2` results file (one wave; CPU of every
//!   process given with `--pid`, named `gateway-1`, `ai-service-2`, `redis-3`, …);
//! - `<shard>.commandstats`, `<shard>.dbsize` and `<shard>.memory`: `INFO commandstats`,
//!   `DBSIZE` and `INFO memory` of each shard after the wave (statistics reset just before
//!   it; the memory files are optional);
//! - `sockstat.txt`: `/proc/net/sockstat` sampled during the wave (optional).
//!
//! Out come one JSON document (every layout's derived figures and its whole wave) and one
//! Markdown report. The figure that transfers to other machines is CPU microseconds per
//! delivered token, per process and per role (the sum over a role's processes): on 2 cores
//! every process shares the same cores, so tokens/s at a p99 says little about a larger
//! deployment, while the CPU a token costs each process does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::commandstats;
use crate::procs::{round1, round3};
use crate::table::{group, num};

/// The p99 (steady window) a layout must stay under for its numbers to count as "carried".
const P99_LIMIT_MS: f64 = 50.0;

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `gateway-2` → `gateway`; `loadgen` → `loadgen`.
fn role(process: &str) -> &str {
    match process.rsplit_once('-') {
        Some((head, tail)) if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => process,
    }
}

/// The largest `mem` (pages) and `inuse` of the `TCP:` lines of `/proc/net/sockstat` samples.
fn sockstat_max(text: &str) -> (Option<u64>, Option<u64>) {
    let mut mem = None;
    let mut inuse = None;
    for line in text.lines().filter(|l| l.starts_with("TCP:")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            let v = pair[1].parse::<u64>().ok();
            match pair[0] {
                "mem" => mem = mem.max(v),
                "inuse" => inuse = inuse.max(v),
                _ => {}
            }
        }
    }
    (mem, inuse)
}

/// One layout's derived figures.
fn layout(name: &str, dir: &Path) -> Result<Value, String> {
    let desc = read_json(&dir.join("layout.json"))?;
    let doc = read_json(&dir.join("loadgen.json"))?;
    let wave = doc["scenarios"]["s2"].clone();
    if wave.is_null() {
        return Err(format!(
            "{}: no s2 wave in loadgen.json",
            dir.join("loadgen.json").display()
        ));
    }
    let tokens = wave["tokens"].as_f64().unwrap_or(0.0);
    let cpu = &wave["cpu_percent"];
    let window_s = cpu["window_s"].as_f64().unwrap_or(0.0);
    let per_token =
        |pct: f64| (tokens > 0.0).then(|| round3(pct / 100.0 * window_s * 1e6 / tokens));

    let mut processes = Vec::new();
    let mut roles = serde_json::Map::new();
    if let Some(map) = cpu.as_object() {
        for (proc_name, v) in map.iter().filter(|(k, _)| *k != "window_s") {
            let Some(pct) = v.as_f64() else { continue };
            processes.push(json!({
                "name": proc_name,
                "role": role(proc_name),
                "cpu_percent": pct,
                "cpu_s": round3(pct / 100.0 * window_s),
                "us_per_token": per_token(pct),
            }));
            let r = roles
                .entry(role(proc_name).to_string())
                .or_insert_with(|| json!({"processes": 0, "cpu_percent": 0.0}));
            r["processes"] = json!(r["processes"].as_u64().unwrap_or(0) + 1);
            r["cpu_percent"] = json!(round1(r["cpu_percent"].as_f64().unwrap_or(0.0) + pct));
        }
    }
    let mut total_pct = 0.0;
    for r in roles.values_mut() {
        let pct = r["cpu_percent"].as_f64().unwrap_or(0.0);
        total_pct += pct;
        r["us_per_token"] = json!(per_token(pct));
    }

    let redis_cpu: f64 = processes
        .iter()
        .filter(|p| p["role"] == "redis")
        .filter_map(|p| p["cpu_percent"].as_f64())
        .sum();
    let mut shards = Vec::new();
    let mut all_calls = 0u64;
    for s in desc["shards"].as_array().into_iter().flatten() {
        let shard = s["name"].as_str().unwrap_or("redis");
        let stats = std::fs::read_to_string(dir.join(format!("{shard}.commandstats")))
            .map(|t| commandstats::parse(&t))
            .unwrap_or_default();
        let dbsize: Option<u64> = std::fs::read_to_string(dir.join(format!("{shard}.dbsize")))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let used_memory: Option<u64> = std::fs::read_to_string(dir.join(format!("{shard}.memory")))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.trim().strip_prefix("used_memory:")?.parse().ok())
            });
        let calls: u64 = stats.iter().map(|c| c.calls).sum();
        let usec: u64 = stats.iter().map(|c| c.usec).sum();
        all_calls += calls;
        let pct = cpu[shard].as_f64();
        shards.push(json!({
            "name": shard,
            "port": s["port"],
            "cpu_percent": pct,
            "share_of_redis_cpu": pct.filter(|_| redis_cpu > 0.0).map(|p| round3(p / redis_cpu)),
            "us_per_token": pct.and_then(per_token),
            "calls": calls,
            "usec": usec,
            "keys_after": dbsize,
            "used_memory_after": used_memory,
            "commands": commandstats::to_json(&stats),
        }));
    }
    for s in &mut shards {
        let calls = s["calls"].as_f64().unwrap_or(0.0);
        s["share_of_calls"] = json!((all_calls > 0).then(|| round3(calls / all_calls as f64)));
        s["calls_per_token"] = json!((tokens > 0.0).then(|| round3(calls / tokens)));
    }

    let (tcp_mem_pages, tcp_inuse) = std::fs::read_to_string(dir.join("sockstat.txt"))
        .map(|t| sockstat_max(&t))
        .unwrap_or((None, None));
    let p99 = wave["latency_steady"]["p99_ms"].as_f64();
    let failures = wave["failures"].as_u64().unwrap_or(0);
    Ok(json!({
        "name": name,
        "layout": desc,
        "chats": wave["params"]["chats"],
        "rate_per_chat": wave["params"]["rate"],
        "tokens_per_chat": wave["params"]["tokens"],
        "offered_tokens_per_s": wave["offered_tokens_per_s"],
        "delivered_tokens_per_s_steady": wave["steady_tokens_per_s"],
        "delivered_tokens_per_s_overall": wave["overall_tokens_per_s"],
        "tokens": wave["tokens"],
        "completed": wave["completed"],
        "failures": failures,
        "seq_gaps": wave["seq_gaps"],
        "error_frames": wave["error_frames"],
        "latency_steady": wave["latency_steady"],
        "latency": wave["latency"],
        "p99_limit_ms": P99_LIMIT_MS,
        "carried": p99.is_some_and(|p| p <= P99_LIMIT_MS) && failures == 0,
        "cpu_window_s": window_s,
        "processes": processes,
        "roles": Value::Object(roles),
        "total_cpu_percent": round1(total_pct),
        "total_us_per_token": per_token(total_pct),
        "shards": shards,
        "tcp_mem_pages_max": tcp_mem_pages,
        "tcp_inuse_max": tcp_inuse,
        "loadavg_before": doc["loadavg_before"],
        "machine": doc["machine"],
        "wave": wave,
    }))
}

fn f(v: &Value) -> String {
    num(v)
}

fn markdown(doc: &Value) -> String {
    let layouts = doc["layouts"].as_array().cloned().unwrap_or_default();
    let mut md = String::new();
    let m = &layouts
        .first()
        .map(|l| l["machine"].clone())
        .unwrap_or_default();
    let _ = writeln!(
        md,
        "# Scale-out on one machine\n\nGenerated by `loadgen scale-report` from `{}`. Command: `{}`; {} UTC. Machine: {} cores ({}), {} GiB, kernel {}. Every process of every layout, and the load generator, share these cores, so the figure that transfers to a larger deployment is the CPU each process spends per delivered token; tokens/s and latency are this machine's.\n",
        doc["json"].as_str().unwrap_or(""),
        doc["command"].as_str().unwrap_or(""),
        doc["date"].as_str().unwrap_or(""),
        f(&m["cores"]),
        f(&m["cpu_model"]),
        f(&m["mem_gib"]),
        f(&m["kernel"]),
    );

    let _ = writeln!(md, "## Load and latency\n");
    let _ = writeln!(
        md,
        "| layout | gateways | ai-services | Redis | chats × tokens/s (tokens each) | offered tokens/s | delivered tokens/s (steady / whole wave) | steady p50 / p99 / max ms | all-chunk p99 ms | completed / failures / seq gaps / error frames | steady p99 ≤ {P99_LIMIT_MS} ms, no failures |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for l in &layouts {
        let d = &l["layout"];
        let shards = d["shards"].as_array().map_or(0, |s| s.len());
        let redis = match d["redis"].as_str() {
            Some("cluster") => format!("Cluster, {shards} masters"),
            _ => "one redis-server".to_string(),
        };
        let ls = &l["latency_steady"];
        let _ = writeln!(
            md,
            "| {} | {} | {} | {redis} | {} × {} ({}) | {} | {} / {} | {} / {} / {} | {} | {} / {} / {} / {} | {} |",
            f(&l["name"]),
            f(&d["gateways"]),
            f(&d["ai_services"]),
            f(&l["chats"]),
            f(&l["rate_per_chat"]),
            f(&l["tokens_per_chat"]),
            f(&l["offered_tokens_per_s"]),
            f(&l["delivered_tokens_per_s_steady"]),
            f(&l["delivered_tokens_per_s_overall"]),
            f(&ls["p50_ms"]),
            f(&ls["p99_ms"]),
            f(&ls["max_ms"]),
            f(&l["latency"]["p99_ms"]),
            f(&l["completed"]),
            f(&l["failures"]),
            f(&l["seq_gaps"]),
            f(&l["error_frames"]),
            if l["carried"].as_bool() == Some(true) { "yes" } else { "no" },
        );
    }

    let _ = writeln!(
        md,
        "\n## CPU per role\n\nµs of CPU per delivered token, summed over the role's processes (CPU over the wave, from /proc, divided by the tokens the load generator received in it).\n"
    );
    let mut header = "| role |".to_string();
    let mut rule = "|---|".to_string();
    for l in &layouts {
        let _ = write!(header, " {} µs/token (CPU %) |", f(&l["name"]));
        rule.push_str("---|");
    }
    let ratio = layouts.len() == 2;
    if ratio {
        let _ = write!(
            header,
            " {} ÷ {} |",
            f(&layouts[1]["name"]),
            f(&layouts[0]["name"])
        );
        rule.push_str("---|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    let mut role_names: Vec<String> = Vec::new();
    for l in &layouts {
        for k in l["roles"].as_object().into_iter().flat_map(|o| o.keys()) {
            if !role_names.contains(k) {
                role_names.push(k.clone());
            }
        }
    }
    let order = ["gateway", "ai-service", "redis", "loadgen"];
    role_names.sort_by_key(|r| order.iter().position(|o| o == r).unwrap_or(order.len()));
    let cell = |us: &Value, pct: &Value| format!("{} ({} %)", f(us), f(pct));
    let mut rows: Vec<(String, Vec<Value>, Vec<Value>)> = role_names
        .iter()
        .map(|r| {
            (
                r.clone(),
                layouts
                    .iter()
                    .map(|l| l["roles"][r]["us_per_token"].clone())
                    .collect(),
                layouts
                    .iter()
                    .map(|l| l["roles"][r]["cpu_percent"].clone())
                    .collect(),
            )
        })
        .collect();
    rows.push((
        "all processes".into(),
        layouts
            .iter()
            .map(|l| l["total_us_per_token"].clone())
            .collect(),
        layouts
            .iter()
            .map(|l| l["total_cpu_percent"].clone())
            .collect(),
    ));
    for (name, us, pct) in rows {
        let mut line = format!("| {name} |");
        for (u, p) in us.iter().zip(&pct) {
            let _ = write!(line, " {} |", cell(u, p));
        }
        if ratio {
            let r = match (us[0].as_f64(), us[1].as_f64()) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a),
                _ => "–".into(),
            };
            let _ = write!(line, " {r} |");
        }
        let _ = writeln!(md, "{line}");
    }

    let _ = writeln!(md, "\n## CPU per process\n");
    let _ = writeln!(
        md,
        "| layout | process | CPU % (100 = one core) | CPU s over the wave | µs CPU per delivered token |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for l in &layouts {
        for p in l["processes"].as_array().into_iter().flatten() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                f(&l["name"]),
                f(&p["name"]),
                f(&p["cpu_percent"]),
                f(&p["cpu_s"]),
                f(&p["us_per_token"]),
            );
        }
    }

    let _ = writeln!(
        md,
        "\n## Redis per shard\n\nCommands counted by each shard's `INFO commandstats` (reset just before the wave; it also counts the wave's connections and its end). \"Redis-timed\" is the time Redis's own clock gives its commands; the CPU column is the process's, from /proc.\n"
    );
    let _ = writeln!(
        md,
        "| layout | shard | CPU % | share of Redis CPU | µs CPU per token | calls | share of calls | calls per token | Redis-timed ms | keys / used_memory MiB after | main commands (calls) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for l in &layouts {
        for s in l["shards"].as_array().into_iter().flatten() {
            let mut cmds: Vec<(String, u64)> = s["commands"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v["calls"].as_u64().unwrap_or(0)))
                .collect();
            cmds.sort_by_key(|c| std::cmp::Reverse(c.1));
            let keys_and_memory = format!(
                "{} / {}",
                f(&s["keys_after"]),
                s["used_memory_after"]
                    .as_f64()
                    .map_or("–".into(), |b| format!("{:.1}", b / 1_048_576.0))
            );
            let main: Vec<String> = cmds
                .iter()
                .take(4)
                .map(|(k, n)| format!("{k} {}", group(*n)))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f(&l["name"]),
                f(&s["name"]),
                f(&s["cpu_percent"]),
                f(&s["share_of_redis_cpu"]),
                f(&s["us_per_token"]),
                f(&s["calls"]),
                f(&s["share_of_calls"]),
                f(&s["calls_per_token"]),
                s["usec"]
                    .as_f64()
                    .map_or("–".into(), |u| format!("{:.1}", u / 1000.0)),
                keys_and_memory,
                main.join(", "),
            );
        }
    }

    let _ = writeln!(
        md,
        "\n## Kernel TCP memory\n\nThe largest `TCP: inuse … mem …` of `/proc/net/sockstat` sampled every 0.5 s during the wave (loopback: both ends of every connection, the load generator's included; `mem` is in pages of 4 KiB).\n"
    );
    let _ = writeln!(
        md,
        "| layout | TCP sockets in use (max) | TCP buffer pages (max) | KiB |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    for l in &layouts {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            f(&l["name"]),
            f(&l["tcp_inuse_max"]),
            f(&l["tcp_mem_pages_max"]),
            l["tcp_mem_pages_max"]
                .as_u64()
                .map_or("–".into(), |p| group(p * 4)),
        );
    }
    md
}

/// Reads every layout's folder, writes the JSON and the Markdown.
pub fn write(
    layouts: &[(String, PathBuf)],
    json_out: &Path,
    md_out: &Path,
    command: &str,
) -> Result<(), String> {
    if layouts.is_empty() {
        return Err("no --layout given".into());
    }
    let derived = layouts
        .iter()
        .map(|(name, dir)| layout(name, dir))
        .collect::<Result<Vec<_>, _>>()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let doc = json!({
        "schema": "streamline-scale/1",
        "command": command,
        "generated_unix_s": now,
        "date": humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(now)).to_string(),
        "json": json_out.display().to_string(),
        "p99_limit_ms": P99_LIMIT_MS,
        "layouts": derived,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(json_out, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", json_out.display()))?;
    std::fs::write(md_out, markdown(&doc))
        .map_err(|e| format!("cannot write {}: {e}", md_out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_drops_a_numeric_suffix_only() {
        assert_eq!(role("gateway-2"), "gateway");
        assert_eq!(role("ai-service-1"), "ai-service");
        assert_eq!(role("ai-service"), "ai-service");
        assert_eq!(role("loadgen"), "loadgen");
    }

    #[test]
    fn sockstat_takes_the_largest_sample() {
        let text = "sockets: used 10\nTCP: inuse 5 orphan 0 tw 1 alloc 7 mem 3\n\
                    TCP: inuse 900 orphan 0 tw 1 alloc 910 mem 120\nTCP: inuse 4 orphan 0 tw 1 alloc 7 mem 2\n";
        assert_eq!(sockstat_max(text), (Some(120), Some(900)));
    }
}
