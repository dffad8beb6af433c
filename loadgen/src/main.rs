//! `loadgen`: a load generator and benchmark driver for the streamline stack.
//!
//! `loadgen run` speaks protocol v1 over many WebSocket connections (the test kit's client
//! with small tungstenite buffers, connections spread over loopback source addresses), runs
//! the scenarios S1–S8 (and, when asked, the soak) and writes one JSON document.
//! `loadgen report` turns such a document into `BENCHMARKS.md`; `loadgen soak-report` renders
//! a soak's section alone; `loadgen scale-report` renders bench/scale.sh's measurement;
//! `loadgen floor-server` is the floor S3 is compared with (bench/run.sh starts it).

mod commandstats;
mod floor;
mod growth;
mod procs;
mod redis_info;
mod report;
mod scale_report;
mod scenarios;
mod soak_report;
mod table;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::procs::Watched;
use test_support::client::{Buffers, Dialer, Nagle, SourceAddress};

use crate::scenarios::{Ctx, Search, Soak, WaveSpec, S1, S3, S4, S5, S6, S7};

#[derive(Parser)]
#[command(name = "loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
enum Cmd {
    /// Run scenarios against a running gateway + ai-service and write JSON.
    Run(RunArgs),
    /// Render BENCHMARKS.md from a results JSON file.
    Report(ReportArgs),
    /// Render the soak's Markdown section (to paste into BENCHMARKS.md) from a results JSON
    /// file that holds a soak.
    SoakReport(SoakReportArgs),
    /// Render bench/scale.sh's measurement (one folder per layout) as JSON and Markdown.
    ScaleReport(ScaleReportArgs),
    /// Serve S3's floor: a WebSocket server that answers a wave's chats with paced chunk
    /// frames and does nothing else per token (no Redis, no producer); S3 searches it too.
    FloorServer(FloorArgs),
}

#[derive(clap::Args)]
struct FloorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:23990")]
    addr: std::net::SocketAddr,
    /// Runtime worker threads (the gateway runs one actix worker per core: 2 here).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Debug)]
enum Scenario {
    S1,
    S2,
    S3,
    S4,
    S5,
    S6,
    /// S3 against the second stack (`PROVIDER=openai` and the fake-openai process).
    S8,
    /// Lossless catch-up of a 2 KB/s reader (`caps=merge`) beside a wave.
    S7,
    /// Memory soak (issue 20); never part of the default list.
    Soak,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The gateway's WebSocket URL (an IP address, not a host name). Repeatable: connections
    /// go to the gateways round robin (connection n to the (n mod count)-th URL).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    gateway_url: Vec<String>,
    /// The ai-service's base URL (for GET /v1/sessions/{sid}/messages/{mid}).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    ai_url: String,
    /// Processes whose CPU (and, for `gateway`, RSS) is measured: NAME=PID, repeatable.
    #[arg(long = "pid", value_parser = parse_pid)]
    pids: Vec<(String, u32)>,
    /// Port of the Redis the stack uses (for redis-benchmark in S3).
    #[arg(long)]
    redis_port: Option<u16>,
    #[arg(long, default_value = "redis-benchmark")]
    redis_benchmark: String,
    /// Scenarios to run (repeatable or comma-separated); default: S1–S8, in the order S1, S5,
    /// S2, S6, S7, S4, S3, S8 (quietest first, saturation last; S8 after S3 so that its ratio
    /// to S3 is of the same run). `soak` runs only when named.
    #[arg(long = "scenario", value_delimiter = ',')]
    scenarios: Vec<Scenario>,
    /// A handful of connections, every scenario, a few seconds in all (for CI).
    #[arg(long)]
    smoke: bool,
    /// Where to write the JSON (stdout when absent).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Recorded in the JSON (the command that produced it).
    #[arg(long, default_value = "")]
    command: String,
    /// Concurrent WebSocket handshakes.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Connections per loopback source address (127.0.0.1, .2, …); the ephemeral port range
    /// of one address holds ~28,000.
    #[arg(long, default_value_t = 28_000)]
    conns_per_source_ip: usize,
    /// A JWT for the gateway (sent as the `token` query parameter), if it requires one.
    #[arg(long, env = "LOADGEN_TOKEN")]
    token: Option<String>,
    /// tungstenite read buffer per connection (bytes).
    #[arg(long, default_value_t = 4096)]
    read_buffer: usize,
    /// Runtime worker threads of the load generator. One by default: it shares the machine's
    /// cores with everything it measures, and a second thread cost more in wake-ups and
    /// cross-core traffic than it gave (1,456 chats × 50 tokens/s: steady p99 51 ms with one
    /// thread, 59 ms with two, three runs each). Every chunk's latency still includes the
    /// time it waited for this thread.
    #[arg(long, default_value_t = 1)]
    threads: usize,

