//! S7: lossless catch-up. One client with `caps=merge`, a small receive buffer and reads paced
//! to a slow link's rate (2 KB/s) asks for a long answer at 150 tokens/s; beside it, an S2-like
//! wave. What it measures:
//!
//! - the catch-up client: whether it was disconnected (its close code), whether the text it
//!   assembled from the (merged) chunks equals the stored answer and its frames' `first_seq..=seq`
//!   ranges are contiguous, its lag (a chunk's `ts` to its receipt; a merged frame carries its
//!   first chunk's `ts`, so this is the oldest token's wait) overall and over its last 10 s, and
//!   how large its queue in the gateway got;
//! - the others: the wave's p99 alone and beside the catch-up client, and their ratio (as S6).
//!
//! The queue is seen two ways, neither exact: from the client, a merged frame's delta plus the
//! gateway's envelope estimate is what that frame held in the queue when it was taken (a lower
//! bound of the queue at that moment); from the gateway's admin port, the
//! `streamline_gateway_send_queue_bytes` gauge, the sum over all connections as last sampled
//! (each connection samples on every frame it receives, and the catch-up client sends a
//! heartbeat every second), polled once a second (an upper bound while the wave's queues are
//! empty).
//!
//! The client reads through [`Paced`] (bytes, not frames, are paced), over its own
//! tokio-tungstenite connection: the test kit's client owns a plain TCP stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared_proto::{ClientFrame, ServerFrame, PROTOCOL_VERSION};
use test_support::client::incoming::parse_frame;
use test_support::Incoming;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

use super::paced::Paced;
use super::wave::wave;
use super::{chat, demo_prompt, lat_json, new_hist, now_us, p99_ms, Ctx, WaveSpec};
use crate::procs::{ratio, round1, round3};

/// The gateway's estimate of a queued chunk's envelope (sink::CHUNK_ENVELOPE_BYTES): what a
/// merged chunk costs in the queue besides its delta.
const CHUNK_ENVELOPE_BYTES: u64 = 128;

/// The gauge polled from the gateway's admin port.
const QUEUE_GAUGE: &str = "streamline_gateway_send_queue_bytes";

/// How often: the connection samples its queue into the gauge once a second (at each of the
/// client's heartbeats), and each poll renders every metric in the gateway.
const GAUGE_POLL: Duration = Duration::from_secs(1);

pub struct S7 {
    pub spec: WaveSpec,
    pub slow_tokens: u64,
    pub slow_rate: f64,
    /// What the catch-up client reads off its socket, bytes per second.
    pub read_bytes_per_sec: u64,
    /// Its reads come in slices this far apart.
    pub read_slice: Duration,
    /// Its SO_RCVBUF.
    pub rcvbuf: u32,
    /// It streams this long before the wave beside it starts (its backlog has formed).
    pub lead: Duration,
    /// Its lag target is over this last stretch of its receipts.
    pub lag_window: Duration,
    /// The gateway's `/metrics` (admin port), for the queue gauge; none: not polled.
    pub metrics_url: Option<String>,
    /// `SEND_QUEUE_BYTES` of the gateway under test.
    pub queue_bound: u64,
}

/// What the catch-up client saw.
#[derive(Default)]
struct SlowOut {
    info: serde_json::Map<String, Value>,
    /// (receipt µs since epoch, lag µs) per chunk frame.
    samples: Vec<(u64, u64)>,
    disconnected: Option<bool>,
    text_equals_stored: Option<bool>,
    max_frame_cost: u64,
}

