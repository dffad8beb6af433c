//! Reading a binary's `/metrics` (Prometheus text) from tests.

use std::time::{Duration, Instant};

use crate::PATIENCE;

/// The whole Prometheus text of `base/metrics`.
pub async fn metrics_text(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the first series named `name` (unlabelled, or its first label set) at
/// `base/metrics`; `None` if the endpoint or the series is missing.
pub async fn metric(base: &str, name: &str) -> Option<f64> {
    let body = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

/// The value of the series written exactly `series` (`name{label="value",…}` as the exporter
/// prints it, or a bare name) at `base/metrics`; 0 when it is absent.
pub async fn series(base: &str, series: &str) -> f64 {
    let body = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    body.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Polls `name` at `base/metrics` until it equals `want` (there is no push channel for
/// metrics; the poll is the event).
pub async fn wait_metric(base: &str, name: &str, want: f64) {
    let start = Instant::now();
    loop {
        let v = metric(base, name).await;
        if v == Some(want) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{name} stays {v:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
