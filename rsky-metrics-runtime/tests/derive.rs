//! `#[derive(Metrics)]`: names, help texts, the catalog, and eager registration.

use rsky_metrics_runtime::{
    encode_text, Counter, CounterVec, Error, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, MetricDesc, MetricKind, MetricSet, Metrics, Registry,
    ValueType, DEFAULT_BUCKETS,
};

/// Metrics of the demo service.
#[derive(Metrics)]
#[metrics(service = "demo")]
pub struct DemoMetrics {
    /// Requests handled
    pub requests: IntCounter,
    /// Items waiting in the queue
    pub queue_length: IntGauge,
    /// Time to handle one request
    #[metric(buckets = [0.001, 0.01, 0.1, 1.0])]
    pub handle_seconds: Histogram,
    /// Requests by outcome
    #[metric(labels = ["outcome"])]
    pub outcomes: IntCounterVec,
    /// Kept under an older name
    #[metric(name = "legacy_events")]
    pub legacy: IntCounter,
}

/// One metric of every supported type.
#[allow(dead_code)] // only the catalog and the scrape are read
#[derive(Metrics)]
#[metrics(service = "every_kind")]
struct EveryKind {
    /// An integer counter
    int_hits: IntCounter,
    /// A float counter
    ///
    ///   spread over two lines
    float_hits: Counter,
    /// An integer gauge
    int_level: IntGauge,
    /// A float gauge
    float_level: Gauge,
    /// A histogram with the default buckets
    wait_seconds: Histogram,
    /// Integer counter by label
    #[metric(labels = ["stream"])]
    int_labeled_hits: IntCounterVec,
    /// Float counter by label
    #[metric(labels = ["stream"])]
    float_labeled_hits: CounterVec,
    /// Integer gauge by labels
    #[metric(labels = ["stream", "host"])]
    int_labeled_level: IntGaugeVec,
    /// Float gauge by label
    #[metric(labels = ["stream"])]
    float_labeled_level: GaugeVec,
    /// Histogram by label
    #[metric(labels = ["stream"], buckets = [1, 2.5, 10])]
    size_bytes_vec: HistogramVec,
    /// A counter whose field already ends in total
    events_total: IntCounter,
}

/// A second set sharing a name with `DemoMetrics`.
#[allow(dead_code)] // it never registers
#[derive(Metrics)]
#[metrics(service = "demo")]
struct ClashingMetrics {
    /// Something else that also wants the name
    fresh: IntGauge,
    /// Requests, declared a second time
    requests: IntCounter,
}

mod renamed_runtime {
    pub use rsky_metrics_runtime as runtime;
}

/// Reached through another path.
#[derive(rsky_metrics_runtime::Metrics)]
#[metrics(service = "elsewhere", crate = "renamed_runtime::runtime")]
struct ThroughCratePath {
    /// Counted through a renamed path
    hits: renamed_runtime::runtime::IntCounter,
}

fn names<S: MetricSet>() -> Vec<&'static str> {
    S::METRICS.iter().map(|m| m.name).collect()
}

#[test]
fn names_are_service_then_field_with_total_for_counters() {
    assert_eq!(
        names::<DemoMetrics>(),
        [
            "demo_requests_total",
            "demo_queue_length",
            "demo_handle_seconds",
            "demo_outcomes_total",
            "demo_legacy_events_total",
        ]
    );
}

#[test]
fn total_is_never_doubled() {
    let desc = EveryKind::METRICS
        .iter()
        .find(|m| m.field == "events_total")
        .unwrap();
    assert_eq!(desc.name, "every_kind_events_total");
}

#[test]
fn help_is_the_doc_comment_lines_trimmed_and_joined() {
    assert_eq!(DemoMetrics::METRICS[0].help, "Requests handled");
    let desc = EveryKind::METRICS
        .iter()
        .find(|m| m.field == "float_hits")
        .unwrap();
    assert_eq!(desc.help, "A float counter spread over two lines");
}

