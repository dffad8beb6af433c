//! The benchmark scenarios S1–S6. Each returns a JSON object with its measurements, its
//! parameters, and its target.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::{json, Value};
use shared_proto::{api::MessageView, FinalStatus, ServerFrame};
use tokio::sync::{watch, Semaphore};
use uuid::Uuid;

use crate::procs::{self, round1, round3, CpuWindow, Watched};
use crate::ws::{now_us, tokens_in, Conn, In, Target};

/// Shared by every scenario.
pub struct Ctx {
    pub target: Target,
    pub ai_url: String,
    pub procs: Vec<Watched>,
    pub gateway_pid: Option<u32>,
    pub redis_port: Option<u16>,
    pub redis_benchmark: String,
    pub connect_limit: Arc<Semaphore>,
    pub http: reqwest::Client,
    /// Connection counter over the whole run: picks the loopback source address, so that
    /// sockets in TIME_WAIT from an earlier step never exhaust one address's ports.
    pub next_idx: AtomicUsize,
}

impl Ctx {
    pub async fn connect(&self, query: Option<&str>, rcvbuf: Option<u32>) -> Result<Conn, String> {
        let _permit = self
            .connect_limit
            .acquire()
            .await
            .map_err(|e| e.to_string())?;
        let idx = self.next_idx.fetch_add(1, Ordering::Relaxed);
        Conn::connect(&self.target, idx, query, rcvbuf).await
    }

    pub async fn message(&self, session_id: Uuid, message_id: Uuid) -> Result<MessageView, String> {
        let url = format!(
            "{}/v1/sessions/{session_id}/messages/{message_id}",
            self.ai_url
        );
        let resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        resp.json().await.map_err(|e| e.to_string())
    }
}

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds")
}

fn ms(us: u64) -> f64 {
    round3(us as f64 / 1000.0)
}

/// Percentiles of a µs histogram, in ms.
pub fn lat_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0});
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": round3(h.mean() / 1000.0),
    })
}

fn p99_ms(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| ms(h.value_at_quantile(0.99)))
}

fn demo_prompt(tokens: u64, rate: f64) -> String {
    format!("!demo tokens={tokens} rate={rate}\nload test")
}

// ---------------------------------------------------------------------------------------------
// S1: idle connections
// ---------------------------------------------------------------------------------------------

pub struct S1 {
    pub conns: usize,
    pub hold: Duration,
}

