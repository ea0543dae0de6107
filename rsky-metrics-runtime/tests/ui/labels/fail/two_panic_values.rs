use rsky_metrics_runtime::LabelValue;

#[derive(Clone, Copy, LabelValue)]
pub enum ErrorKind {
    #[label(panic)]
    Panic,
    #[label(panic)]
    Crash,
}

fn main() {}
