//! Prometheus metrics through the `metrics` facade.
//!
//! One recorder per process (installed once, even when both services run embedded in one
//! process); `/metrics` renders it. Every series carries the one prefix `streamline_`
//! ([`prefix`]), has buckets fitted to what it measures ([`buckets`]), and the process's own
//! series ([`process_stats`], refreshed at each render) and `streamline_build_info`
//! ([`build_info`]) come with the recorder. The table of every series is
//! `docs/OBSERVABILITY.md`.
//!
//! **Upkeep.** The exporter keeps every histogram sample it is given until something folds the
//! samples into their buckets: rendering does, and so does its upkeep. `install_recorder` (which
//! we use, to serve `/metrics` from our own routes) does not start the upkeep, so without one a
//! process that nobody scrapes keeps every sample forever, and the gateway records one per
//! frame. The upkeep therefore runs on a thread of its own every [`METRICS_UPKEEP_INTERVAL`],
//! whatever scrapes: a histogram then holds at most one interval's samples. A thread (not a
//! task) because the recorder belongs to the process, not to any one runtime (the embedded
//! mode installs it once for two services); it lives as long as the recorder does.

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub mod buckets;
pub mod build_info;
pub mod prefix;
pub mod process_stats;

/// How often histogram samples are folded into their buckets when nothing scrapes.
pub const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Upkeep runs so far, and the condition tests wait on ([`wait_for_upkeeps`]).
static UPKEEPS: Mutex<u64> = Mutex::new(0);
static UPKEPT: Condvar = Condvar::new();

/// Installs the recorder (first call) with its upkeep, and returns the handle to render it.
pub fn install_metrics() -> Option<PrometheusHandle> {
    install_metrics_with_upkeep(METRICS_UPKEEP_INTERVAL)
}

/// [`install_metrics`] with another upkeep interval (for tests; the first call decides).
pub fn install_metrics_with_upkeep(interval: Duration) -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new()
                .set_buckets(buckets::DEFAULT_SECONDS)
                .ok()?;
            for (name, values) in buckets::PER_SERIES {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full((*name).to_string()), values)
                    .ok()?;
            }
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(prefix::Prefixed::new(recorder)) {
                tracing::warn!(error = %e, "metrics recorder not installed");
                return None;
            }
            build_info::register();
            process_stats::refresh();
            start_upkeep(handle.clone(), interval);
            Some(handle)
        })
        .clone()
}

fn start_upkeep(handle: PrometheusHandle, interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            handle.run_upkeep();
            let mut n = UPKEEPS.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            UPKEPT.notify_all();
        });
    if let Err(e) = spawned {
        // Without it, memory grows with every histogram sample until a scrape: say so loudly.
        tracing::error!(error = %e, "metrics upkeep thread not started; histograms grow until scraped");
    }
}

/// Upkeep runs since the recorder was installed.
pub fn metrics_upkeeps() -> u64 {
    *UPKEEPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until at least `n` more upkeep runs have completed, or `deadline` passed; returns
/// whether they did.
pub fn wait_for_upkeeps(n: u64, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    let mut count = UPKEEPS.lock().unwrap_or_else(|e| e.into_inner());
    let target = *count + n;
    while *count < target {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        count = UPKEPT
            .wait_timeout(count, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

/// The Prometheus text exposition of every metric (the process series read from `/proc` now).
pub fn render_metrics() -> String {
    match HANDLE.get() {
        Some(Some(h)) => {
            process_stats::refresh();
            h.render()
        }
        _ => String::new(),
    }
}
