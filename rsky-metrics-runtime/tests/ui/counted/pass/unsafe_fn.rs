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

/// # Safety
/// `ptr` points at a readable `u32`.
#[counted(UiMetrics, events = calls, errors = errors)]
unsafe fn read(ptr: *const u32) -> Result<u32, &'static str> {
    if ptr.is_null() {
        return Err("null");
    }
    Ok(unsafe { *ptr })
}

fn main() {
    let value = 5u32;
    assert_eq!(unsafe { read(&value) }, Ok(5));
    assert!(unsafe { read(std::ptr::null()) }.is_err());
    assert_eq!(UiMetrics::global().errors.get(), 1);
}