    /// Waves (S2, S3, S6): chats start spread evenly over this many seconds, after all their
    /// connections are open.
    #[arg(long, default_value_t = 1.0)]
    start_ramp_secs: f64,
    /// S1: idle connections.
    #[arg(long, default_value_t = 19_000)]
    s1_conns: usize,
    /// S1: seconds the connections are held (CPU is measured over this window).
    #[arg(long, default_value_t = 30.0)]
    s1_hold_secs: f64,
    /// S2: concurrent chats (`!demo tokens=200 rate=25`); the figure is 1,000.
    #[arg(long, default_value_t = 1000)]
    s2_chats: usize,
    #[arg(long, default_value_t = 200)]
    s2_tokens: u64,
    #[arg(long, default_value_t = 25.0)]
    s2_rate: f64,
    /// S3: chats of the first step; each step multiplies by --s3-factor.
    #[arg(long, default_value_t = 200)]
    s3_start: usize,
    #[arg(long, default_value_t = 1.5)]
    s3_factor: f64,
    #[arg(long, default_value_t = 12_000)]
    s3_max: usize,
    /// S3: seconds of streaming per step (tokens per chat = rate × this).
    #[arg(long, default_value_t = 8.0)]
    s3_step_secs: f64,
    #[arg(long, default_value_t = 50.0)]
    s3_rate: f64,
    #[arg(long, default_value_t = 50.0)]
    s3_p99_limit_ms: f64,
    /// S3: bisection steps between the last passing and the first failing step.
    #[arg(long, default_value_t = 3)]
    s3_refine_steps: usize,
    /// S3's floor: the WebSocket URL of a `loadgen floor-server` (bench/run.sh starts one).
    /// After S3, the same search runs against it, with the same client: the most any gateway
    /// could deliver on this machine within the p99 limit.
    #[arg(long)]
    s3_floor_url: Option<String>,
    /// S3's floor: processes whose CPU is measured in its steps (floor-server): NAME=PID,
    /// repeatable; loadgen itself is always added.
    #[arg(long = "s3-floor-pid", value_parser = parse_pid)]
    s3_floor_pids: Vec<(String, u32)>,
    /// S3: requests per redis-benchmark run.
    #[arg(long, default_value_t = 200_000)]
    s3_bench_requests: u64,
    /// S8: the WebSocket URL of the second gateway, whose ai-service runs `PROVIDER=openai`
    /// against a fake-openai process (bench/run.sh starts them). Without it S8 is skipped.
    /// S8 steps as S3 does (the --s3-* search flags), so the two compare chat count by chat
    /// count.
    #[arg(long)]
    s8_gateway_url: Option<String>,
    /// S8: the base URL of that gateway's ai-service (given with --s8-gateway-url, or neither).
    #[arg(long)]
    s8_ai_url: Option<String>,
    /// S8: processes whose CPU is measured in S8 (gateway, ai-service, redis, fake-openai):
    /// NAME=PID, repeatable; loadgen itself is always added.
    #[arg(long = "s8-pid", value_parser = parse_pid)]
    s8_pids: Vec<(String, u32)>,
    /// S4: chats cancelled.
    #[arg(long, default_value_t = 1000)]
    s4_chats: usize,
    /// S4: the cancel is sent at a uniformly random moment this long after `ack`, at most.
    #[arg(long, default_value_t = 3000)]
    s4_max_delay_ms: u64,
    #[arg(long, default_value_t = 5)]
    s4_duplicates: usize,
    /// S4: each chat is `!demo tokens=S4_TOKENS rate=S4_RATE` (1,000 × 10 tokens/s keeps the
    /// offered load under S3's capacity, so the cancels are not measured behind a saturated
    /// stack).
    #[arg(long, default_value_t = 1000)]
    s4_tokens: u64,
    #[arg(long, default_value_t = 10.0)]
    s4_rate: f64,
    /// S5: tokens of the answer replayed.
    #[arg(long, default_value_t = 5000)]
    s5_tokens: u64,
    #[arg(long, default_value_t = 5)]
    s5_reps: usize,
    /// S5: also replay one answer generated at this many tokens/s (one log entry per token);
    /// 0 skips it.
    #[arg(long, default_value_t = 500.0)]
    s5_paced_rate: f64,
    /// S6: chats in each wave.
    #[arg(long, default_value_t = 500)]
    s6_chats: usize,
    /// S6: tokens of the slow client's chat (rate=0): enough text (~10 MB) to overflow
    /// SEND_QUEUE_BYTES (1 MiB) plus the socket buffers (which grow to a few MB on loopback).
    #[arg(long, default_value_t = 1_500_000)]
    s6_slow_tokens: u64,
    /// S6 control experiment: the client with the long fast chat reads everything.
    #[arg(long)]
    s6_control_reader: bool,
    /// S6: alternating (alone, beside) pairs; the ratio is of the two medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    s6_rounds: u64,
    /// The gateway's `/metrics` on its admin port (S7 polls the send-queue gauge there).
    #[arg(long)]
    gateway_metrics_url: Option<String>,
    /// S7: chats in each of the two waves (`!demo tokens=S2_TOKENS rate=S2_RATE`).
    #[arg(long, default_value_t = 500)]
    s7_chats: usize,
    /// S7: the catch-up client's answer: `!demo tokens=S7_SLOW_TOKENS rate=S7_SLOW_RATE`.
    #[arg(long, default_value_t = 9000)]
    s7_slow_tokens: u64,
    #[arg(long, default_value_t = 150.0)]
    s7_slow_rate: f64,
    /// S7: what the catch-up client reads off its socket, bytes per second (in 50 ms slices).
    #[arg(long, default_value_t = 2000)]
    s7_read_bytes_per_sec: u64,
    /// S7: the catch-up client's SO_RCVBUF (bytes; the kernel doubles it, to 2,304 at least):
    /// what its kernel holds unread is lag too, 0.5 ms a byte at 2 KB/s.
    #[arg(long, default_value_t = 1024)]
    s7_rcvbuf: u32,
    /// S7: seconds the catch-up client streams before the wave beside it starts.
    #[arg(long, default_value_t = 10.0)]
    s7_lead_secs: f64,
    /// S7: the gateway's SEND_QUEUE_BYTES (the bound its queue must stay under).
    #[arg(long, default_value_t = 1024 * 1024)]
    s7_send_queue_bytes: u64,

