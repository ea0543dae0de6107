use rsky_metrics_runtime::{counted, CountOutcome, Histogram, IntCounter, IntGauge, Metrics};

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

/// What a push to the stream did.
pub enum Pushed {
    Queued,
    Backpressure,
}

impl CountOutcome for Pushed {
    fn is_error(&self) -> bool {
        matches!(self, Pushed::Backpressure)
    }
}

#[counted(UiMetrics, events = calls, errors = errors)]
fn push(full: bool) -> Pushed {
    if full { Pushed::Backpressure } else { Pushed::Queued }
}

fn main() {
    push(true);
    push(false);
    assert_eq!(UiMetrics::global().errors.get(), 1);
}
