#[allow(unused_imports)]
use rsky_metrics_runtime::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Metrics};

#[derive(Metrics)]
#[metrics(service = "MyService")]
pub struct SvcMetrics {
    /// Requests handled
    pub requests: IntCounter,
}

fn main() {}