    /// Soak: sockets, each chatting back to back.
    #[arg(long, default_value_t = 200)]
    soak_sockets: usize,
    /// Soak: how long it runs (`90s`, `30m`, `2h`).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    soak_duration: Duration,
    /// Soak: time between two samples of RSS and Redis memory.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    soak_sample_every: Duration,
    /// Soak: samples before this are left out of the growth; default: the shorter of 20 % of
    /// --soak-duration and 2 minutes.
    #[arg(long, value_parser = humantime::parse_duration)]
    soak_warmup: Option<Duration>,
    /// Soak: the prompt of every chat (short answers keep the chat count high); `\n` is a line
    /// break.
    #[arg(long, default_value = "!demo tokens=20 rate=200\\nsoak")]
    soak_prompt: String,
    /// Soak: every N-th chat (over all sockets) is cancelled after its first chunk; 0: none.
    #[arg(long, default_value_t = 3)]
    soak_cancel_every: u64,
    /// Soak: the ai-service's STREAM_TTL, recorded in the results next to the Redis verdict
    /// (loadgen cannot read it; bench/soak.sh passes it).
    #[arg(long)]
    soak_stream_ttl: Option<String>,
}

/// A flag value clap accepted but a scenario cannot use.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error("--soak-sockets must be at least 1")]
    SoakSockets,
    #[error("--soak-duration and --soak-sample-every must be longer than 0")]
    SoakTimes,
    #[error("--s3-floor-pid needs --s3-floor-url (the floor server it watches)")]
    FloorPids,
    #[error("--s8-gateway-url and --s8-ai-url go together (S8's second stack needs both)")]
    S8Urls,
    #[error("--s7-slow-rate must be a finite number above 0 and --s7-lead-secs one of 0 or more")]
    S7Times,
    #[error("--s7-read-bytes-per-sec must be at least 1")]
    S7Read,
}

