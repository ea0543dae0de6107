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

#[counted(UiMetrics, events = calls, in_flight = active)]
fn evens(items: impl IntoIterator<Item = u32>) -> impl Iterator<Item = u32> {
    items.into_iter().filter(|i| i % 2 == 0)
}

#[counted(UiMetrics, events = calls, errors = errors)]
fn parse_all<'a>(items: &'a [&'a str]) -> Result<impl Iterator<Item = u32> + 'a, String> {
    if items.is_empty() {
        return Err("nothing to parse".to_owned());
    }
    Ok(items.iter().filter_map(|s| s.parse().ok()))
}

fn main() {
    assert_eq!(evens([1, 2, 3, 4]).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(parse_all(&["1", "x"]).unwrap().collect::<Vec<_>>(), [1]);
    assert!(parse_all(&[]).is_err());
    assert_eq!(UiMetrics::global().calls.get(), 3);
}