pub async fn s1_idle(ctx: Arc<Ctx>, p: S1) -> Value {
    let rss_before = ctx.gateway_pid.and_then(procs::rss_kib);
    let own_rss_before = procs::rss_kib(std::process::id());
    let (stop_tx, stop_rx) = watch::channel(false);
    let connected = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let acks = Arc::new(AtomicU64::new(0));
    let heartbeats = Arc::new(AtomicU64::new(0));
    let unexpected_closes = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(p.conns);
    for _ in 0..p.conns {
        let ctx = ctx.clone();
        let mut stop = stop_rx.clone();
        let (connected, failed, acks, heartbeats, closes, first_error) = (
            connected.clone(),
            failed.clone(),
            acks.clone(),
            heartbeats.clone(),
            unexpected_closes.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = match ctx.connect(None, None).await {
                Ok(c) => c,
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().unwrap().get_or_insert(e);
                    return;
                }
            };
            connected.fetch_add(1, Ordering::Relaxed);
            let interval = conn.heartbeat_interval;
            // Spread the heartbeats over the interval.
            let offset = rand::thread_rng().gen_range(0..interval.as_millis().max(1) as u64);
            let mut next = tokio::time::Instant::now() + Duration::from_millis(offset);
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep_until(next) => {
                        if conn.heartbeat().await.is_err() {
                            closes.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        heartbeats.fetch_add(1, Ordering::Relaxed);
                        next += interval;
                    }
                    f = conn.recv() => match f {
                        In::Frame(ServerFrame::HeartbeatAck {}) => {
                            acks.fetch_add(1, Ordering::Relaxed);
                        }
                        In::Frame(_) | In::Garbage => {}
                        In::Closed(_) => {
                            closes.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }
            conn.close().await;
        }));
    }
    // Wait until every connection is up (or failed).
    let connect_deadline = Instant::now() + Duration::from_secs(600);
    while connected.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < p.conns
        && Instant::now() < connect_deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = ctx.gateway_pid.and_then(procs::rss_kib);
    let cpu = CpuWindow::start(&ctx.procs);
    tokio::time::sleep(p.hold).await;
    let cpu = cpu.finish();
    let rss_after = ctx.gateway_pid.and_then(procs::rss_kib);
    let own_rss_after = procs::rss_kib(std::process::id());
    let n_ok = connected.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let per_conn = |after: Option<u64>| match (rss_before, after) {
        (Some(b), Some(a)) if n_ok > 0 => {
            json!(round3(
                a.saturating_sub(b) as f64 * 1024.0 / n_ok as f64 / 1000.0
            ))
        }
        _ => Value::Null,
    };
    json!({
        "params": {"conns": p.conns, "hold_s": p.hold.as_secs_f64()},
        "connected": n_ok,
        "connect_failures": failed.load(Ordering::Relaxed),
        "first_connect_error": first_error.lock().unwrap().clone(),
        "connect_s": round3(connect_s),
        "gateway_rss_kib": {"before": rss_before, "connected": rss_connected, "after_hold": rss_after},
        "gateway_rss_per_conn_kb": per_conn(rss_after),
        "gateway_rss_per_conn_kb_at_connect": per_conn(rss_connected),
        "loadgen_rss_kib": {"before": own_rss_before, "after_hold": own_rss_after},
        "loadgen_rss_per_conn_kb": match (own_rss_before, own_rss_after) {
            (Some(b), Some(a)) if n_ok > 0 => json!(round3(a.saturating_sub(b) as f64 * 1024.0 / n_ok as f64 / 1000.0)),
            _ => Value::Null,
        },
        "heartbeats_sent": heartbeats.load(Ordering::Relaxed),
        "heartbeat_acks": acks.load(Ordering::Relaxed),
        "unexpected_closes": unexpected_closes.load(Ordering::Relaxed),
        "cpu_percent": cpu,
        "target": {"gateway_rss_per_conn_kb_max": 12.0, "at_conns": 19000},
    })
}

// ---------------------------------------------------------------------------------------------
// Waves of streaming chats (S2, S3, S6)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
pub struct WaveSpec {
    pub chats: usize,
    pub tokens: u64,
    pub rate: f64,
    /// Chat starts are spread evenly over this long, after every connection is open (so the
    /// connection storm is not measured as streaming, and the chats' token schedules are not
    /// all in phase).
    pub ramp: Duration,
}

struct WaveShared {
    n: usize,
    settled: AtomicUsize,
    /// When every chat had its `ack` (or failed): the steady window starts (µs since epoch).
    steady_start_us: AtomicU64,
    /// First `done` of the wave: the steady window ends.
    first_done_us: AtomicU64,
    steady_tokens: AtomicU64,
    /// When the first chat was sent (µs since epoch): time zero of the timeline.
    started_us: AtomicU64,
    timeline: Timeline,
}

/// Where in time a wave's slow chunks are: per [`TIMELINE_BUCKET_MS`] of receipt time since the
/// first chat, the chunks received, how many took over 20 ms and over 50 ms, and the slowest.
/// A p99 over the whole wave says how many; this says when (start burst, steady, finish).
const TIMELINE_BUCKET_MS: u64 = 500;
const TIMELINE_BUCKETS: usize = 240;

struct Timeline {
    /// [chunks, over 20 ms, over 50 ms, max µs] per bucket; the last bucket takes the rest.
    buckets: Vec<[AtomicU64; 4]>,
}

impl Timeline {
    fn new() -> Self {
        Timeline {
            buckets: (0..TIMELINE_BUCKETS).map(|_| Default::default()).collect(),
        }
    }

    fn record(&self, since_start_us: u64, latency_us: u64) {
        let i = ((since_start_us / 1000 / TIMELINE_BUCKET_MS) as usize).min(TIMELINE_BUCKETS - 1);
        let b = &self.buckets[i];
        b[0].fetch_add(1, Ordering::Relaxed);
        if latency_us > 20_000 {
            b[1].fetch_add(1, Ordering::Relaxed);
        }
        if latency_us > 50_000 {
            b[2].fetch_add(1, Ordering::Relaxed);
        }
        b[3].fetch_max(latency_us, Ordering::Relaxed);
    }

