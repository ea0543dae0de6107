use rsky_metrics_runtime::{IntCounterFamily, LabelValue, Metrics};

#[derive(Clone, Copy, LabelValue)]
pub enum Region {
    Eu,
    Us,
}

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Transfers by source and destination region
    pub transfers: IntCounterFamily<(Region, Region)>,
}

fn main() {}
