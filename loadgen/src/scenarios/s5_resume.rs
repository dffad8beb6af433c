//! S5: resume. A long answer is generated, the client reconnects with its resume token and
//! asks for the whole log again (`resume{after_seq: 0}`); the time until every chunk and the
//! `done` are back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared_proto::{ClientFrame, FinalStatus, ServerFrame};
use test_support::Incoming;
use uuid::Uuid;

use super::{chat, demo_prompt, send, tokens_in, Ctx};
use crate::procs::round3;

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
    send(&mut conn, &chat(mid, &demo_prompt(tokens, rate))).await?;
    let (mut live_chunks, mut live_tokens) = (0u64, 0u64);
    let done_seq = loop {
        match tokio::time::timeout(Duration::from_secs(120), conn.read())
            .await
            .map_err(|_| "generation: no frame for 120s".to_string())?
        {
            Incoming::Frame(ServerFrame::Chunk { delta, .. }) => {
                live_chunks += 1;
                live_tokens += tokens_in(&delta);
            }
            Incoming::Frame(ServerFrame::Done { seq, status, .. }) => {
                if status != FinalStatus::Completed {
                    return Err(format!("generation ended {status:?}"));
                }
                break seq;
            }
            Incoming::Frame(ServerFrame::Error { code, message, .. }) => {
                return Err(format!("error {code:?}: {message}"))
            }
            Incoming::Frame(_) => {}
            Incoming::Garbage(_) => return Err("garbage".into()),
            c @ Incoming::Close(_) => return Err(format!("closed {:?}", c.close_code())),
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
    send(
        &mut conn,
        &ClientFrame::Resume {
            message_id: mid,
            after_seq: 0,
        },
    )
    .await?;
    let (mut chunks, mut toks, mut in_order) = (0u64, 0u64, true);
    let mut first_chunk_ms = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), conn.read())
            .await
            .map_err(|_| "resume: no frame for 60s".to_string())?
        {
            Incoming::Frame(ServerFrame::Chunk { seq, delta, .. }) => {
                first_chunk_ms.get_or_insert(t0.elapsed().as_secs_f64() * 1000.0);
                chunks += 1;
                in_order &= seq == chunks;
                toks += tokens_in(&delta);
            }
            Incoming::Frame(ServerFrame::Done { seq, .. }) => {
                in_order &= seq == chunks;
                break;
            }
            Incoming::Frame(ServerFrame::Error { code, message, .. }) => {
                return Err(format!("resume error {code:?}: {message}"))
            }
            Incoming::Frame(_) => {}
            Incoming::Garbage(_) => return Err("garbage".into()),
            c @ Incoming::Close(_) => return Err(format!("resume closed {:?}", c.close_code())),
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
