//! Summaries of measured delays for the benchmark binaries (`abort-bench`, `close-bench`).

/// The `p`-th percentile (0–100) of `sorted` (nearest rank); NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `{"runs", "p50_ms", "p99_ms", "max_ms"}` of delays in milliseconds.
pub fn summary_ms(samples: &[f64]) -> serde_json::Value {
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    serde_json::json!({
        "runs": sorted.len(),
        "p50_ms": percentile(&sorted, 50.0),
        "p99_ms": percentile(&sorted, 99.0),
        "max_ms": sorted.last().copied().unwrap_or(f64::NAN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&s, 50.0), 3.0);
        assert_eq!(percentile(&s, 99.0), 5.0);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(summary_ms(&[2.0, 1.0])["max_ms"], 2.0);
    }
}
