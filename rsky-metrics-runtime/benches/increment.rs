//! The cost of one counter increment: through a derived metric set's `global()`, through a
//! hand-written `once_cell` static (the `lazy_static!` way), and a raw atomic add.
//!
//! `cargo bench -p rsky-metrics-runtime --bench increment`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion};
use once_cell::sync::Lazy;
use rsky_metrics_runtime::{IntCounter, IntGauge, Metrics};

/// Metrics of the demo service.
#[derive(Metrics)]
#[metrics(service = "bench")]
pub struct DemoMetrics {
    /// Requests handled
    pub requests: IntCounter,
    /// Items waiting in the queue
    pub queue_length: IntGauge,
}

static HAND_WRITTEN: Lazy<IntCounter> = Lazy::new(|| {
    let counter =
        IntCounter::new("hand_requests_total", "Requests handled").expect("a valid counter");
    prometheus::register(Box::new(counter.clone())).expect("registered once");
    counter
});

static RAW: AtomicU64 = AtomicU64::new(0);

fn increment(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter_increment");
    DemoMetrics::global();
    Lazy::force(&HAND_WRITTEN);
    group.bench_function("derive_global", |b| {
        b.iter(|| black_box(DemoMetrics::global()).requests.inc())
    });
    group.bench_function("hand_written_once_cell", |b| {
        b.iter(|| black_box(&*HAND_WRITTEN).inc())
    });
    group.bench_function("raw_atomic_relaxed", |b| {
        b.iter(|| black_box(&RAW).fetch_add(1, Ordering::Relaxed))
    });
    group.finish();
}

criterion_group!(benches, increment);
criterion_main!(benches);
