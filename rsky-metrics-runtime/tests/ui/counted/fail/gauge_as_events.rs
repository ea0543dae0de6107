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

#[counted(UiMetrics, events = active)]
fn handle() -> Result<(), ()> {
    Ok(())
}

fn main() {}
