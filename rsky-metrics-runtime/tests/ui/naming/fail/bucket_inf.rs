#[allow(unused_imports)]
use rsky_metrics_runtime::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Metrics};

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Time to handle one request
    #[metric(buckets = [0.1, 1.0, f64::INFINITY])]
    pub latency_seconds: Histogram,
}

fn main() {}
