use rsky_metrics_runtime::{LabelSet, LabelValue};

#[derive(Clone, Copy, LabelValue)]
#[label(name = "errorKind")]
pub enum ErrorKind {
    Redis,
}

#[derive(Clone, Copy, LabelValue)]
pub enum Action {
    Create,
}

#[derive(Clone, Copy, LabelSet)]
pub struct Labels {
    pub __action: Action,
}

fn main() {}
