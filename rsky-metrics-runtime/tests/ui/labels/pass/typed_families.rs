//! Typed families of every kind, with label enums, a label struct and a tuple, in a set with
//! the other metric types; `max_series` raises the limit.

use rsky_metrics_runtime::{
    CounterFamily, GaugeFamily, HistogramFamily, IntCounter, IntCounterFamily, IntCounterVec,
    IntGaugeFamily, LabelSet, LabelValue, Metrics, Registry,
};

#[derive(Clone, Copy, LabelValue)]
pub enum Digit {
    D0, D1, D2, D3, D4, D5, D6, D7, D8, D9,
}

#[derive(Clone, Copy, LabelSet)]
pub struct Three {
    pub hundreds: Digit,
    pub tens: Digit,
    pub ones: Digit,
}

#[derive(Clone, Copy, LabelSet)]
pub struct Four {
    pub thousands: Digit,
    pub hundreds: Digit,
    pub tens: Digit,
    pub ones: Digit,
}

#[derive(Clone, Copy, LabelValue)]
#[label(name = "kind")]
pub enum ErrorKind {
    Redis,
    #[label(rename = "db")]
    Database,
}

#[derive(Clone, Copy, LabelValue)]
pub enum Action {
    Create,
    Delete,
}

#[derive(Clone, Copy, LabelSet)]
pub struct Record {
    pub action: Action,
    pub r#type: ErrorKind,
}

#[derive(Metrics)]
#[metrics(service = "typed_ui")]
pub struct UiMetrics {
    /// Requests handled
    pub requests: IntCounter,
    /// Requests by outcome
    #[metric(labels = ["outcome"])]
    pub outcomes: IntCounterVec,
    /// Errors by kind
    pub errors: IntCounterFamily<ErrorKind>,
    /// Bytes by record
    pub written_bytes: CounterFamily<Record>,
    /// Items by action and kind
    pub items: IntGaugeFamily<(Action, ErrorKind)>,
    /// Load by action
    #[metric(unit = "ratio")]
    pub load_ratio: GaugeFamily<Action>,
    /// Time by action
    #[metric(buckets = [0.1, 1.0])]
    pub handle_seconds: HistogramFamily<Action>,
    /// Events by three digits: 1,000 series, at the default limit
    pub events: IntCounterFamily<Three>,
    /// Samples by four digits: 10,000 series, allowed here
    #[metric(max_series = 10_000)]
    pub samples: IntCounterFamily<Four>,
}

fn main() {
    let registry = Registry::new();
    let metrics = UiMetrics::register(&registry).unwrap();
    metrics.errors[ErrorKind::Database].inc();
    metrics.written_bytes[Record { action: Action::Delete, r#type: ErrorKind::Redis }].inc_by(2.0);
    metrics.items[(Action::Create, ErrorKind::Redis)].set(3);
    metrics.load_ratio[Action::Create].set(0.5);
    metrics.handle_seconds[Action::Delete].observe(0.5);
    metrics.samples[Four { thousands: Digit::D9, hundreds: Digit::D9, tens: Digit::D9, ones: Digit::D0 }].inc();
    assert_eq!(Record::LABEL_NAMES, ["action", "type"]);
    assert_eq!(UiMetrics::METRICS[3].label_values, [&["create", "delete"][..], &["redis", "db"][..]]);
    let text = rsky_metrics_runtime::encode_text(&registry);
    assert!(text.contains("typed_ui_errors_total{kind=\"db\"} 1"), "{text}");
    assert!(text.contains("typed_ui_errors_total{kind=\"redis\"} 0"), "{text}");
    assert!(text.contains("typed_ui_samples_total{thousands=\"d9\",hundreds=\"d9\",tens=\"d9\",ones=\"d0\"} 1"), "{text}");
    let samples = registry.gather().into_iter().find(|f| f.name() == "typed_ui_samples_total").unwrap();
    assert_eq!(samples.get_metric().len(), 10_000);
}
