//! S4: cancel storm. Many chats, each cancelled (with duplicates in the same flush) at a random
//! moment after its `ack`; the cancel → `done{cancelled}` latency, and that nothing follows
//! the cancel transition (no chunk beyond `done.seq`, the stored `last_seq` equal to it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use shared_proto::{ClientFrame, FinalStatus, ServerFrame};
use test_support::Incoming;
use uuid::Uuid;

use super::{chat, demo_prompt, lat_json, ms, new_hist, now_us, send, Ctx};
use crate::procs::{round3, CpuWindow};

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
        send(&mut conn, &chat(mid, &demo_prompt(p.tokens, p.rate))).await?;
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
                        conn.feed_frame(&ClientFrame::Cancel { message_id: mid })
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    conn.try_flush().await.map_err(|e| e.to_string())?;
                    if done.is_some() {
                        out.done_before_cancel = true;
                        linger_until = Some(tokio::time::Instant::now() + p.linger);
                    }
                }
                f = conn.read() => match f {
                    Incoming::Frame(ServerFrame::Ack { .. }) => {
                        if !acked {
                            acked = true;
                            let d = rand::thread_rng().gen_range(0..=p.max_delay.as_millis() as u64);
                            out.delay_ms = d;
                            cancel_at = Some(tokio::time::Instant::now() + Duration::from_millis(d));
                        }
                    }
                    Incoming::Frame(ServerFrame::Chunk { message_id, seq, .. }) if message_id == mid => {
                        if done.is_some() {
                            out.frames_after_done += 1;
                        }
                        seqs.push(seq);
                    }
                    Incoming::Frame(ServerFrame::Done { message_id, seq, status, .. }) if message_id == mid => {
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
                    Incoming::Frame(ServerFrame::CancelAck { status, .. }) => {
                        out.cancel_acks.push(status.as_str().to_string());
                    }
                    Incoming::Frame(ServerFrame::Error { .. }) => out.error_frames += 1,
                    Incoming::Frame(_) => {}
                    Incoming::Garbage(_) => out.error_frames += 1,
                    c @ Incoming::Close(_) => return Err(format!("closed ({:?})", c.close_code())),
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