impl RunArgs {
    fn validate(&self) -> Result<(), ArgError> {
        if self.soak_sockets == 0 {
            return Err(ArgError::SoakSockets);
        }
        if self.soak_duration.is_zero() || self.soak_sample_every.is_zero() {
            return Err(ArgError::SoakTimes);
        }
        if self.s8_gateway_url.is_some() != self.s8_ai_url.is_some() {
            return Err(ArgError::S8Urls);
        }
        if self.s3_floor_url.is_none() && !self.s3_floor_pids.is_empty() {
            return Err(ArgError::FloorPids);
        }
        let rate_ok = self.s7_slow_rate.is_finite() && self.s7_slow_rate > 0.0;
        let lead_ok = self.s7_lead_secs.is_finite() && self.s7_lead_secs >= 0.0;
        if !(rate_ok && lead_ok) {
            return Err(ArgError::S7Times);
        }
        if self.s7_read_bytes_per_sec == 0 {
            return Err(ArgError::S7Read);
        }
        Ok(())
    }

    /// The capacity search of S3 and S8 (the --s3-* flags; a few tiny steps with --smoke).
    fn capacity_search(&self, ramp: Duration) -> Search {
        if self.smoke {
            Search {
                start: 2,
                factor: 2.0,
                max: 4,
                step_secs: 0.5,
                rate: self.s3_rate,
                p99_limit_ms: self.s3_p99_limit_ms,
                refine_steps: 0,
                ramp: Duration::from_millis(100),
            }
        } else {
            Search {
                start: self.s3_start,
                factor: self.s3_factor,
                max: self.s3_max,
                step_secs: self.s3_step_secs,
                rate: self.s3_rate,
                p99_limit_ms: self.s3_p99_limit_ms,
                refine_steps: self.s3_refine_steps,
                ramp,
            }
        }
    }

    /// The soak's parameters (`\n` in the prompt given on a command line is a line break).
    fn soak(&self) -> Soak {
        let warmup = |d: Duration| {
            self.soak_warmup
                .unwrap_or_else(|| d.mul_f64(0.2).min(Duration::from_secs(120)))
        };
        let prompt = self.soak_prompt.replace("\\n", "\n");
        if self.smoke {
            Soak {
                sockets: 5,
                duration: Duration::from_secs(3),
                sample_every: Duration::from_millis(500),
                warmup: Duration::from_secs(1),
                prompt,
                cancel_every: self.soak_cancel_every,
                stream_ttl: self.soak_stream_ttl.clone(),
            }
        } else {
            Soak {
                sockets: self.soak_sockets,
                duration: self.soak_duration,
                sample_every: self.soak_sample_every,
                warmup: warmup(self.soak_duration),
                prompt,
                cancel_every: self.soak_cancel_every,
                stream_ttl: self.soak_stream_ttl.clone(),
            }
        }
    }
}

#[derive(clap::Args)]
struct SoakReportArgs {
    /// Results JSON written by `loadgen run --scenario soak`.
    #[arg(long)]
    input: PathBuf,
    /// Markdown file to write (the section alone).
    #[arg(long)]
    output: PathBuf,
}

