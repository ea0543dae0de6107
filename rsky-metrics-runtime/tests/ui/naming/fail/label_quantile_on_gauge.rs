#[allow(unused_imports)]
use rsky_metrics_runtime::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Metrics};

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Latency by quantile, computed elsewhere
    #[metric(labels = ["quantile"])]
    pub latency_seconds: GaugeVec,
}

fn main() {}