#[test]
fn catalog_describes_kind_value_labels_and_buckets() {
    assert_eq!(
        DemoMetrics::METRICS[2],
        MetricDesc {
            field: "handle_seconds",
            name: "demo_handle_seconds",
            help: "Time to handle one request",
            kind: MetricKind::Histogram,
            value: ValueType::Float,
            labels: &[],
            label_values: &[],
            buckets: &[0.001, 0.01, 0.1, 1.0],
            unit: None,
        }
    );
    let outcomes = &DemoMetrics::METRICS[3];
    assert_eq!(
        (outcomes.kind, outcomes.value, outcomes.labels),
        (MetricKind::Counter, ValueType::Int, &["outcome"][..])
    );
    let wait = EveryKind::METRICS
        .iter()
        .find(|m| m.field == "wait_seconds")
        .unwrap();
    assert_eq!(wait.buckets, DEFAULT_BUCKETS);
    let sizes = EveryKind::METRICS
        .iter()
        .find(|m| m.field == "size_bytes_vec")
        .unwrap();
    assert_eq!(sizes.buckets, &[1.0, 2.5, 10.0]);
    let gauge = EveryKind::METRICS
        .iter()
        .find(|m| m.field == "int_labeled_level")
        .unwrap();
    assert_eq!(gauge.labels, &["stream", "host"]);
}

#[test]
fn trait_and_inherent_items_agree() {
    assert_eq!(<DemoMetrics as MetricSet>::SERVICE, "demo");
    assert_eq!(<DemoMetrics as MetricSet>::METRICS, DemoMetrics::METRICS);
    assert!(std::ptr::eq(
        <DemoMetrics as MetricSet>::global(),
        DemoMetrics::global()
    ));
}

#[test]
fn every_unlabeled_metric_is_exposed_at_zero_right_after_register() {
    let registry = Registry::new();
    EveryKind::register(&registry).unwrap();
    let text = encode_text(&registry);
    for line in [
        "every_kind_int_hits_total 0",
        "every_kind_float_hits_total 0",
        "every_kind_int_level 0",
        "every_kind_float_level 0",
        "every_kind_wait_seconds_count 0",
        "every_kind_wait_seconds_sum 0",
        "every_kind_wait_seconds_bucket{le=\"+Inf\"} 0",
        "every_kind_events_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(
        text.contains("# HELP every_kind_float_hits_total A float counter spread over two lines")
    );
    assert!(text.contains("# TYPE every_kind_wait_seconds histogram"));
}

#[test]
fn labeled_metrics_record_per_label_values() {
    let registry = Registry::new();
    let metrics = DemoMetrics::register(&registry).unwrap();
    metrics.outcomes.with_label_values(&["ok"]).inc_by(3);
    metrics.outcomes.with_label_values(&["error"]).inc();
    metrics.handle_seconds.observe(0.05);
    let text = encode_text(&registry);
    assert!(
        text.contains("demo_outcomes_total{outcome=\"ok\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("demo_outcomes_total{outcome=\"error\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("demo_handle_seconds_bucket{le=\"0.1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("demo_handle_seconds_bucket{le=\"0.01\"} 0"),
        "{text}"
    );
}

#[test]
fn registering_a_set_twice_in_one_registry_is_an_error_naming_the_metric() {
    let registry = Registry::new();
    DemoMetrics::register(&registry).unwrap();
    let err = DemoMetrics::register(&registry)
        .err()
        .expect("a second registration must fail");
    let message = err.to_string();
    assert!(matches!(err, Error::Clash { .. }), "{message}");
    assert!(message.contains("demo_requests_total"), "{message}");
    assert!(message.contains("DemoMetrics.requests"), "{message}");
}

#[test]
fn a_clash_names_both_declarations_and_leaves_nothing_of_the_failed_set() {
    let registry = Registry::new();
    DemoMetrics::register(&registry).unwrap();
    let message = ClashingMetrics::register(&registry)
        .err()
        .expect("the clash must fail")
        .to_string();
    assert!(message.contains("ClashingMetrics.requests"), "{message}");
    assert!(message.contains("DemoMetrics.requests"), "{message}");
    // `fresh` was registered before the clash was found; it must be gone again.
    assert!(
        !encode_text(&registry).contains("demo_fresh"),
        "a failed set left metrics behind"
    );
}

#[test]
fn crate_attribute_points_the_generated_code_at_another_path() {
    let registry = Registry::new();
    let set = ThroughCratePath::register(&registry).unwrap();
    set.hits.inc();
    assert!(encode_text(&registry).contains("elsewhere_hits_total 1"));
}

#[test]
fn global_registers_once_in_the_default_registry() {
    let first = DemoMetrics::global();
    first.legacy.inc();
    assert!(std::ptr::eq(first, DemoMetrics::global()));
    let text = encode_text(rsky_metrics_runtime::default_registry());
    assert!(text.contains("demo_legacy_events_total"), "{text}");
    assert!(text.contains("demo_queue_length"), "{text}");
}