#[derive(clap::Args)]
struct ScaleReportArgs {
    /// A layout measured: NAME=DIR (the folder bench/scale.sh wrote), repeatable, in order.
    #[arg(long = "layout", value_parser = parse_layout, required = true)]
    layouts: Vec<(String, PathBuf)>,
    /// The JSON to write (bench/results/scale-<stamp>.json).
    #[arg(long)]
    output_json: PathBuf,
    /// The Markdown to write (bench/results/scale-<stamp>.md).
    #[arg(long)]
    output_md: PathBuf,
    /// Recorded in both (the command that produced the measurement).
    #[arg(long, default_value = "")]
    command: String,
}

fn parse_layout(s: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = s.split_once('=').ok_or("expected NAME=DIR")?;
    if name.is_empty() || dir.is_empty() {
        return Err("expected NAME=DIR".into());
    }
    Ok((name.to_string(), PathBuf::from(dir)))
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Results JSON written by `loadgen run`.
    #[arg(long)]
    input: PathBuf,
    /// Markdown file to write.
    #[arg(long, default_value = "BENCHMARKS.md")]
    output: PathBuf,
    /// Extra Markdown appended verbatim (analysis notes), if the file exists.
    #[arg(long)]
    notes: Option<PathBuf>,
}

fn parse_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("expected NAME=PID")?;
    Ok((name.to_string(), pid.parse().map_err(|e| format!("{e}"))?))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Report(a) => match report::write(&a.input, &a.output, a.notes.as_deref()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen report: {e}");
                std::process::ExitCode::from(1)
            }
        },
        Cmd::SoakReport(a) => match soak_report::write(&a.input, &a.output) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen soak-report: {e}");
                std::process::ExitCode::from(1)
            }
        },
        Cmd::ScaleReport(a) => {
            match scale_report::write(&a.layouts, &a.output_json, &a.output_md, &a.command) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("loadgen scale-report: {e}");
                    std::process::ExitCode::from(1)
                }
            }
        }
        Cmd::FloorServer(a) => match floor::serve(a.addr, usize::from(a.workers)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen floor-server: {e}");
                std::process::ExitCode::from(2)
            }
        },
        Cmd::Run(a) => {
            if let Err(e) = a.validate() {
                eprintln!("loadgen: {e}");
                return std::process::ExitCode::from(2);
            }
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(a.threads.max(1))
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("loadgen: cannot start the runtime: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            match rt.block_on(run(a)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("loadgen: {e}");
                    std::process::ExitCode::from(1)
                }
            }
        }
    }
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: Option<u64> = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok();
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_gib": mem_kib.map(|k| procs::round1(k as f64 / 1024.0 / 1024.0)),
        "kernel": kernel,
    })
}

fn fd_limit() -> Option<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    Some(
        line.split_whitespace()
            .skip(3)
            .take(2)
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// A dialer for one gateway with loadgen's knobs: small buffers, connections spread over
/// loopback source addresses, `TCP_NODELAY`, the token.
fn loadgen_dialer(a: &RunArgs, url: &str) -> Result<Dialer, String> {
    let mut dialer = Dialer::new(url).map_err(|e| e.to_string())?;
    dialer.token = a.token.clone();
    dialer.buffers = Buffers::Small {
        read_buffer: a.read_buffer,
    };
    dialer.source = SourceAddress::SpreadOverLoopback {
        per_address: a.conns_per_source_ip.max(1),
    };
    dialer.nagle = Nagle::Off;
    Ok(dialer)
}

/// The context of one stack under test: its gateways (connection n goes to the n-th modulo
/// their number), its ai-service, the processes watched (loadgen itself is added).
fn stack_ctx(
    a: &RunArgs,
    gateway_urls: &[String],
    ai_url: &str,
    pids: &[(String, u32)],
) -> Result<Ctx, String> {
    let mut dialers = gateway_urls
        .iter()
        .map(|url| loadgen_dialer(a, url))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let dialer = dialers.next().ok_or("--gateway-url: none given")?;
    let more_dialers: Vec<Dialer> = dialers.collect();
    let mut procs: Vec<Watched> = pids
        .iter()
        .map(|(name, pid)| Watched {
            name: name.clone(),
            pid: *pid,
        })
        .collect();
    procs.push(Watched {
        name: "loadgen".into(),
        pid: std::process::id(),
    });
    let gateway_pid = procs.iter().find(|p| p.name == "gateway").map(|p| p.pid);
    Ok(Ctx {
        dialer,
        more_dialers,
        ai_url: ai_url.trim_end_matches('/').to_string(),
        procs,
        gateway_pid,
        redis_port: a.redis_port,
        redis_benchmark: a.redis_benchmark.clone(),
        connect_limit: Arc::new(tokio::sync::Semaphore::new(a.connect_concurrency.max(1))),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| e.to_string())?,
        next_idx: AtomicUsize::new(0),
    })
}