    /// Non-empty buckets as `{"t_s", "chunks", "over_20ms", "over_50ms", "max_ms"}`.
    fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b[0].load(Ordering::Relaxed) > 0)
            .map(|(i, b)| {
                json!({
                    "t_s": (i as u64 * TIMELINE_BUCKET_MS) as f64 / 1000.0,
                    "chunks": b[0].load(Ordering::Relaxed),
                    "over_20ms": b[1].load(Ordering::Relaxed),
                    "over_50ms": b[2].load(Ordering::Relaxed),
                    "max_ms": round3(b[3].load(Ordering::Relaxed) as f64 / 1000.0),
                })
            })
            .collect();
        Value::Array(rows)
    }
}

impl WaveShared {
    fn settle(&self) {
        if self.settled.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.steady_start_us.store(now_us(), Ordering::Release);
        }
    }

    fn in_steady(&self, now: u64) -> bool {
        let s = self.steady_start_us.load(Ordering::Acquire);
        s != 0 && now >= s && self.first_done_us.load(Ordering::Acquire) == 0
    }
}

/// One client's results. Latencies are kept as plain samples (µs) and merged into histograms
/// only after every client has finished: a full-range histogram per client is 360 KB, and
/// merging a thousand of them while other clients still stream stalled the loadgen itself
/// (it showed up as a latency tail at the end of every wave).
#[derive(Default)]
struct ClientOut {
    all: Vec<u64>,
    /// Whether each sample of `all` was in the steady window.
    steady: Vec<bool>,
    chunks: u64,
    tokens: u64,
    status: Option<FinalStatus>,
    error_frames: u64,
    seq_gaps: u64,
    failure: Option<String>,
}

