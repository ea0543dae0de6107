use rsky_metrics_runtime::{testing, Registry, Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Metrics};

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Requests handled
    pub requests: IntCounter,
    /// CPU time used
    #[metric(unit = "seconds")]
    pub cpu_seconds: Counter,
    /// Items waiting
    pub queue_length: IntGauge,
    /// Fraction of the cache that is used
    #[metric(unit = "ratio")]
    pub cache_used_ratio: Gauge,
    /// Time to handle one request
    #[metric(buckets = [0.005, 0.05, 0.5, 5.0], unit = "seconds")]
    pub request_duration_seconds: Histogram,
    /// Events by stream and outcome
    #[metric(labels = ["stream", "outcome"])]
    pub events: IntCounterVec,
    /// Bytes written by stream
    #[metric(labels = ["stream"], unit = "bytes")]
    pub written_bytes_total: CounterVec,
    /// Stream lengths
    #[metric(labels = ["stream"])]
    pub stream_length: IntGaugeVec,
    /// Temperature by sensor
    #[metric(labels = ["sensor"], unit = "celsius")]
    pub temperature_celsius: GaugeVec,
    /// Payload sizes by stream
    #[metric(labels = ["stream"], buckets = [64.0, 1024.0, 65536.0])]
    pub payload_bytes: HistogramVec,
    /// When the last run finished
    pub last_run_timestamp_seconds: Gauge,
    /// Retries, counted per attempt
    pub retry_count: IntCounter,
    /// Kept under an older name
    #[metric(name = "legacy_events")]
    pub legacy: IntCounter,
}

/// A second set of the process: no clash with the first.
#[derive(Metrics)]
#[metrics(service = "svc_pool2")]
pub struct PoolMetrics {
    /// Connections open
    pub connections: IntGauge,
}

fn main() {
    // The same rules hold at run time, on the catalogs and on the scrape.
    testing::assert_sets_clean(&[SvcMetrics::METRICS, PoolMetrics::METRICS]);
    let registry = Registry::new();
    let svc = SvcMetrics::register(&registry).unwrap();
    PoolMetrics::register(&registry).unwrap();
    svc.events.with_label_values(&["live", "ok"]).inc();
    svc.payload_bytes.with_label_values(&["live"]).observe(100.0);
    testing::assert_registry_clean(&registry);
}
