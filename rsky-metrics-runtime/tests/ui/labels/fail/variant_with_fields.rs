use rsky_metrics_runtime::LabelValue;

#[derive(Clone, LabelValue)]
pub enum ErrorKind {
    Redis,
    Database(String),
    Decode { offset: usize },
}

fn main() {}