async fn wave_client(
    ctx: Arc<Ctx>,
    shared: Arc<WaveShared>,
    spec: WaveSpec,
    i: usize,
    barrier: Arc<tokio::sync::Barrier>,
) -> ClientOut {
    let mut out = ClientOut {
        all: Vec::with_capacity(spec.tokens.min(100_000) as usize),
        steady: Vec::with_capacity(spec.tokens.min(100_000) as usize),
        ..Default::default()
    };
    let mut settled = false;
    let result = async {
        let conn = ctx.connect(None, None).await;
        barrier.wait().await;
        let mut conn = conn?;
        let delay = spec.ramp.mul_f64(i as f64 / spec.chats.max(1) as f64);
        tokio::time::sleep(delay).await;
        let _ =
            shared
                .started_us
                .compare_exchange(0, now_us(), Ordering::AcqRel, Ordering::Relaxed);
        let mid = Uuid::new_v4();
        conn.chat(mid, &demo_prompt(spec.tokens, spec.rate)).await?;
        let mut last_seq = 0u64;
        loop {
            let f = tokio::time::timeout(Duration::from_secs(60), conn.recv())
                .await
                .map_err(|_| "no frame for 60s".to_string())?;
            match f {
                In::Frame(ServerFrame::Ack { .. }) => {
                    if !settled {
                        settled = true;
                        shared.settle();
                    }
                }
                In::Frame(ServerFrame::Chunk { seq, delta, ts, .. }) => {
                    let now = now_us();
                    let lat = now.saturating_sub(ts.unwrap_or(0) * 1000).max(1);
                    let n = tokens_in(&delta);
                    out.all.push(lat);
                    let t0 = shared.started_us.load(Ordering::Acquire);
                    shared.timeline.record(now.saturating_sub(t0), lat);
                    let steady = shared.in_steady(now);
                    out.steady.push(steady);
                    if steady {
                        shared.steady_tokens.fetch_add(n, Ordering::Relaxed);
                    }
                    if seq != last_seq + 1 {
                        out.seq_gaps += 1;
                    }
                    last_seq = seq;
                    out.chunks += 1;
                    out.tokens += n;
                }
                In::Frame(ServerFrame::Done { status, .. }) => {
                    let _ = shared.first_done_us.compare_exchange(
                        0,
                        now_us(),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    out.status = Some(status);
                    break;
                }
                In::Frame(ServerFrame::Error { code, message, .. }) => {
                    out.error_frames += 1;
                    return Err(format!("error frame {code:?}: {message}"));
                }
                In::Frame(_) => {}
                In::Garbage => return Err("unparsable frame".into()),
                In::Closed(code) => return Err(format!("closed ({code:?})")),
            }
        }
        conn.close().await;
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = result {
        out.failure = Some(e);
    }
    if !settled {
        shared.settle();
    }
    out
}

/// Runs `spec.chats` chats at once, each on its own connection; returns the wave's numbers.
async fn wave(ctx: &Arc<Ctx>, spec: WaveSpec) -> (Value, Option<f64>, Option<f64>, Option<f64>) {
    let shared = Arc::new(WaveShared {
        n: spec.chats,
        settled: AtomicUsize::new(0),
        steady_start_us: AtomicU64::new(0),
        first_done_us: AtomicU64::new(0),
        steady_tokens: AtomicU64::new(0),
        started_us: AtomicU64::new(0),
        timeline: Timeline::new(),
    });
    // Every client waits here once its connection is open (or failed), so CPU and wall time
    // below cover the streaming only.
    let barrier = Arc::new(tokio::sync::Barrier::new(spec.chats + 1));
    let connect_started = Instant::now();
    let tasks: Vec<_> = (0..spec.chats)
        .map(|i| {
            tokio::spawn(wave_client(
                ctx.clone(),
                shared.clone(),
                spec,
                i,
                barrier.clone(),
            ))
        })
        .collect();
    barrier.wait().await;
    let connect_s = connect_started.elapsed().as_secs_f64();
    let cpu = CpuWindow::start(&ctx.procs);
    let started = Instant::now();
    // Wait for every client first; merge afterwards (see `ClientOut`).
    let outs = futures_util::future::join_all(tasks).await;
    let wall = started.elapsed().as_secs_f64();
    let mut all = new_hist();
    let mut steady = new_hist();
    let (mut chunks, mut tokens, mut errors, mut gaps, mut completed) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut failures = 0u64;
    let mut first_failure = None;
    for o in outs {
        let Ok(o) = o else {
            failures += 1;
            continue;
        };
        for (lat, in_steady) in o.all.iter().zip(&o.steady) {
            all.saturating_record(*lat);
            if *in_steady {
                steady.saturating_record(*lat);
            }
        }
        chunks += o.chunks;
        tokens += o.tokens;
        errors += o.error_frames;
        gaps += o.seq_gaps;
        if o.status == Some(FinalStatus::Completed) {
            completed += 1;
        }
        if let Some(f) = o.failure {
            failures += 1;
            first_failure.get_or_insert(f);
        }
    }
    let cpu = cpu.finish();
    let s = shared.steady_start_us.load(Ordering::Acquire);
    let e = shared.first_done_us.load(Ordering::Acquire);
    let steady_secs = (s != 0 && e > s).then(|| (e - s) as f64 / 1e6);
    let steady_tps = steady_secs
        .filter(|secs| *secs > 0.2)
        .map(|secs| round1(shared.steady_tokens.load(Ordering::Relaxed) as f64 / secs));
    let v = json!({
        "params": {"chats": spec.chats, "tokens": spec.tokens, "rate": spec.rate,
                   "start_ramp_s": spec.ramp.as_secs_f64()},
        "connect_s": round3(connect_s),
        "completed": completed,
        "failures": failures,
        "first_failure": first_failure,
        "error_frames": errors,
        "seq_gaps": gaps,
        "chunks": chunks,
        "tokens": tokens,
        "wall_s": round3(wall),
        "latency": lat_json(&all),
        "latency_steady": lat_json(&steady),
        "steady_window_s": steady_secs.map(round3),
        "steady_tokens_per_s": steady_tps,
        "offered_tokens_per_s": spec.chats as f64 * spec.rate,
        "overall_tokens_per_s": round1(tokens as f64 / wall.max(1e-6)),
        "cpu_percent": cpu,
        "timeline_bucket_ms": TIMELINE_BUCKET_MS,
        "timeline": shared.timeline.to_json(),
    });
    (v, p99_ms(&all), p99_ms(&steady), steady_tps)
}

pub async fn s2_steady(ctx: Arc<Ctx>, spec: WaveSpec) -> Value {
    let (mut v, _, _, _) = wave(&ctx, spec).await;
    v["target"] = json!({"p99_ms_max": 20.0});
    v
}

// ---------------------------------------------------------------------------------------------
// S3: capacity
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// S4: cancel storm
// ---------------------------------------------------------------------------------------------

pub struct S4 {
    pub chats: usize,
    pub tokens: u64,
    pub rate: f64,
    pub max_delay: Duration,
    pub duplicates: usize,
    pub linger: Duration,
}

#[derive(Default)]
struct CancelOut {
    latency_us: Option<u64>,
    /// How long after `ack` the cancel was sent.
    delay_ms: u64,
    /// When the cancel was sent (µs since the epoch).
    sent_at_us: u64,
    status: Option<FinalStatus>,
    done_before_cancel: bool,
    error_frames: u64,
    chunks_after_cancel_transition: u64,
    frames_after_done: u64,
    cancel_acks: Vec<String>,
    store_match: Option<bool>,
    store_state: Option<String>,
    failure: Option<String>,
}

async fn cancel_client(ctx: Arc<Ctx>, p: Arc<S4>) -> CancelOut {
    let mut out = CancelOut::default();
    let r = async {
        let mut conn = ctx.connect(None, None).await?;
        let mid = Uuid::new_v4();
        conn.chat(mid, &demo_prompt(p.tokens, p.rate)).await?;
        let mut seqs: Vec<u64> = Vec::new();
        let mut done: Option<(u64, FinalStatus)> = None;
        let mut acked = false;
        let mut cancel_at: Option<tokio::time::Instant> = None;
        let mut cancel_sent_us: Option<u64> = None;
        let mut linger_until: Option<tokio::time::Instant> = None;
        let overall = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let wake = match (cancel_sent_us, cancel_at, linger_until) {
                (_, _, Some(l)) => l,
                (None, Some(c), _) => c,
                _ => overall,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {
                    if linger_until.is_some() || wake == overall {
                        break;
                    }
                    // Time to cancel: once, then the duplicates, in one flush.
                    cancel_sent_us = Some(now_us());
                    for _ in 0..=p.duplicates {
                        conn.feed_cancel(mid).await?;
                    }
                    conn.flush().await?;
                    if done.is_some() {
                        out.done_before_cancel = true;
                        linger_until = Some(tokio::time::Instant::now() + p.linger);
                    }
                }
                f = conn.recv() => match f {
                    In::Frame(ServerFrame::Ack { .. }) => {
                        if !acked {
                            acked = true;
                            let d = rand::thread_rng().gen_range(0..=p.max_delay.as_millis() as u64);
                            out.delay_ms = d;
                            cancel_at = Some(tokio::time::Instant::now() + Duration::from_millis(d));
                        }
                    }
                    In::Frame(ServerFrame::Chunk { message_id, seq, .. }) if message_id == mid => {
                        if done.is_some() {
                            out.frames_after_done += 1;
                        }
                        seqs.push(seq);
                    }
                    In::Frame(ServerFrame::Done { message_id, seq, status, .. }) if message_id == mid => {
                        if done.is_some() {
                            out.frames_after_done += 1;
                            continue;
                        }
                        done = Some((seq, status));
                        out.status = Some(status);
                        match cancel_sent_us {
                            Some(t0) => {
                                out.sent_at_us = t0;
                                out.latency_us = Some(now_us().saturating_sub(t0).max(1));
                                linger_until = Some(tokio::time::Instant::now() + p.linger);
                            }
                            None => {
                                // Finished before the cancel was due: cancel now anyway.
                                cancel_at = Some(tokio::time::Instant::now());
                            }
                        }
                    }
                    In::Frame(ServerFrame::CancelAck { status, .. }) => {
                        out.cancel_acks.push(status.as_str().to_string());
                    }
                    In::Frame(ServerFrame::Error { .. }) => out.error_frames += 1,
                    In::Frame(_) => {}
                    In::Garbage => out.error_frames += 1,
                    In::Closed(code) => return Err(format!("closed ({code:?})")),
                }
            }
        }
        let Some((done_seq, _)) = done else {
            return Err("no done frame".to_string());
        };
        out.chunks_after_cancel_transition = seqs.iter().filter(|s| **s > done_seq).count() as u64;
        let session_id = conn.session_id;
        conn.close().await;
        match ctx.message(session_id, mid).await {
            Ok(view) => {
                out.store_match = Some(view.last_seq == done_seq);
                out.store_state = Some(view.state.as_str().to_string());
            }
            Err(e) => return Err(format!("GET message: {e}")),
        }
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = r {
        out.failure = Some(e);
    }
    out
}

pub async fn s4_cancel(ctx: Arc<Ctx>, p: S4) -> Value {
    let p = Arc::new(p);
    let cpu = CpuWindow::start(&ctx.procs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..p.chats)
        .map(|_| tokio::spawn(cancel_client(ctx.clone(), p.clone())))
        .collect();
    let run_start_us = now_us();
    let mut slowest: Vec<(u64, u64)> = Vec::new();
    let mut hist = new_hist();
    let mut early = new_hist();
    let mut late = new_hist();
    let mut statuses = std::collections::BTreeMap::<String, u64>::new();
    let mut acks = std::collections::BTreeMap::<String, u64>::new();
    let (mut errors, mut after, mut after_done, mut mismatch, mut checked) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut failures, mut before_cancel) = (0u64, 0u64);
    let mut first_failure = None;
    for t in tasks {
        let Ok(o) = t.await else {
            failures += 1;
            continue;
        };
        if let Some(l) = o.latency_us {
            slowest.push((l, o.sent_at_us.saturating_sub(run_start_us)));
            hist.saturating_record(l);
            if o.delay_ms < 1000 {
                early.saturating_record(l);
            } else {
                late.saturating_record(l);
            }
        }
        if let Some(s) = o.status {
            *statuses.entry(s.as_str().to_string()).or_default() += 1;
        }
        for a in o.cancel_acks {
            *acks.entry(a).or_default() += 1;
        }
        errors += o.error_frames;
        after += o.chunks_after_cancel_transition;
        after_done += o.frames_after_done;
        before_cancel += o.done_before_cancel as u64;
        if let Some(m) = o.store_match {
            checked += 1;
            mismatch += (!m) as u64;
        }
        if let Some(f) = o.failure {
            failures += 1;
            first_failure.get_or_insert(f);
        }
    }
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    let slowest_json: Vec<Value> = slowest
        .iter()
        .take(15)
        .map(|(l, at)| json!({"latency_ms": ms(*l), "sent_at_s": round3(*at as f64 / 1e6)}))
        .collect();
    json!({
        "params": {"chats": p.chats, "tokens": p.tokens, "rate": p.rate,
                   "cancel_delay_max_ms": p.max_delay.as_millis() as u64,
                   "duplicate_cancels": p.duplicates, "linger_ms": p.linger.as_millis() as u64},
        "cancel_latency": lat_json(&hist),
        "slowest_cancels": slowest_json,
        "cancel_latency_sent_under_1s_after_ack": lat_json(&early),
        "cancel_latency_sent_1s_or_later_after_ack": lat_json(&late),
        "done_status": statuses,
        "cancel_ack_status": acks,
        "error_frames": errors,
        "chunks_after_cancel_transition": after,
        "frames_after_done": after_done,
        "done_before_cancel": before_cancel,
        "store_last_seq_checked": checked,
        "store_last_seq_mismatches": mismatch,
        "failures": failures,
        "first_failure": first_failure,
        "wall_s": round3(started.elapsed().as_secs_f64()),
        "cpu_percent": cpu.finish(),
        "target": {"p99_ms_max": 50.0, "error_frames": 0, "chunks_after_cancel_transition": 0},
    })
}

// ---------------------------------------------------------------------------------------------
// S5: resume
// ---------------------------------------------------------------------------------------------

pub struct S5 {
    pub tokens: u64,
    pub reps: usize,
    /// Also replay one answer generated at this rate (tokens/s; 0: skip), slow enough that
    /// the producer does not coalesce tokens, so the log holds one entry per token.
    pub paced_rate: f64,
}

async fn resume_once(ctx: &Ctx, tokens: u64, rate: f64) -> Result<Value, String> {
    let mut conn = ctx.connect(None, None).await?;
    let mid = Uuid::new_v4();
    let t_gen = Instant::now();
    conn.chat(mid, &demo_prompt(tokens, rate)).await?;
    let (mut live_chunks, mut live_tokens) = (0u64, 0u64);
    let done_seq = loop {
        match tokio::time::timeout(Duration::from_secs(120), conn.recv())
            .await
            .map_err(|_| "generation: no frame for 120s".to_string())?
        {
            In::Frame(ServerFrame::Chunk { delta, .. }) => {
                live_chunks += 1;
                live_tokens += tokens_in(&delta);
            }
            In::Frame(ServerFrame::Done { seq, status, .. }) => {
                if status != FinalStatus::Completed {
                    return Err(format!("generation ended {status:?}"));
                }
                break seq;
            }
            In::Frame(ServerFrame::Error { code, message, .. }) => {
                return Err(format!("error {code:?}: {message}"))
            }
            In::Frame(_) => {}
            In::Garbage => return Err("garbage".into()),
            In::Closed(c) => return Err(format!("closed {c:?}")),
        }
    };
    let gen_ms = t_gen.elapsed().as_secs_f64() * 1000.0;
    let (sid, token) = (conn.session_id, conn.resume_token.clone());
    conn.close().await;

    let t_connect = Instant::now();
    let query = format!("session_id={sid}&resume_token={token}");
    let mut conn = ctx.connect(Some(&query), None).await?;
    let connect_ms = t_connect.elapsed().as_secs_f64() * 1000.0;
    let t0 = Instant::now();
    conn.resume(mid, 0).await?;
    let (mut chunks, mut toks, mut in_order) = (0u64, 0u64, true);
    let mut first_chunk_ms = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), conn.recv())
            .await
            .map_err(|_| "resume: no frame for 60s".to_string())?
        {
            In::Frame(ServerFrame::Chunk { seq, delta, .. }) => {
                first_chunk_ms.get_or_insert(t0.elapsed().as_secs_f64() * 1000.0);
                chunks += 1;
                in_order &= seq == chunks;
                toks += tokens_in(&delta);
            }
            In::Frame(ServerFrame::Done { seq, .. }) => {
                in_order &= seq == chunks;
                break;
            }
            In::Frame(ServerFrame::Error { code, message, .. }) => {
                return Err(format!("resume error {code:?}: {message}"))
            }
            In::Frame(_) => {}
            In::Garbage => return Err("garbage".into()),
            In::Closed(c) => return Err(format!("resume closed {c:?}")),
        }
    }
    let resume_ms = t0.elapsed().as_secs_f64() * 1000.0;
    conn.close().await;
    Ok(json!({
        "generation_ms": round3(gen_ms),
        "live_chunks": live_chunks,
        "live_tokens": live_tokens,
        "done_seq": done_seq,
        "reconnect_ms": round3(connect_ms),
        "resume_first_chunk_ms": first_chunk_ms.map(round3),
        "resume_to_done_ms": round3(resume_ms),
        "resumed_chunks": chunks,
        "resumed_tokens": toks,
        "complete_and_in_order": in_order && chunks == done_seq && toks == tokens,
    }))
}

