use rsky_metrics_runtime::{counted, IntCounter, Metrics};

/// Fields named after the keys they fill.
#[derive(Metrics)]
#[metrics(service = "shorthand")]
pub struct Plain {
    /// Calls made
    pub events: IntCounter,
    /// Calls that failed
    pub errors: IntCounter,
}

#[counted(Plain, events, errors)]
fn handle(fail: bool) -> Result<(), ()> {
    if fail { Err(()) } else { Ok(()) }
}

fn main() {
    let _ = handle(true);
    assert_eq!(Plain::global().errors.get(), 1);
}
