use std::sync::Arc;

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

struct Batch {
    metrics: Arc<UiMetrics>,
    items: Vec<u32>,
}

impl Batch {
    /// An owned handle is cloned on entry, so the body can consume `self`.
    #[counted(metrics = self.metrics.clone(), events = calls, errors = errors, in_flight = active)]
    fn into_sum(self) -> Result<u32, &'static str> {
        if self.items.is_empty() {
            return Err("empty batch");
        }
        Ok(self.items.into_iter().sum())
    }
}

fn main() {
    let metrics = Arc::new(UiMetrics::register(&rsky_metrics_runtime::Registry::new()).unwrap());
    let batch = Batch { metrics: Arc::clone(&metrics), items: vec![1, 2] };
    assert_eq!(batch.into_sum(), Ok(3));
    assert_eq!((metrics.calls.get(), metrics.active.get()), (1, 0));
}
