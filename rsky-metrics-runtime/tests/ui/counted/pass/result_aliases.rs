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

mod store {
    #[derive(Debug)]
    pub struct StoreError;
    pub type Result<T> = std::result::Result<T, StoreError>;
}

#[counted(UiMetrics, events = calls, errors = errors)]
fn io(fail: bool) -> std::io::Result<()> {
    if fail {
        Err(std::io::Error::other("io"))?;
    }
    Ok(())
}

#[counted(UiMetrics, events = calls, errors = errors)]
fn any(fail: bool) -> anyhow::Result<()> {
    anyhow::ensure!(!fail, "any");
    Ok(())
}

#[counted(UiMetrics, events = calls, errors = errors)]
fn aliased(fail: bool) -> store::Result<u8> {
    if fail {
        return Err(store::StoreError);
    }
    Ok(1)
}

#[counted(UiMetrics, events = calls, errors = errors)]
fn full_path(fail: bool) -> ::core::result::Result<(), ()> {
    if fail { Err(()) } else { Ok(()) }
}

fn main() {
    for fail in [false, true] {
        let _ = io(fail);
        let _ = any(fail);
        let _ = aliased(fail);
        let _ = full_path(fail);
    }
    let m = UiMetrics::global();
    assert_eq!((m.calls.get(), m.errors.get()), (8, 4));
}
