use rsky_metrics_runtime::{IntCounterFamily, IntGaugeFamily, LabelSet, LabelValue, Metrics};

#[derive(Clone, Copy, LabelValue)]
pub enum Digit {
    D0, D1, D2, D3, D4, D5, D6, D7, D8, D9,
}

#[derive(Clone, Copy, LabelSet)]
pub struct Four {
    pub thousands: Digit,
    pub hundreds: Digit,
    pub tens: Digit,
    pub ones: Digit,
}

#[derive(Clone, Copy, LabelValue)]
pub enum Shard {
    A, B, C,
}

#[derive(Metrics)]
#[metrics(service = "svc")]
pub struct SvcMetrics {
    /// Events by four digits: 10,000 series, over the default limit of 1,000
    pub events: IntCounterFamily<Four>,
    /// Items by shard, limited to two series
    #[metric(max_series = 2)]
    pub items: IntGaugeFamily<Shard>,
}

fn main() {}
