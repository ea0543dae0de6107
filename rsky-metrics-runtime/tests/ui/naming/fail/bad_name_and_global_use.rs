//! A bad metric name gives exactly its own error: the set's items are still generated, so its
//! uses compile.
use rsky_metrics_runtime::{IntCounter, MetricSet, Metrics};

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Time to handle one request
    pub latency_ms: IntCounter,
}

fn main() {
    SvcMetrics::global().latency_ms.inc();
    let registry = rsky_metrics_runtime::Registry::new();
    let _ = SvcMetrics::register(&registry);
    let _ = <SvcMetrics as MetricSet>::METRICS;
}