pub async fn s7_catchup(ctx: Arc<Ctx>, p: S7) -> Value {
    let (alone, p99_alone, _, _) = wave(&ctx, p.spec).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let gauge = p
        .metrics_url
        .clone()
        .map(|url| tokio::spawn(poll_gauge(ctx.http.clone(), url, stop_rx)));
    let slow = tokio::spawn(catch_up_client(ctx.clone(), p.params()));
    tokio::time::sleep(p.lead).await;
    let (beside, p99_beside, _, _) = wave(&ctx, p.spec).await;
    let budget = Duration::from_secs_f64(p.slow_tokens as f64 / p.slow_rate.max(1.0) + 120.0);
    let mut out = match tokio::time::timeout(budget, slow).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            let mut o = SlowOut::default();
            o.info.insert("error".into(), json!(format!("task: {e}")));
            o
        }
        Err(_) => {
            let mut o = SlowOut::default();
            o.info
                .insert("error".into(), json!("did not finish in its time budget"));
            o
        }
    };
    let _ = stop_tx.send(());
    let gauge = match gauge {
        Some(task) => task
            .await
            .unwrap_or_else(|e| json!({"error": e.to_string()})),
        None => json!("not polled (no --gateway-metrics-url)"),
    };

    // Lag over the last stretch of receipts.
    let mut all = new_hist();
    let mut last = new_hist();
    let end = out.samples.iter().map(|s| s.0).max().unwrap_or(0);
    let from = end.saturating_sub(p.lag_window.as_micros() as u64);
    let start = out.samples.iter().map(|s| s.0).min().unwrap_or(0);
    let mut by_second: Vec<u64> = Vec::new();
    for &(at, lag) in &out.samples {
        all.saturating_record(lag);
        if at >= from {
            last.saturating_record(lag);
        }
        let i = ((at - start) / 1_000_000) as usize;
        if by_second.len() <= i {
            by_second.resize(i + 1, 0);
        }
        by_second[i] = by_second[i].max(lag);
    }
    let lag_p99_last = p99_ms(&last);
    let gauge_max = gauge["max_bytes"].as_f64();
    let queue_max = gauge_max.map_or(out.max_frame_cost as f64, |g| {
        g.max(out.max_frame_cost as f64)
    });
    out.info.insert("lag".into(), lat_json(&all));
    out.info.insert("lag_last_window".into(), lat_json(&last));
    out.info
        .insert("lag_p99_ms_last_window".into(), json!(lag_p99_last));
    out.info.insert(
        "lag_max_ms_by_second".into(),
        json!(by_second
            .iter()
            .map(|us| round1(*us as f64 / 1000.0))
            .collect::<Vec<_>>()),
    );
    out.info.insert(
        "queue".into(),
        json!({
            "max_frame_cost_bytes": out.max_frame_cost,
            "gauge": gauge,
            "max_seen_bytes": queue_max,
            "under_bound": queue_max < p.queue_bound as f64,
        }),
    );
    out.info
        .insert("disconnected".into(), json!(out.disconnected));
    out.info
        .insert("text_equals_stored".into(), json!(out.text_equals_stored));
    let ratio = ratio(p99_beside, p99_alone);
    json!({
        "params": {"chats": p.spec.chats, "tokens": p.spec.tokens, "rate": p.spec.rate,
                   "slow_chat_tokens": p.slow_tokens, "slow_chat_rate": p.slow_rate,
                   "read_bytes_per_s": p.read_bytes_per_sec,
                   "read_slice_ms": p.read_slice.as_millis() as u64,
                   "rcvbuf": p.rcvbuf, "lead_s": p.lead.as_secs_f64(),
                   "lag_window_s": p.lag_window.as_secs_f64(),
                   "send_queue_bytes": p.queue_bound},
        "alone": alone,
        "beside_catch_up_client": beside,
        "catch_up_client": Value::Object(out.info),
        "p99_ms_alone": p99_alone,
        "p99_ms_beside": p99_beside,
        "p99_ratio": ratio,
        "target": {"disconnected": false, "text_equals_stored": true,
                   "lag_p99_ms_last_window_max": 1000.0,
                   "queue_bytes_below": p.queue_bound, "p99_ratio_max": 1.2},
    })
}

/// The catch-up client's parameters (moved into its task).
#[derive(Clone, Copy)]
struct SlowParams {
    tokens: u64,
    rate: f64,
    read_bytes_per_sec: u64,
    read_slice: Duration,
    rcvbuf: u32,
}

impl S7 {
    fn params(&self) -> SlowParams {
        SlowParams {
            tokens: self.slow_tokens,
            rate: self.slow_rate,
            read_bytes_per_sec: self.read_bytes_per_sec,
            read_slice: self.read_slice,
            rcvbuf: self.rcvbuf,
        }
    }
}

