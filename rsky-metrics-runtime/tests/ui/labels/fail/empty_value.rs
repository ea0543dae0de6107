use rsky_metrics_runtime::LabelValue;

#[derive(Clone, Copy, LabelValue)]
pub enum Outcome {
    Ok,
    #[label(rename = "")]
    Unknown,
}

fn main() {}
