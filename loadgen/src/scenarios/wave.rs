//! Waves of streaming chats (S2, S3, S6): many chats at once, each on its own connection,
//! their starts spread over a ramp; per chunk the latency from the producer's `ts` to receipt,
//! and the steady window (every chat acked → first done) in which throughput is measured.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared_proto::{FinalStatus, ServerFrame};
use test_support::Incoming;
use uuid::Uuid;

use super::timeline::{Timeline, TIMELINE_BUCKET_MS};
use super::{chat, demo_prompt, lat_json, new_hist, now_us, p99_ms, send, tokens_in, Ctx};
use crate::procs::{cpu_us_per, round1, round3, CpuWindow};
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
        send(&mut conn, &chat(mid, &demo_prompt(spec.tokens, spec.rate))).await?;
        let mut last_seq = 0u64;
        loop {
            let f = tokio::time::timeout(Duration::from_secs(60), conn.read())
                .await
                .map_err(|_| "no frame for 60s".to_string())?;
            match f {
                Incoming::Frame(ServerFrame::Ack { .. }) => {
                    if !settled {
                        settled = true;
                        shared.settle();
                    }
                }
                Incoming::Frame(ServerFrame::Chunk { seq, delta, ts, .. }) => {
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
                Incoming::Frame(ServerFrame::Done { status, .. }) => {
                    let _ = shared.first_done_us.compare_exchange(
                        0,
                        now_us(),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    out.status = Some(status);
                    break;
                }
                Incoming::Frame(ServerFrame::Error { code, message, .. }) => {
                    out.error_frames += 1;
                    return Err(format!("error frame {code:?}: {message}"));
                }
                Incoming::Frame(_) => {}
                Incoming::Garbage(_) => return Err("unparsable frame".into()),
                c @ Incoming::Close(_) => return Err(format!("closed ({:?})", c.close_code())),
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
pub(super) async fn wave(
    ctx: &Arc<Ctx>,
    spec: WaveSpec,
) -> (Value, Option<f64>, Option<f64>, Option<f64>) {
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
    let cpu_window = cpu;
    let cpu = cpu_window.finish();
    let machine = cpu_window.machine(&cpu);
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
        "cpu_us_per_token": cpu_us_per(&cpu, tokens),
        "cpu_percent": cpu,
        "machine_cpu": machine,
        "timeline_bucket_ms": TIMELINE_BUCKET_MS,
        "timeline": shared.timeline.to_json(),
    });
    (v, p99_ms(&all), p99_ms(&steady), steady_tps)
}
