//! The soak (issue 20): does memory come back? Hundreds of sockets chat back to back for a
//! long time (demo model, short answers), every Nth chat cancelled after its first chunk, and
//! nothing scrapes `/metrics`. Every few seconds a sample: the resident size of the gateway and
//! the ai-service, Redis's `used_memory` and key count, and the chats ended so far.
//!
//! The verdict is computed here and written into the JSON: per process, the growth after the
//! warm-up per 10,000 chats (least-squares slope over the post-warm-up samples, and the
//! first-to-last difference), and whether Redis levels off (the last third's mean against
//! the middle third's: entries expire after STREAM_TTL, so it should plateau at what that
//! window retains). Targets: < 2 MB per 10,000 chats for each process; Redis plateaus.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared_proto::{ClientFrame, FinalStatus, ServerFrame};
use test_support::Incoming;
use tokio::sync::watch;
use uuid::Uuid;

use super::{chat, send, Conn, Ctx};
use crate::growth;
use crate::procs::{self, round1, round3};
use crate::redis_info;

/// Growth target per process (MB = 10^6 bytes per 10,000 chats).
const RSS_GROWTH_MB_PER_10K_MAX: f64 = 2.0;
/// Redis plateaus when the last third's mean is at most this times the middle third's.
const REDIS_PLATEAU_RATIO_MAX: f64 = 1.05;

pub struct Soak {
    pub sockets: usize,
    pub duration: Duration,
    pub sample_every: Duration,
    /// Samples before this are the warm-up (left out of the growth).
    pub warmup: Duration,
    pub prompt: String,
    /// Every `cancel_every`-th chat (over all sockets) is cancelled after its first chunk.
    pub cancel_every: u64,
    /// The ai-service's STREAM_TTL, as told by the caller (recorded only).
    pub stream_ttl: Option<String>,
}

/// What the sockets did, counted as it happens.
#[derive(Default)]
struct Counts {
    started: AtomicU64,
    ended: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    failed: AtomicU64,
    error_frames: AtomicU64,
    /// A connection lost or a frame that did not come: the socket reconnects.
    client_failures: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl Counts {
    fn fail(&self, e: String) {
        self.client_failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut f) = self.first_failure.lock() {
            f.get_or_insert(e);
        }
    }
}

