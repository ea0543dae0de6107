use rsky_metrics_runtime::{counted, IntCounter, IntCounterFamily, LabelValue, Metrics};

#[derive(Clone, Copy, LabelValue)]
#[label(name = "kind")]
pub enum ErrorKind {
    Io,
    #[label(panic)]
    Panic,
}

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Reads made
    pub reads: IntCounter,
    /// Reads that failed, by kind
    pub read_errors: IntCounterFamily<ErrorKind>,
}

#[counted(SvcMetrics, events = reads, errors = read_errors)]
fn read(path: &str) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn main() {
    let _ = read("/nonexistent");
}
