//! `streamline_store_redis_command_seconds{op}`: how long each Redis script or command of the
//! store takes, by what it does, measured around the call (so a reconnect wait inside the
//! command timeout counts: that is what the caller waited). Failures are timed too; they are
//! counted apart in `streamline_store_redis_errors_total`.
//!
//! The histograms are resolved once (one per [`Op`]) on first use: an append batch is timed on
//! the token path, where a registry lookup per call would cost.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

/// What a Redis call does (the `op` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `create.lua`.
    Create,
    /// `append_many.lua`: one batch of appends of many streams.
    AppendBatch,
    /// `finish.lua` for a producer's end.
    Finish,
    /// `finish.lua` for a cancel.
    Cancel,
    /// `finish.lua` for the `worker_lost` takeover.
    Reap,
    /// `renew.lua`.
    Renew,
    /// `read.lua`.
    Read,
    /// `active.lua`.
    Active,
    /// `LRANGE` of a session's history.
    History,
    /// `SPUBLISH` of a cancel nudge (or a readiness probe's).
    Nudge,
    /// `PING`.
    Ping,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Create,
        Op::AppendBatch,
        Op::Finish,
        Op::Cancel,
        Op::Reap,
        Op::Renew,
        Op::Read,
        Op::Active,
        Op::History,
        Op::Nudge,
        Op::Ping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::AppendBatch => "append_batch",
            Op::Finish => "finish",
            Op::Cancel => "cancel",
            Op::Reap => "reap",
            Op::Renew => "renew",
            Op::Read => "read",
            Op::Active => "active",
            Op::History => "history",
            Op::Nudge => "nudge",
            Op::Ping => "ping",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The series name.
pub const COMMAND_SECONDS: &str = "streamline_store_redis_command_seconds";

fn histograms() -> &'static [metrics::Histogram; Op::ALL.len()] {
    static H: OnceLock<[metrics::Histogram; Op::ALL.len()]> = OnceLock::new();
    H.get_or_init(|| Op::ALL.map(|op| metrics::histogram!(COMMAND_SECONDS, "op" => op.as_str())))
}

/// Registers every `op` (an empty histogram shows up in `/metrics` with zero counts).
pub fn register() {
    let _ = histograms();
}

/// Runs `call`, recording how long it took under `op`.
pub async fn timed<T>(op: Op, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    histograms()[op.index()].record(started.elapsed().as_secs_f64());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_its_own_index_and_name() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
        }
        let mut names: Vec<_> = Op::ALL.iter().map(|o| o.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Op::ALL.len());
    }
}
