//! What `#[counted]` costs per call, against the same body with the two increments written by
//! hand, with no instrumentation, and with two peers: autometrics' `#[autometrics]` (prometheus
//! 0.14 backend) and metered's `#[measure([HitCount, ErrorCount])]`.
//!
//! ```text
//! cargo bench -p rsky-metrics-runtime --bench counted -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Results and ratios are in BENCHMARKS.md, section "#[counted] cost".

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use metered::{ErrorCount, HitCount};
use rsky_metrics_runtime::{counted, IntCounter, Metrics};

/// Metrics of the benchmarked function.
#[derive(Metrics)]
#[metrics(service = "bench_counted")]
pub struct BenchMetrics {
    /// Calls made
    pub calls: IntCounter,
    /// Calls that failed
    pub failures: IntCounter,
}

/// The error of the benchmarked body.
#[derive(Debug)]
pub struct Rejected;

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rejected")
    }
}

impl std::error::Error for Rejected {}

/// The body every variant shares: a little arithmetic, failing on one call in 1024.
#[inline(always)]
fn body(x: u64) -> Result<u64, Rejected> {
    if x % 1024 == 1023 {
        return Err(Rejected);
    }
    Ok(x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17))
}

#[inline(never)]
fn bare(x: u64) -> Result<u64, Rejected> {
    body(x)
}

#[inline(never)]
fn by_hand(x: u64) -> Result<u64, Rejected> {
    let metrics = BenchMetrics::global();
    metrics.calls.inc();
    let result = body(x);
    if result.is_err() {
        metrics.failures.inc();
    }
    result
}

#[inline(never)]
#[counted(BenchMetrics, events = calls, errors = failures)]
fn with_counted(x: u64) -> Result<u64, Rejected> {
    body(x)
}

#[inline(never)]
#[autometrics::autometrics]
fn with_autometrics(x: u64) -> Result<u64, Rejected> {
    body(x)
}

/// metered counts on a registry held by the value whose methods it measures.
#[derive(Default)]
pub struct Metered {
    metrics: MeteredMetrics,
}

#[metered::metered(registry = MeteredMetrics)]
impl Metered {
    #[inline(never)]
    #[measure([HitCount, ErrorCount])]
    pub fn with_metered(&self, x: u64) -> Result<u64, Rejected> {
        body(x)
    }
}

fn cost(c: &mut Criterion) {
    // Register up front, as a service does, so that no variant pays for it inside the loop.
    BenchMetrics::global();
    let metered = Metered::default();
    let mut group = c.benchmark_group("counted_cost");
    let mut x = 0u64;
    group.bench_function("bare", |b| {
        b.iter(|| {
            x = x.wrapping_add(1);
            bare(black_box(x))
        })
    });
    group.bench_function("by_hand", |b| {
        b.iter(|| {
            x = x.wrapping_add(1);
            by_hand(black_box(x))
        })
    });
    group.bench_function("counted", |b| {
        b.iter(|| {
            x = x.wrapping_add(1);
            with_counted(black_box(x))
        })
    });
    group.bench_function("autometrics", |b| {
        b.iter(|| {
            x = x.wrapping_add(1);
            with_autometrics(black_box(x))
        })
    });
    group.bench_function("metered", |b| {
        b.iter(|| {
            x = x.wrapping_add(1);
            metered.with_metered(black_box(x))
        })
    });
    group.finish();
    // The counts prove that `#[counted]` counted what it measured: 1024 calls, one of them failing.
    // (Under `cargo test` criterion runs each variant once, too few calls to reach a failure.)
    let metrics = BenchMetrics::global();
    let (calls, failures) = (metrics.calls.get(), metrics.failures.get());
    for x in 0..1024 {
        let _ = with_counted(x);
    }
    assert_eq!(metrics.calls.get() - calls, 1024);
    assert_eq!(metrics.failures.get() - failures, 1);
    assert!(metered.metrics.with_metered.hit_count.get() > 0);
}

criterion_group!(benches, cost);
criterion_main!(benches);
