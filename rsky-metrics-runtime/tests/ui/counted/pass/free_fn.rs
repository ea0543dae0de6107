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

#[counted(UiMetrics, events = calls, errors = errors, in_flight = active, duration = call_seconds)]
fn parse(input: &str) -> Result<u32, std::num::ParseIntError> {
    let value: u32 = input.parse()?;
    if value == 0 {
        return Ok(1);
    }
    Ok(value)
}

fn main() {
    assert_eq!(parse("7"), Ok(7));
    assert!(parse("x").is_err());
    let m = UiMetrics::global();
    assert_eq!((m.calls.get(), m.errors.get(), m.active.get()), (2, 1, 0));
    assert_eq!(m.call_seconds.get_sample_count(), 2);
}
