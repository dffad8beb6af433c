//! /proc readings: resident memory and CPU time of the processes under test.

use std::time::Instant;

use serde_json::{json, Value};

/// A process to watch, by name.
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub fn clk_tck() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// CPU usage of several processes over a window: start with [`CpuWindow::start`], read with
/// [`CpuWindow::finish`]. 100% = one core busy.
pub struct CpuWindow {
    started: Instant,
    ticks: Vec<(Watched, Option<u64>)>,
}

impl CpuWindow {
    pub fn start(procs: &[Watched]) -> CpuWindow {
        CpuWindow {
            started: Instant::now(),
            ticks: procs
                .iter()
                .map(|p| (p.clone(), cpu_ticks(p.pid)))
                .collect(),
        }
    }

    /// `{name: percent_of_one_core}`, plus `window_s`.
    pub fn finish(&self) -> Value {
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let hz = clk_tck() as f64;
        let mut out = serde_json::Map::new();
        for (p, before) in &self.ticks {
            let v = match (before, cpu_ticks(p.pid)) {
                (Some(b), Some(a)) => {
                    json!(round1((a.saturating_sub(*b)) as f64 / hz / secs * 100.0))
                }
                _ => Value::Null,
            };
            out.insert(p.name.clone(), v);
        }
        out.insert("window_s".into(), json!(round1(secs)));
        Value::Object(out)
    }
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The 1-minute load average.
pub fn loadavg() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
