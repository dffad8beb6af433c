//! S1: idle connections. Opens many connections that only send heartbeats, holds them, and
//! measures the gateway's resident memory per connection and everyone's CPU meanwhile.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use shared_proto::{ClientFrame, ServerFrame};
use test_support::Incoming;
use tokio::sync::watch;

use super::{send, Ctx};
use crate::procs::{self, round3, CpuWindow};
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
            let interval = conn.heartbeat_interval();
            // Spread the heartbeats over the interval.
            let offset = rand::thread_rng().gen_range(0..interval.as_millis().max(1) as u64);
            let mut next = tokio::time::Instant::now() + Duration::from_millis(offset);
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep_until(next) => {
                        if send(&mut conn, &ClientFrame::Heartbeat {}).await.is_err() {
                            closes.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        heartbeats.fetch_add(1, Ordering::Relaxed);
                        next += interval;
                    }
                    f = conn.read() => match f {
                        Incoming::Frame(ServerFrame::HeartbeatAck {}) => {
                            acks.fetch_add(1, Ordering::Relaxed);
                        }
                        Incoming::Frame(_) | Incoming::Garbage(_) => {}
                        Incoming::Close(_) => {
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
