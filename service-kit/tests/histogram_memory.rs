//! Histogram memory stays bounded while nothing renders `/metrics` (issue: every sample was kept
//! until the next scrape, so an unscraped gateway grew with every frame it sent).
//!
//! The process's heap is measured by a counting allocator. Two million samples are recorded
//! without any render; after the upkeep has run, the heap must be back near where it was. The
//! exporter keeps 8 bytes per unfolded sample, so without the upkeep this test would hold
//! about 16 MB (and its wait for an upkeep would time out).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const BATCH: usize = 100_000;

fn record(h: &metrics::Histogram, n: usize) {
    for i in 0..n {
        h.record((i % 1000) as f64 / 10_000.0);
    }
}

#[test]
fn unscraped_histograms_do_not_grow_with_their_samples() {
    // A short interval so that the test is quick; production uses METRICS_UPKEEP_INTERVAL.
    service_kit::install_metrics_with_upkeep(Duration::from_millis(20)).expect("recorder");
    let h = metrics::histogram!("test_latency_seconds");
    let upkept = || {
        assert!(
            service_kit::wait_for_upkeeps(2, Duration::from_secs(30)),
            "the metrics upkeep does not run"
        );
    };
    // Warm up: the histogram exists, its buckets are allocated.
    record(&h, BATCH);
    upkept();
    let before = LIVE.load(Ordering::Relaxed);
    for _ in 0..20 {
        record(&h, BATCH);
        // Between batches at most one batch waits for the upkeep; wait for it (an event).
        upkept();
    }
    // The exporter frees drained sample blocks through epoch-based reclamation, which may
    // defer a free by a few upkeeps on a busy machine: a few more upkeeps, then the bound.
    let mut grown = LIVE.load(Ordering::Relaxed) - before;
    for _ in 0..50 {
        if grown < 256 * 1024 {
            break;
        }
        upkept();
        grown = LIVE.load(Ordering::Relaxed) - before;
    }
    assert!(
        grown < 256 * 1024,
        "2,000,000 unrendered samples grew the heap by {grown} bytes"
    );
    // They were counted, nonetheless (the exporter's lock-free buckets may drop a handful of
    // samples recorded during a concurrent upkeep: seen 3 in 2,100,000 on a busy machine).
    let text = service_kit::render_metrics();
    let count: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("streamline_test_latency_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the histogram's count");
    assert!(count >= 2_099_000.0, "{count} of 2,100,000 samples counted");
}