/// One chat on `conn`, cancelled after its first chunk when `cancel`; returns once its `done`
/// (and, for a cancel, the `cancel_ack`) arrived.
async fn one_chat(conn: &mut Conn, prompt: &str, cancel: bool, n: &Counts) -> Result<(), String> {
    let mid = Uuid::new_v4();
    send(conn, &chat(mid, prompt)).await?;
    let (mut cancel_sent, mut acked, mut done) = (false, !cancel, None);
    while done.is_none() || !acked {
        let f = tokio::time::timeout(Duration::from_secs(60), conn.read())
            .await
            .map_err(|_| "no frame for 60s".to_string())?;
        match f {
            Incoming::Frame(ServerFrame::Chunk { message_id, .. }) if message_id == mid => {
                if cancel && !cancel_sent {
                    cancel_sent = true;
                    send(conn, &ClientFrame::Cancel { message_id: mid }).await?;
                }
            }
            Incoming::Frame(ServerFrame::Done {
                message_id, status, ..
            }) if message_id == mid => {
                done = Some(status);
                if cancel && !cancel_sent {
                    // Over before its first chunk arrived: no cancel to wait for.
                    acked = true;
                }
            }
            Incoming::Frame(ServerFrame::CancelAck { message_id, .. }) if message_id == mid => {
                acked = true;
            }
            Incoming::Frame(ServerFrame::Error { code, message, .. }) => {
                n.error_frames.fetch_add(1, Ordering::Relaxed);
                return Err(format!("error frame {code:?}: {message}"));
            }
            Incoming::Frame(_) => {}
            Incoming::Garbage(_) => return Err("unparsable frame".into()),
            c @ Incoming::Close(_) => return Err(format!("closed ({:?})", c.close_code())),
        }
    }
    let counter = match done {
        Some(FinalStatus::Completed) => &n.completed,
        Some(FinalStatus::Cancelled) => &n.cancelled,
        _ => &n.failed,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    n.ended.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// One socket: chats back to back until `stop`; reconnects after a failure.
async fn socket(ctx: Arc<Ctx>, p: Arc<Soak>, n: Arc<Counts>, stop: watch::Receiver<bool>) {
    let mut conn: Option<Conn> = None;
    while !*stop.borrow() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match ctx.connect(None, None).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    n.fail(e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let k = n.started.fetch_add(1, Ordering::Relaxed) + 1;
        let cancel = p.cancel_every > 0 && k % p.cancel_every == 0;
        if let Err(e) = one_chat(c, &p.prompt, cancel, &n).await {
            n.fail(e);
            if let Some(c) = conn.take() {
                c.close().await;
            }
        }
    }
    if let Some(c) = conn {
        c.close().await;
    }
}

/// One sample, as JSON (`null` for what could not be read).
async fn sample(ctx: &Ctx, started: Instant, n: &Counts) -> Value {
    let pid = |name: &str| ctx.procs.iter().find(|p| p.name == name).map(|p| p.pid);
    let rss = |name: &str| pid(name).and_then(procs::rss_kib);
    let redis = match ctx.redis_port {
        Some(port) => redis_info::sample(port).await.map_err(|e| e.to_string()),
        None => Err("no --redis-port".to_string()),
    };
    json!({
        "t_s": round1(started.elapsed().as_secs_f64()),
        "chats": n.ended.load(Ordering::Relaxed),
        "gateway_rss_kib": rss("gateway"),
        "ai_rss_kib": rss("ai-service"),
        "redis_used_memory": redis.as_ref().ok().map(|r| r.used_memory),
        "redis_keys": redis.as_ref().ok().map(|r| r.keys),
        "redis_error": redis.err(),
    })
}

/// Growth of `field` (KiB) per 10,000 chats over the post-warm-up samples, in MB.
fn rss_growth(samples: &[Value], field: &str) -> Value {
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((s["chats"].as_f64()?, s[field].as_f64()? * 1024.0 / 1e6)))
        .collect();
    let per_10k = |v: Option<f64>| v.map(|x| round3(x * 10_000.0));
    let slope = per_10k(growth::slope(&points));
    json!({
        "slope_mb_per_10k_chats": slope,
        "first_last_mb_per_10k_chats": per_10k(growth::first_last(&points)),
        "rss_mb_first": points.first().map(|p| round1(p.1)),
        "rss_mb_last": points.last().map(|p| round1(p.1)),
        "met": slope.map(|s| s < RSS_GROWTH_MB_PER_10K_MAX),
    })
}

/// Whether Redis's `used_memory` levelled off (over the whole run).
fn redis_plateau(samples: &[Value]) -> Value {
    let values: Vec<f64> = samples
        .iter()
        .filter_map(|s| s["redis_used_memory"].as_f64())
        .collect();
    match growth::thirds(&values) {
        Some((middle, last)) if middle > 0.0 => {
            let ratio = last / middle;
            json!({
                "middle_third_mean_bytes": middle.round(),
                "last_third_mean_bytes": last.round(),
                "ratio": round3(ratio),
                "plateaus": ratio <= REDIS_PLATEAU_RATIO_MAX,
            })
        }
        _ => json!({"plateaus": null, "samples": values.len()}),
    }
}

pub async fn soak(ctx: Arc<Ctx>, p: Soak) -> Value {
    let p = Arc::new(p);
    let n = Arc::new(Counts::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut samples = vec![sample(&ctx, started, &n).await];
    let tasks: Vec<_> = (0..p.sockets)
        .map(|_| tokio::spawn(socket(ctx.clone(), p.clone(), n.clone(), stop_rx.clone())))
        .collect();
    let end = tokio::time::Instant::now() + p.duration;
    let mut next = tokio::time::Instant::now() + p.sample_every;
    while next < end {
        tokio::time::sleep_until(next).await;
        let s = sample(&ctx, started, &n).await;
        eprintln!(
            "loadgen: soak {:.0}s: {} chats, gateway {} KiB, ai-service {} KiB, redis {} B",
            s["t_s"].as_f64().unwrap_or(0.0),
            s["chats"],
            s["gateway_rss_kib"],
            s["ai_rss_kib"],
            s["redis_used_memory"]
        );
        samples.push(s);
        next += p.sample_every;
    }
    tokio::time::sleep_until(end).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let wall = started.elapsed().as_secs_f64();
    samples.push(sample(&ctx, started, &n).await);
    let warmup_s = p.warmup.as_secs_f64();
    let post: Vec<Value> = samples
        .iter()
        .filter(|s| s["t_s"].as_f64().is_some_and(|t| t >= warmup_s))
        .cloned()
        .collect();
    let ended = n.ended.load(Ordering::Relaxed);
    let first_failure = n.first_failure.lock().ok().and_then(|f| f.clone());
    json!({
        "params": {
            "sockets": p.sockets,
            "duration_s": p.duration.as_secs_f64(),
            "sample_every_s": p.sample_every.as_secs_f64(),
            "warmup_s": warmup_s,
            "prompt": p.prompt,
            "cancel_every": p.cancel_every,
            "stream_ttl": p.stream_ttl,
        },
        "chats": {
            "started": n.started.load(Ordering::Relaxed),
            "ended": ended,
            "completed": n.completed.load(Ordering::Relaxed),
            "cancelled": n.cancelled.load(Ordering::Relaxed),
            "failed": n.failed.load(Ordering::Relaxed),
            "error_frames": n.error_frames.load(Ordering::Relaxed),
            "client_failures": n.client_failures.load(Ordering::Relaxed),
            "first_failure": first_failure,
        },
        "chats_per_s": round1(ended as f64 / wall.max(1e-6)),
        "wall_s": round3(wall),
        "samples": samples,
        "growth": {
            "post_warmup_samples": post.len(),
            "gateway": rss_growth(&post, "gateway_rss_kib"),
            "ai-service": rss_growth(&post, "ai_rss_kib"),
            "redis": redis_plateau(&samples),
        },
        "target": {
            "rss_growth_mb_per_10k_chats_max": RSS_GROWTH_MB_PER_10K_MAX,
            "redis_plateau_ratio_max": REDIS_PLATEAU_RATIO_MAX,
        },
    })
}
