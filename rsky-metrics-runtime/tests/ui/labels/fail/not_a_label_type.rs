use rsky_metrics_runtime::{IntCounterFamily, Metrics};

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Errors by kind
    pub errors: IntCounterFamily<String>,
}

fn main() {
    SvcMetrics::global().errors.get(String::new()).inc();
}