type SlowWs = WebSocketStream<Paced<TcpStream>>;

/// Connects with `caps=merge` through a paced stream and reads `welcome`: the session id.
async fn connect_paced(ctx: &Ctx, p: SlowParams) -> Result<(SlowWs, Uuid), String> {
    let idx = ctx
        .next_idx
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tcp = ctx
        .dialer
        .tcp(idx, Some(p.rcvbuf))
        .await
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let url = ctx
        .dialer
        .request_url(Some("caps=merge"), ctx.dialer.token.as_deref());
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    let paced = Paced::new(tcp, p.read_bytes_per_sec, p.read_slice);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, paced, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => match parse_frame(&t) {
                Incoming::Frame(ServerFrame::Welcome {
                    protocol: PROTOCOL_VERSION,
                    session_id,
                    ..
                }) => return Ok((ws, session_id)),
                other => return Err(format!("not a welcome: {other:?}")),
            },
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(format!("before welcome: {e}")),
            Ok(None) => return Err("closed before welcome".into()),
            Err(_) => return Err("no welcome in 10 s".into()),
        }
    }
}

/// How the catch-up client's read loop ended.
enum End {
    Done { seq: u64, status: String },
    Closed(Option<(u16, String)>),
    Failed(String),
}

async fn catch_up_client(ctx: Arc<Ctx>, p: SlowParams) -> SlowOut {
    let mut out = SlowOut::default();
    let (mut ws, session_id) = match connect_paced(&ctx, p).await {
        Ok(c) => c,
        Err(e) => {
            out.info.insert("error".into(), json!(e));
            return out;
        }
    };
    let mid = Uuid::new_v4();
    let text_of = |f: &ClientFrame| serde_json::to_string(f).map(|t| Message::Text(t.into()));
    let first = match text_of(&chat(mid, &demo_prompt(p.tokens, p.rate))) {
        Ok(m) => ws.send(m).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = first {
        out.info.insert("error".into(), json!(e));
        return out;
    }
    let started = Instant::now();
    // A heartbeat a second: keeps the connection alive past CLIENT_TIMEOUT, and each one makes
    // the gateway sample this connection's queue into the gauge.
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    let heartbeat_frame = text_of(&ClientFrame::Heartbeat {});
    let (mut frames, mut merged, mut chunks, mut gaps) = (0u64, 0u64, 0u64, 0u64);
    let (mut max_per_frame, mut max_delta, mut last_seq) = (0u64, 0usize, 0u64);
    let mut text = String::new();
    let end = loop {
        let next = tokio::select! {
            m = tokio::time::timeout(Duration::from_secs(30), ws.next()) => Some(m),
            _ = heartbeat.tick() => None,
        };
        let message = match next {
            None => {
                if let Ok(hb) = &heartbeat_frame {
                    if let Err(e) = ws.send(hb.clone()).await {
                        break End::Failed(format!("heartbeat: {e}"));
                    }
                }
                continue;
            }
            Some(Err(_)) => break End::Failed("no frame for 30 s".into()),
            Some(Ok(None)) => break End::Closed(None),
            Some(Ok(Some(Err(e)))) => break End::Failed(format!("read: {e}")),
            Some(Ok(Some(Ok(m)))) => m,
        };
        let frame = match message {
            Message::Text(t) => parse_frame(&t),
            Message::Close(c) => {
                break End::Closed(c.map(|c| (u16::from(c.code), c.reason.to_string())))
            }
            _ => continue,
        };
        match frame {
            Incoming::Frame(ServerFrame::Chunk {
                message_id,
                seq,
                first_seq,
                delta,
                ts,
                ..
            }) if message_id == mid => {
                let now = now_us();
                let from = first_seq.unwrap_or(seq);
                if from != last_seq + 1 || seq < from {
                    gaps += 1;
                }
                last_seq = seq;
                frames += 1;
                if first_seq.is_some() {
                    merged += 1;
                }
                let covered = seq.saturating_sub(from) + 1;
                chunks += covered;
                max_per_frame = max_per_frame.max(covered);
                max_delta = max_delta.max(delta.len());
                out.max_frame_cost = out
                    .max_frame_cost
                    .max(delta.len() as u64 + CHUNK_ENVELOPE_BYTES);
                text.push_str(&delta);
                let lag = now.saturating_sub(ts.unwrap_or(0) * 1000).max(1);
                out.samples.push((now, lag));
            }
            Incoming::Frame(ServerFrame::Done {
                message_id,
                seq,
                status,
                ..
            }) if message_id == mid => {
                break End::Done {
                    seq,
                    status: status.as_str().to_string(),
                }
            }
            Incoming::Frame(ServerFrame::Error { code, message, .. }) => {
                break End::Failed(format!("error frame {code:?}: {message}"))
            }
            Incoming::Frame(_) => {}
            Incoming::Garbage(g) => break End::Failed(format!("unparsable frame: {g}")),
            Incoming::Close(c) => break End::Closed(c),
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let bytes_read = ws.get_ref().bytes_read();
    let info = &mut out.info;
    match &end {
        End::Done { seq, status } => {
            out.disconnected = Some(false);
            info.insert("end".into(), json!("done"));
            info.insert("done".into(), json!({"seq": seq, "status": status}));
            if *seq != last_seq {
                gaps += 1;
            }
        }
        End::Closed(c) => {
            out.disconnected = Some(true);
            info.insert("end".into(), json!("closed"));
            info.insert("close_code".into(), json!(c.as_ref().map(|c| c.0)));
            info.insert("close_reason".into(), json!(c.as_ref().map(|c| &c.1)));
        }
        End::Failed(e) => {
            out.disconnected = Some(true);
            info.insert("end".into(), json!("failed"));
            info.insert("error".into(), json!(e));
        }
    }
    info.insert("session_id".into(), json!(session_id));
    info.insert("message_id".into(), json!(mid));
    info.insert("frames".into(), json!(frames));
    info.insert("merged_frames".into(), json!(merged));
    info.insert("chunks_covered".into(), json!(chunks));
    info.insert("max_chunks_per_frame".into(), json!(max_per_frame));
    info.insert("max_delta_bytes".into(), json!(max_delta));
    info.insert("seq_gaps".into(), json!(gaps));
    info.insert("seq_contiguous".into(), json!(gaps == 0));
    info.insert("elapsed_s".into(), json!(round3(elapsed)));
    info.insert("bytes_read".into(), json!(bytes_read));
    info.insert(
        "read_bytes_per_s".into(),
        json!(round1(bytes_read as f64 / elapsed.max(1e-6))),
    );
    info.insert("text_bytes".into(), json!(text.len()));
    match ctx.message(session_id, mid).await {
        Ok(view) => {
            let equal = view.text == text && gaps == 0;
            out.text_equals_stored = Some(equal);
            info.insert("stored_state".into(), json!(view.state.as_str()));
            info.insert("stored_last_seq".into(), json!(view.last_seq));
            info.insert("stored_text_bytes".into(), json!(view.text.len()));
        }
        Err(e) => {
            out.text_equals_stored = Some(false);
            info.insert("stored_error".into(), json!(e));
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    out
}

/// Polls the queue gauge until told to stop: its maximum and the number of samples.
async fn poll_gauge(
    http: reqwest::Client,
    url: String,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Value {
    let (mut max, mut samples, mut errors) = (0f64, 0u64, 0u64);
    let mut last_error = None;
    let mut tick = tokio::time::interval(GAUGE_POLL);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let got = async {
            let body = http
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            body.lines()
                .find_map(|l| l.strip_prefix(QUEUE_GAUGE)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .ok_or_else(|| format!("no {QUEUE_GAUGE} in the metrics"))
        }
        .await;
        match got {
            Ok(v) => {
                samples += 1;
                max = max.max(v);
            }
            Err(e) => {
                errors += 1;
                last_error = Some(e);
            }
        }
    }
    json!({"series": QUEUE_GAUGE, "max_bytes": (samples > 0).then_some(max),
           "samples": samples, "errors": errors, "last_error": last_error,
           "poll_interval_ms": GAUGE_POLL.as_millis() as u64})
}
