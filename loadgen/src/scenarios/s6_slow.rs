//! S6: slow-consumer isolation. A wave alone, then the same wave beside one client with a tiny
//! receive buffer that asks for a huge fast answer and never reads; the ratio of the two p99s.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use shared_proto::ServerFrame;
use test_support::Incoming;
use uuid::Uuid;

use super::wave::wave;
use super::{chat, demo_prompt, send, Ctx, WaveSpec};
use crate::procs::round3;

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
