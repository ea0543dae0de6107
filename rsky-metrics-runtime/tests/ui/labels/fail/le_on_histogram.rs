use rsky_metrics_runtime::{HistogramFamily, LabelValue, Metrics};

#[derive(Clone, Copy, LabelValue)]
#[label(name = "le")]
pub enum Size {
    Small,
    Large,
}

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Time to handle one request
    pub handle_seconds: HistogramFamily<Size>,
}

fn main() {}
