//! Where in time a wave's slow chunks are (start burst, steady, finish): counts per bucket of
//! receipt time, updated lock-free by every client of the wave.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use crate::procs::round3;

/// Where in time a wave's slow chunks are: per [`TIMELINE_BUCKET_MS`] of receipt time since the
/// first chat, the chunks received, how many took over 20 ms and over 50 ms, and the slowest.
/// A p99 over the whole wave says how many; this says when (start burst, steady, finish).
pub(super) const TIMELINE_BUCKET_MS: u64 = 500;
const TIMELINE_BUCKETS: usize = 240;

pub(super) struct Timeline {
    /// [chunks, over 20 ms, over 50 ms, max µs] per bucket; the last bucket takes the rest.
    buckets: Vec<[AtomicU64; 4]>,
}

impl Timeline {
    pub(super) fn new() -> Self {
        Timeline {
            buckets: (0..TIMELINE_BUCKETS).map(|_| Default::default()).collect(),
        }
    }

    pub(super) fn record(&self, since_start_us: u64, latency_us: u64) {
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
    pub(super) fn to_json(&self) -> Value {
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
