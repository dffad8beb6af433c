//! Histogram buckets fitted to each series: what it measures decides its range, so that its
//! quantiles mean something (a batch size counted in seconds buckets lands in `+Inf`; a
//! time-to-first-token of 20 s in buckets that end at 5 s says nothing).
//!
//! Series not listed here use [`DEFAULT_SECONDS`] (sub-millisecond to seconds: Redis calls,
//! probes).

/// Sub-millisecond to 5 s: store round trips, readiness probes.
pub const DEFAULT_SECONDS: &[f64] = &[
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// Buckets of the series that do not fit [`DEFAULT_SECONDS`], by full series name.
pub const PER_SERIES: &[(&str, &[f64])] = &[
    // Streams per append script call: a count (1 up to the batcher's 256).
    (
        "streamline_store_append_batch_size",
        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
    ),
    // One Redis script or command: 100 µs (a local Redis) up to the 5 s command timeout.
    (
        "streamline_store_redis_command_seconds",
        &[
            0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
            1.0, 2.5, 5.0,
        ],
    ),
    // Producer timestamp → written to the socket: milliseconds, a slow client seconds.
    (
        "streamline_gateway_delivery_lag_seconds",
        &[
            0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ],
    ),
    // Request → first chunk written: a warm model answers in 100s of ms, a loading one or a
    // long prompt in tens of seconds; the first-token timeout defaults to 60 s.
    (
        "streamline_ai_time_to_first_token_seconds",
        &[
            0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 45.0, 60.0, 90.0,
        ],
    ),
    // One upstream HTTP request until its response headers (retries are requests of their own).
    (
        "streamline_ai_upstream_request_seconds",
        &[
            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0,
        ],
    ),
    // A whole generation: a second for a short answer, minutes for a long one.
    (
        "streamline_ai_generation_duration_seconds",
        &[
            0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1200.0,
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_ascend_and_names_carry_the_prefix() {
        for (name, buckets) in PER_SERIES
            .iter()
            .copied()
            .chain([("default", DEFAULT_SECONDS)])
        {
            assert!(!buckets.is_empty(), "{name}");
            assert!(
                buckets.windows(2).all(|w| w[0] < w[1]),
                "{name} not ascending"
            );
            assert!(name == "default" || name.starts_with(super::super::prefix::PREFIX));
        }
    }
}
