#[allow(unused_imports)]
use rsky_metrics_runtime::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Metrics};

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Requests handled
    pub requests: IntCounter,
    /// Requests handled, again
    #[metric(name = "requests_total")]
    pub requests_again: Counter,
}

fn main() {}
