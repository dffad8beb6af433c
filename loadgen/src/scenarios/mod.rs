//! The benchmark scenarios (S1–S8 and the soak). Each returns a JSON object with its
//! measurements, its parameters, and its target. This file holds what they share: the
//! context (how to connect, what to measure), latency histograms, and the frames they send.
//!
//! Connections are the test kit's protocol client (`test_support::client`) with loadgen's
//! knobs: small tungstenite buffers and connections spread over loopback source addresses.

mod capacity;
mod paced;
mod s1_idle;
mod s2_steady;
mod s3_capacity;
mod s4_cancel;
mod s5_resume;
mod s6_slow;
mod s7_catchup;
mod s8_openai;
mod soak;
mod timeline;
mod wave;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use shared_proto::{api::MessageView, ClientFrame};
use test_support::client::Dialer;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::procs::{round3, Watched};

pub use capacity::Search;
pub use s1_idle::{s1_idle, S1};
pub use s2_steady::s2_steady;
pub use s3_capacity::{s3_capacity, S3};
pub use s4_cancel::{s4_cancel, S4};
pub use s5_resume::{s5_resume, S5};
pub use s6_slow::{s6_slow, S6};
pub use s7_catchup::{s7_catchup, S7};
pub use s8_openai::{compare_with_s3, s8_openai};
pub use soak::{soak, Soak};
pub use wave::WaveSpec;

/// One load-generator connection.
pub type Conn = test_support::WsClient;

/// Shared by every scenario.
pub struct Ctx {
    pub dialer: Dialer,
    /// Further gateways (`--gateway-url` given more than once): connection number `idx` goes
    /// to gateway `idx % (1 + more_dialers.len())`, round robin, so a wave spreads evenly
    /// over them (bench/scale.sh). Empty: every connection goes to `dialer`.
    pub more_dialers: Vec<Dialer>,
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
        self.dialer_for(idx)
            .connect(idx, query, rcvbuf)
            .await
            .map_err(|e| e.to_string())
    }

    /// The gateway of connection number `idx` (round robin over `dialer` and `more_dialers`).
    pub fn dialer_for(&self, idx: usize) -> &Dialer {
        match idx % (1 + self.more_dialers.len()) {
            0 => &self.dialer,
            n => &self.more_dialers[n - 1],
        }
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

/// Sends one frame (flushed).
async fn send(conn: &mut Conn, frame: &ClientFrame) -> Result<(), String> {
    conn.send_frame(frame).await.map_err(|e| e.to_string())
}

/// A `chat` with the client's own message id.
fn chat(message_id: Uuid, content: &str) -> ClientFrame {
    ClientFrame::Chat {
        content: content.to_string(),
        message_id: Some(message_id),
        traceparent: None,
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

/// Wall clock in µs since the epoch (the producer's `ts` is ms since the epoch).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Tokens in a demo delta: the demo model's tokens are words (" word").
pub fn tokens_in(delta: &str) -> u64 {
    delta.split_whitespace().count() as u64
}

#[cfg(test)]
mod round_robin_tests {
    use super::*;

    fn ctx(urls: &[&str]) -> Ctx {
        let mut dialers = urls.iter().map(|u| Dialer::new(u).expect("test URL"));
        Ctx {
            dialer: dialers.next().expect("one URL"),
            more_dialers: dialers.collect(),
            ai_url: String::new(),
            procs: Vec::new(),
            gateway_pid: None,
            redis_port: None,
            redis_benchmark: String::new(),
            connect_limit: Arc::new(Semaphore::new(1)),
            http: reqwest::Client::new(),
            next_idx: AtomicUsize::new(0),
        }
    }

    #[test]
    fn connections_go_to_the_gateways_in_turn() {
        let c = ctx(&[
            "ws://127.0.0.1:1/ws",
            "ws://127.0.0.1:2/ws",
            "ws://127.0.0.1:3/ws",
        ]);
        let picked: Vec<&str> = (0..7).map(|i| c.dialer_for(i).url()).collect();
        assert_eq!(
            picked,
            [
                "ws://127.0.0.1:1/ws",
                "ws://127.0.0.1:2/ws",
                "ws://127.0.0.1:3/ws",
                "ws://127.0.0.1:1/ws",
                "ws://127.0.0.1:2/ws",
                "ws://127.0.0.1:3/ws",
                "ws://127.0.0.1:1/ws",
            ]
        );
    }

    #[test]
    fn one_gateway_takes_every_connection() {
        let c = ctx(&["ws://127.0.0.1:1/ws"]);
        assert!((0..5).all(|i| c.dialer_for(i).url() == "ws://127.0.0.1:1/ws"));
    }
}
