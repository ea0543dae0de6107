//! The cost of one counter increment: through a derived metric set's `global()`, through a
//! hand-written `once_cell` static (the `lazy_static!` way), and a raw atomic add; and of one
//! labeled increment: a typed family series (`errors[ErrorKind::Redis]`), prometheus's
//! `with_label_values(&[..])`, and measured's fixed-cardinality label, each against the unlabeled
//! increment of the same set.
//!
//! `cargo bench -p rsky-metrics-runtime --bench increment`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion};
use measured::label::StaticLabelSet;
use measured::FixedCardinalityLabel;
use once_cell::sync::Lazy;
use rsky_metrics_runtime::{
    IntCounter, IntCounterFamily, IntCounterVec, IntGauge, LabelValue, Metrics,
};

/// Metrics of the demo service.
#[derive(Metrics)]
#[metrics(service = "bench")]
pub struct DemoMetrics {
    /// Requests handled
    pub requests: IntCounter,
    /// Items waiting in the queue
    pub queue_length: IntGauge,
    /// Errors by kind, typed
    pub errors: IntCounterFamily<ErrorKind>,
    /// Errors by kind, string-labeled
    #[metric(labels = ["kind"])]
    pub string_errors: IntCounterVec,
}

/// What went wrong (eight kinds, as a service's error families have).
#[derive(Clone, Copy, LabelValue)]
#[label(name = "kind")]
pub enum ErrorKind {
    Connection,
    Decode,
    InvalidInput,
    Redis,
    Database,
    Timeout,
    Shutdown,
    Panic,
}

/// The same kinds as measured's fixed-cardinality label (its derive has its own `#[label]`).
#[derive(Clone, Copy, FixedCardinalityLabel)]
#[label(singleton = "kind")]
pub enum MeasuredKind {
    Connection,
    Decode,
    InvalidInput,
    Redis,
    Database,
    Timeout,
    Shutdown,
    Panic,
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

/// One labeled increment, each way, beside the unlabeled one, in one group (one run).
fn labeled_increment(c: &mut Criterion) {
    let mut group = c.benchmark_group("labeled_increment");
    DemoMetrics::global();
    // Dense: one counter per value in an array, as a typed family has.
    let measured: measured::CounterVec<StaticLabelSet<MeasuredKind>> =
        measured::CounterVec::dense();
    group.bench_function("unlabeled", |b| {
        b.iter(|| black_box(DemoMetrics::global()).requests.inc())
    });
    group.bench_function("typed_family", |b| {
        b.iter(|| black_box(DemoMetrics::global()).errors[black_box(ErrorKind::Redis)].inc())
    });
    group.bench_function("with_label_values", |b| {
        b.iter(|| {
            black_box(DemoMetrics::global())
                .string_errors
                .with_label_values(&[black_box("redis")])
                .inc()
        })
    });
    group.bench_function("measured_fixed_cardinality", |b| {
        b.iter(|| black_box(&measured).inc(black_box(MeasuredKind::Redis)))
    });
    group.finish();
}

criterion_group!(benches, increment, labeled_increment);
criterion_main!(benches);