pub async fn s5_resume(ctx: Arc<Ctx>, p: S5) -> Value {
    let mut runs = Vec::new();
    let mut times = Vec::new();
    let mut failures = Vec::new();
    for _ in 0..p.reps.max(1) {
        match resume_once(&ctx, p.tokens, 0.0).await {
            Ok(v) => {
                if let Some(t) = v["resume_to_done_ms"].as_f64() {
                    times.push(t);
                }
                runs.push(v);
            }
            Err(e) => failures.push(e),
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = (!times.is_empty()).then(|| times[times.len() / 2]);
    let paced = if p.paced_rate > 0.0 {
        match resume_once(&ctx, p.tokens, p.paced_rate).await {
            Ok(v) => v,
            Err(e) => json!({"error": e}),
        }
    } else {
        Value::Null
    };
    json!({
        "params": {"tokens": p.tokens, "reps": p.reps, "paced_rate": p.paced_rate},
        "paced": paced,
        "resume_to_done_ms_median": median,
        "resume_to_done_ms_max": times.last(),
        "runs": runs,
        "failures": failures,
        "target": {"resume_to_done_ms_max": 100.0},
    })
}

// ---------------------------------------------------------------------------------------------
// S6: slow-consumer isolation
// ---------------------------------------------------------------------------------------------

pub struct S6 {
    pub spec: WaveSpec,
    pub slow_tokens: u64,
    /// Control experiment: the "slow" client reads everything (a fast consumer of the same
    /// long fast chat), to separate the cost of generating it from the cost of not reading it.
    pub control_reader: bool,
}

pub async fn s6_slow(ctx: Arc<Ctx>, p: S6) -> Value {
    let (alone, p99_alone, _, _) = wave(&ctx, p.spec).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The slow client: a tiny receive buffer, one long fast chat, and no reads after welcome.
    let mut slow_info = json!({});
    let slow = match ctx.connect(None, Some(4096)).await {
        Ok(mut c) => {
            let mid = Uuid::new_v4();
            match c.chat(mid, &demo_prompt(p.slow_tokens, 0.0)).await {
                Ok(()) => Some((c, mid)),
                Err(e) => {
                    slow_info["error"] = json!(e);
                    None
                }
            }
        }
        Err(e) => {
            slow_info["error"] = json!(e);
            None
        }
    };
    let (slow, reader) = match slow {
        Some((mut conn, mid)) if p.control_reader => {
            let reader = tokio::spawn(async move {
                let mut frames = 0u64;
                loop {
                    match conn.recv().await {
                        In::Closed(code) => {
                            return json!({"reader_frames": frames, "closed_with": code})
                        }
                        In::Frame(ServerFrame::Done {
                            message_id, status, ..
                        }) if message_id == mid => {
                            return json!({"reader_frames": frames + 1, "done": status.as_str()})
                        }
                        _ => frames += 1,
                    }
                }
            });
            (None, Some(reader))
        }
        other => (other, None),
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (beside, p99_beside, _, _) = wave(&ctx, p.spec).await;
    if let Some(r) = reader {
        slow_info["control_reader"] = tokio::time::timeout(Duration::from_secs(30), r)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or(json!("reader did not finish"));
    }
    if let Some((mut conn, mid)) = slow {
        if let Ok(view) = ctx.message(conn.session_id, mid).await {
            slow_info["message_state_after_wave"] = json!(view.state.as_str());
            slow_info["message_last_seq_after_wave"] = json!(view.last_seq);
        }
        // Now read: how did the gateway treat it?
        let mut frames = 0u64;
        let end = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match conn.recv().await {
                    In::Closed(code) => return json!({"closed_with": code}),
                    In::Frame(ServerFrame::Done {
                        message_id,
                        seq,
                        status,
                        ..
                    }) if message_id == mid => {
                        frames += 1;
                        return json!({"done": {"seq": seq, "status": status.as_str()}});
                    }
                    _ => frames += 1,
                }
            }
        })
        .await;
        slow_info["frames_read_afterwards"] = json!(frames);
        slow_info["end"] = match end {
            Ok(v) => v,
            Err(_) => json!("neither closed nor done after 10s of reading"),
        };
        conn.close().await;
    }
    let ratio = match (p99_alone, p99_beside) {
        (Some(a), Some(b)) if a > 0.0 => Some(round3(b / a)),
        _ => None,
    };
    json!({
        "params": {"chats": p.spec.chats, "tokens": p.spec.tokens, "rate": p.spec.rate,
                   "slow_chat_tokens": p.slow_tokens, "slow_rcvbuf": 4096,
                   "control_reader": p.control_reader},
        "alone": alone,
        "beside_slow_consumer": beside,
        "slow_client": slow_info,
        "p99_ms_alone": p99_alone,
        "p99_ms_beside": p99_beside,
        "p99_ratio": ratio,
        "target": {"p99_ratio_max": 1.2},
    })
}
