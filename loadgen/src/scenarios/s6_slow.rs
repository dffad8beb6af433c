//! S6: slow-consumer isolation. A wave alone, then the same wave beside one client with a tiny
//! receive buffer that asks for a huge fast answer and never reads; the ratio of the two p99s.
//!
//! Both p99s are a few milliseconds on an unsaturated machine, where one run's p99 differs from
//! the next by as much as the effect measured (0.3 ms moves the ratio by 0.1). So the pair runs
//! `rounds` times, alternating (alone, beside, alone, beside, …), and the result is the median
//! of the rounds' own ratios: each compares two waves a few seconds apart, so drift over the
//! run cancels within a pair. Every round's pair is reported, and the two sides' medians.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use shared_proto::ServerFrame;
use test_support::Incoming;
use uuid::Uuid;

use super::wave::wave;
use super::{chat, demo_prompt, send, Ctx, WaveSpec};
use crate::procs::{ratio, round3};

pub struct S6 {
    pub spec: WaveSpec,
    pub slow_tokens: u64,
    /// Control experiment: the "slow" client reads everything (a fast consumer of the same
    /// long fast chat), to separate the cost of generating it from the cost of not reading it.
    pub control_reader: bool,
    /// Alternating (alone, beside) pairs; the ratio is of the medians.
    pub rounds: usize,
}

/// One (alone, beside) pair.
struct Round {
    alone: Value,
    p99_alone: Option<f64>,
    beside: Value,
    p99_beside: Option<f64>,
    slow_client: Value,
}

impl Round {
    /// p99 beside ÷ p99 alone.
    fn ratio(&self) -> Option<f64> {
        ratio(self.p99_beside, self.p99_alone)
    }
}

/// The median of what was measured (None if nothing was).
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

pub async fn s6_slow(ctx: Arc<Ctx>, p: S6) -> Value {
    let mut rounds = Vec::new();
    for _ in 0..p.rounds.max(1) {
        rounds.push(round(&ctx, &p).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let p99_alone = median(rounds.iter().filter_map(|r| r.p99_alone).collect());
    let p99_beside = median(rounds.iter().filter_map(|r| r.p99_beside).collect());
    let ratios: Vec<Option<f64>> = rounds.iter().map(Round::ratio).collect();
    let ratio = median(ratios.iter().flatten().copied().collect()).map(round3);
    let each: Vec<Value> = rounds
        .iter()
        .zip(&ratios)
        .map(|(r, ratio)| {
            json!({
                "p99_ms_alone": r.p99_alone,
                "p99_ms_beside": r.p99_beside,
                "p99_ratio": ratio,
                "slow_client": r.slow_client,
            })
        })
        .collect();
    // The first round's waves in full (latency, CPU); the others by their p99s.
    let first = rounds.swap_remove(0);
    json!({
        "params": {"chats": p.spec.chats, "tokens": p.spec.tokens, "rate": p.spec.rate,
                   "slow_chat_tokens": p.slow_tokens, "slow_rcvbuf": 4096,
                   "control_reader": p.control_reader, "rounds": each.len()},
        "alone": first.alone,
        "beside_slow_consumer": first.beside,
        "slow_client": first.slow_client,
        "rounds": each,
        "p99_ms_alone": p99_alone,
        "p99_ms_beside": p99_beside,
        "p99_ratio": ratio,
        "p99_ratio_is": "median of the rounds' ratios",
        "target": {"p99_ratio_max": 1.2},
    })
}

async fn round(ctx: &Arc<Ctx>, p: &S6) -> Round {
    let (alone, p99_alone, _, _) = wave(ctx, p.spec).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The slow client: a tiny receive buffer, one long fast chat, and no reads after welcome.
    let mut slow_info = json!({});
    let slow = match ctx.connect(None, Some(4096)).await {
        Ok(mut c) => {
            let mid = Uuid::new_v4();
            match send(&mut c, &chat(mid, &demo_prompt(p.slow_tokens, 0.0))).await {
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
                    match conn.read().await {
                        c @ Incoming::Close(_) => {
                            return json!({"reader_frames": frames, "closed_with": c.close_code()})
                        }
                        Incoming::Frame(ServerFrame::Done {
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
    let (beside, p99_beside, _, _) = wave(ctx, p.spec).await;
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
                match conn.read().await {
                    c @ Incoming::Close(_) => return json!({"closed_with": c.close_code()}),
                    Incoming::Frame(ServerFrame::Done {
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
    Round {
        alone,
        p99_alone,
        beside,
        p99_beside,
        slow_client: slow_info,
    }
}
