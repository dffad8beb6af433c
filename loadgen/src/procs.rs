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

/// The whole machine's CPU time from the first line of `/proc/stat`, in clock ticks: busy
/// (everything but idle and iowait) and steal (taken by the hypervisor).
#[derive(Debug, Clone, Copy)]
pub struct MachineTicks {
    busy: u64,
    steal: u64,
}

pub fn machine_ticks() -> Option<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    Some(MachineTicks {
        busy: at(0) + at(1) + at(2) + at(5) + at(6),
        steal: at(7),
    })
}

/// CPU usage of several processes over a window: start with [`CpuWindow::start`], read with
/// [`CpuWindow::finish`]. 100% = one core busy. It also reads the whole machine, so that a
/// run disturbed by something outside the watched processes says so ([`CpuWindow::machine`]).
pub struct CpuWindow {
    started: Instant,
    ticks: Vec<(Watched, Option<u64>)>,
    machine: Option<MachineTicks>,
}

impl CpuWindow {
    pub fn start(procs: &[Watched]) -> CpuWindow {
        CpuWindow {
            started: Instant::now(),
            ticks: procs
                .iter()
                .map(|p| (p.clone(), cpu_ticks(p.pid)))
                .collect(),
            machine: machine_ticks(),
        }
    }

    /// The machine over the window: `busy_percent` (every process), `outside_percent` (busy
    /// minus the watched processes: other programs on the machine), `steal_percent`. 100% = one
    /// core. Call right after [`CpuWindow::finish`], whose process readings it subtracts.
    pub fn machine(&self, finished: &Value) -> Value {
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let hz = clk_tck() as f64;
        let (Some(b), Some(a)) = (self.machine, machine_ticks()) else {
            return Value::Null;
        };
        let pct = |t: u64| t as f64 / hz / secs * 100.0;
        let busy = pct(a.busy.saturating_sub(b.busy));
        let watched: f64 = self
            .ticks
            .iter()
            .filter_map(|(p, _)| finished[p.name.as_str()].as_f64())
            .sum();
        json!({
            "busy_percent": round1(busy),
            "outside_percent": round1((busy - watched).max(0.0)),
            "steal_percent": round1(pct(a.steal.saturating_sub(b.steal))),
        })
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

/// µs of CPU per unit of work (a delivered token) of each process in `cpu` (a
/// [`CpuWindow::finish`] reading): its CPU time over the window divided by `units`.
pub fn cpu_us_per(cpu: &Value, units: u64) -> Value {
    let (Some(o), Some(secs)) = (cpu.as_object(), cpu["window_s"].as_f64()) else {
        return Value::Null;
    };
    if units == 0 {
        return Value::Null;
    }
    let mut out = serde_json::Map::new();
    let mut total = 0.0;
    for (name, pct) in o.iter().filter(|(k, _)| *k != "window_s") {
        if let Some(pct) = pct.as_f64() {
            let us = pct / 100.0 * secs * 1e6 / units as f64;
            total += us;
            out.insert(name.clone(), json!(round1(us)));
        }
    }
    out.insert("total".into(), json!(round1(total)));
    Value::Object(out)
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `num ÷ den` to 3 decimals, when both were measured and `den` is positive: every "ratio to"
/// a scenario reports (S3 to PUBLISH and to its floor, S6/S7 beside ÷ alone, S8 to S3).
pub fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => Some(round3(n / d)),
        _ => None,
    }
}

/// The 1-minute load average.
pub fn loadavg() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
