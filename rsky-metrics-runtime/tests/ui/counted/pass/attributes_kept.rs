#![deny(missing_docs)]
//! Visibility, attributes, doc comments and the signature stay as written.

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

/// Doubles a value.
#[counted(UiMetrics, events = calls, errors = errors)]
#[must_use = "the doubled value is the point"]
#[inline]
pub(crate) fn double(value: u32) -> Result<u32, String> {
    #![allow(clippy::needless_return)]
    value.checked_mul(2).ok_or_else(|| format!("{value} overflows"))
}

/// Counts with a runtime reached through another path.
#[counted(crate = ::rsky_metrics_runtime, UiMetrics, events = calls)]
pub extern "C" fn ping() -> u8 {
    1
}

fn main() {
    let f: fn(u32) -> Result<u32, String> = double;
    assert_eq!(f(2), Ok(4));
    let g: extern "C" fn() -> u8 = ping;
    assert_eq!(g(), 1);
}
