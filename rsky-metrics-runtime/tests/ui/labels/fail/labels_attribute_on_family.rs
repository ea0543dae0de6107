use rsky_metrics_runtime::{IntCounterFamily, LabelValue, Metrics};

#[derive(Clone, Copy, LabelValue)]
pub enum Kind {
    Redis,
}

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Errors by kind
    #[metric(labels = ["kind"])]
    pub errors: IntCounterFamily<Kind>,
}

fn main() {}