async fn run(a: RunArgs) -> Result<(), String> {
    let ctx = Arc::new(stack_ctx(&a, &a.gateway_url, &a.ai_url, &a.pids)?);
    let ctx8 = match (&a.s8_gateway_url, &a.s8_ai_url) {
        (Some(gw), Some(ai)) => Some(Arc::new(stack_ctx(
            &a,
            std::slice::from_ref(gw),
            ai,
            &a.s8_pids,
        )?)),
        _ => None,
    };
    let floor = match &a.s3_floor_url {
        // The floor serves no HTTP API: the wave clients never ask for one.
        Some(url) => Some(Arc::new(stack_ctx(
            &a,
            std::slice::from_ref(url),
            "http://127.0.0.1:9",
            &a.s3_floor_pids,
        )?)),
        None => None,
    };
    let mut scenarios = if a.scenarios.is_empty() {
        vec![
            Scenario::S1,
            Scenario::S5,
            Scenario::S2,
            Scenario::S6,
            Scenario::S7,
            Scenario::S4,
            Scenario::S3,
            Scenario::S8,
        ]
    } else {
        a.scenarios.clone()
    };
    scenarios.dedup();
    let smoke = a.smoke;
    let ramp = Duration::from_secs_f64(a.start_ramp_secs);
    let started = std::time::SystemTime::now();
    let load_before = procs::loadavg();
    let mut results = serde_json::Map::new();
    for s in &scenarios {
        let name = format!("{s:?}").to_lowercase();
        eprintln!(
            "loadgen: running {name}{}",
            if smoke { " (smoke)" } else { "" }
        );
        let t = std::time::Instant::now();
        let load = procs::loadavg();
        let mut v = match s {
            Scenario::S1 => {
                let p = if smoke {
                    S1 {
                        conns: 20,
                        hold: Duration::from_millis(1500),
                    }
                } else {
                    S1 {
                        conns: a.s1_conns,
                        hold: Duration::from_secs_f64(a.s1_hold_secs),
                    }
                };
                scenarios::s1_idle(ctx.clone(), p).await
            }
            Scenario::S2 => {
                let spec = if smoke {
                    WaveSpec {
                        chats: 5,
                        tokens: 20,
                        rate: 50.0,
                        ramp: Duration::from_millis(100),
                    }
                } else {
                    WaveSpec {
                        chats: a.s2_chats,
                        tokens: a.s2_tokens,
                        rate: a.s2_rate,
                        ramp,
                    }
                };
                scenarios::s2_steady(ctx.clone(), spec).await
            }
            Scenario::S3 => {
                let p = S3 {
                    search: a.capacity_search(ramp),
                    bench_requests: if smoke { 2000 } else { a.s3_bench_requests },
                    floor: floor.clone(),
                };
                scenarios::s3_capacity(ctx.clone(), p).await
            }
            Scenario::S8 => scenarios::s8_openai(ctx8.clone(), a.capacity_search(ramp)).await,
            Scenario::S4 => {
                let p = if smoke {
                    S4 {
                        chats: 10,
                        tokens: 200,
                        rate: 50.0,
                        max_delay: Duration::from_millis(300),
                        duplicates: a.s4_duplicates,
                        linger: Duration::from_millis(200),
                    }
                } else {
                    S4 {
                        chats: a.s4_chats,
                        tokens: a.s4_tokens,
                        rate: a.s4_rate,
                        max_delay: Duration::from_millis(a.s4_max_delay_ms),
                        duplicates: a.s4_duplicates,
                        linger: Duration::from_millis(500),
                    }
                };
                scenarios::s4_cancel(ctx.clone(), p).await
            }
            Scenario::S5 => {
                let p = if smoke {
                    S5 {
                        tokens: 200,
                        reps: 1,
                        paced_rate: 500.0,
                    }
                } else {
                    S5 {
                        tokens: a.s5_tokens,
                        reps: a.s5_reps,
                        paced_rate: a.s5_paced_rate,
                    }
                };
                scenarios::s5_resume(ctx.clone(), p).await
            }
            Scenario::S6 => {
                let p = if smoke {
                    S6 {
                        spec: WaveSpec {
                            chats: 5,
                            tokens: 20,
                            rate: 50.0,
                            ramp: Duration::from_millis(100),
                        },
                        slow_tokens: 20_000,
                        control_reader: a.s6_control_reader,
                        rounds: 1,
                    }
                } else {
                    S6 {
                        spec: WaveSpec {
                            chats: a.s6_chats,
                            tokens: a.s2_tokens,
                            rate: a.s2_rate,
                            ramp,
                        },
                        slow_tokens: a.s6_slow_tokens,
                        control_reader: a.s6_control_reader,
                        rounds: a.s6_rounds as usize,
                    }
                };
                scenarios::s6_slow(ctx.clone(), p).await
            }
            Scenario::S7 => {
                let (spec, slow_tokens, lead) = if smoke {
                    (
                        WaveSpec {
                            chats: 5,
                            tokens: 20,
                            rate: 50.0,
                            ramp: Duration::from_millis(100),
                        },
                        300,
                        Duration::from_millis(500),
                    )
                } else {
                    (
                        WaveSpec {
                            chats: a.s7_chats,
                            tokens: a.s2_tokens,
                            rate: a.s2_rate,
                            ramp,
                        },
                        a.s7_slow_tokens,
                        Duration::from_secs_f64(a.s7_lead_secs),
                    )
                };
                let p = S7 {
                    spec,
                    slow_tokens,
                    slow_rate: a.s7_slow_rate,
                    read_bytes_per_sec: a.s7_read_bytes_per_sec,
                    read_slice: Duration::from_millis(50),
                    rcvbuf: a.s7_rcvbuf,
                    lead,
                    lag_window: Duration::from_secs(10),
                    metrics_url: a.gateway_metrics_url.clone(),
                    queue_bound: a.s7_send_queue_bytes,
                };
                scenarios::s7_catchup(ctx.clone(), p).await
            }
            Scenario::Soak => scenarios::soak(ctx.clone(), a.soak()).await,
        };
        v["elapsed_s"] = json!(procs::round3(t.elapsed().as_secs_f64()));
        v["loadavg_at_start"] = json!(load);
        eprintln!("loadgen: {name} done in {:.1}s", t.elapsed().as_secs_f64());
        if *s == Scenario::S8 {
            if let Some(s3) = results.get("s3") {
                scenarios::compare_with_s3(&mut v, s3);
            }
        }
        results.insert(name, v);
        // Let sockets close and the services settle between scenarios.
        tokio::time::sleep(Duration::from_millis(if smoke { 200 } else { 2000 })).await;
    }
    let doc = json!({
        "schema": "streamline-bench/1",
        "smoke": smoke,
        "started_unix_s": started.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "duration_s": procs::round3(started.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0)),
        "command": a.command,
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": procs::loadavg(),
        "loadgen_fd_limit": fd_limit(),
        "gateway_url": a.gateway_url.first(),
        "gateway_urls": a.gateway_url,
        "read_buffer_bytes": a.read_buffer,
        "loadgen_threads": a.threads,
        "conns_per_source_ip": a.conns_per_source_ip,
        "connections_opened": ctx.next_idx.load(std::sync::atomic::Ordering::Relaxed)
            + ctx8.as_ref().map_or(0, |c| c.next_idx.load(std::sync::atomic::Ordering::Relaxed)),
        "scenarios": Value::Object(results),
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    match &a.out {
        Some(path) => std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}
