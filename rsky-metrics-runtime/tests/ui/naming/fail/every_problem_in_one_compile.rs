#[allow(unused_imports)]
use rsky_metrics_runtime::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Metrics};

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Time to handle one request
    pub latency_ms: Histogram,
    /// Items waiting
    pub queue_count: IntGauge,
    /// Events by stream
    #[metric(labels = ["streamName", "streamName"])]
    pub events_counter: IntCounterVec,
    ///
    #[metric(buckets = [1.0, 0.5])]
    pub size_kb: Histogram,
}

fn main() {}
