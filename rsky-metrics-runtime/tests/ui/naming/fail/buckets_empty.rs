#[allow(unused_imports)]
use rsky_metrics_runtime::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Metrics};

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Time to handle one request
    #[metric(buckets = [])]
    pub latency_seconds: Histogram,
}

fn main() {}
