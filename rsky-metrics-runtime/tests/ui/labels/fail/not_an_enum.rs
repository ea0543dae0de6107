use rsky_metrics_runtime::LabelValue;

#[derive(Clone, Copy, LabelValue)]
pub struct ErrorKind {
    pub code: u16,
}

fn main() {}
