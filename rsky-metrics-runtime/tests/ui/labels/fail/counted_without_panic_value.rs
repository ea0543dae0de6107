use rsky_metrics_runtime::{counted, CountAs, IntCounter, IntCounterFamily, LabelValue, Metrics};

#[derive(Clone, Copy, LabelValue)]
#[label(name = "kind")]
pub enum ErrorKind {
    Io,
}

pub struct ReadError;

impl CountAs<ErrorKind> for ReadError {
    fn count_as(&self) -> ErrorKind {
        ErrorKind::Io
    }
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
fn read() -> Result<(), ReadError> {
    Err(ReadError)
}

fn main() {
    let _ = read();
}
