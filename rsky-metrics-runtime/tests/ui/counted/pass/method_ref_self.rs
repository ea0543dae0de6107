use rsky_metrics_runtime::{counted, Histogram, IntCounter, IntGauge, Metrics};

/// Metrics of the handler.
#[derive(Metrics)]
#[metrics(service = "ui")]
pub struct UiMetrics {
    /// Calls made
    pub calls: IntCounter,
    /// Calls that failed
    pub errors: IntCounter,
    /// Calls in progress
    pub active: IntGauge,
    /// Time a call took
    pub call_seconds: Histogram,
}

struct Ingester {
    metrics: UiMetrics,
}

impl Ingester {
    /// A set held by value is borrowed for the call.
    #[counted(metrics = &self.metrics, events = calls, errors = errors, in_flight = active)]
    fn handle_frame(&self, frame: &[u8]) -> Result<usize, String> {
        if frame.is_empty() {
            return Err("empty frame".to_owned());
        }
        Ok(frame.len())
    }
}

fn main() {
    let registry = rsky_metrics_runtime::Registry::new();
    let ingester = Ingester {
        metrics: UiMetrics::register(&registry).unwrap(),
    };
    assert_eq!(ingester.handle_frame(b"abc"), Ok(3));
    assert!(ingester.handle_frame(b"").is_err());
    assert_eq!(ingester.metrics.calls.get(), 2);
    assert_eq!(ingester.metrics.errors.get(), 1);
}
