use rsky_metrics_runtime::{LabelSet, LabelValue};

#[derive(Clone, Copy, LabelValue)]
pub enum Action {
    Create,
}

#[derive(Clone, Copy, LabelSet)]
pub struct Labels {
    pub action: Action,
    pub shard: u8,
}

fn main() {}
