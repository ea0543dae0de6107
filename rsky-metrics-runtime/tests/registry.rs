//! The registry owns its derived families: the encoder writes them in field order, `gather()` +
//! `TextEncoder` still sees them, for every registry shape; a prefix or constant labels never
//! apply to only some families of a body.

#[path = "support/exposition.rs"]
mod support;

use std::collections::HashMap;

use prometheus::Opts;
use rsky_metrics_runtime::exposition::{self, Format};
use rsky_metrics_runtime::{
    default_registry, Encoder, Error, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Metrics, Registry, TextEncoder,
};
use support::{parse, python_openmetrics, Exposition};

/// Metrics of the order service.
#[derive(Metrics)]
#[metrics(service = "order")]
pub struct Ordered {
    /// Declared first
    pub zebra: IntCounter,
    /// Declared second
    pub apple: IntGauge,
    /// Declared third
    #[metric(labels = ["kind"])]
    pub mango: IntCounterVec,
    /// Declared fourth
    #[metric(buckets = [0.5, 1.0])]
    pub banana_seconds: Histogram,
}

fn fill(m: &Ordered) {
    m.zebra.inc_by(3);
    m.apple.set(-2);
    m.mango.with_label_values(&["a \"quoted\""]).inc();
    m.banana_seconds.observe(0.7);
}

/// Collectors of another library, registered beside the sets.
fn foreign(registry: &Registry) {
    let calls =
        prometheus::IntCounterVec::new(Opts::new("other_calls_total", "Calls"), &["method"])
            .unwrap();
    calls.with_label_values(&["get"]).inc_by(2);
    registry.register(Box::new(calls)).unwrap();
    let up = prometheus::IntGauge::new("other_up", "Whether other is up").unwrap();
    up.set(1);
    registry.register(Box::new(up)).unwrap();
}

fn text_encoder(registry: &Registry) -> String {
    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut body)
        .unwrap();
    String::from_utf8(body).unwrap()
}

fn ours(registry: &Registry) -> String {
    String::from_utf8(exposition::encode(registry, Format::Text)).unwrap()
}

#[track_caller]
fn assert_same(ours: &Exposition, theirs: &Exposition) {
    assert_eq!(ours.samples, theirs.samples);
    assert_eq!(ours.types, theirs.types);
    assert_eq!(ours.helps, theirs.helps);
}

fn type_lines(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .collect()
}

#[test]
fn families_are_written_in_field_order() {
    let registry = Registry::new();
    fill(&Ordered::register(&registry).unwrap());
    let declared: Vec<&str> = Ordered::METRICS.iter().map(|m| m.name).collect();
    assert_eq!(type_lines(&ours(&registry)), declared);
}

#[test]
fn sets_are_written_in_registration_order_before_other_collectors() {
    /// Metrics of the second set.
    #[derive(Metrics)]
    #[metrics(service = "again")]
    pub struct Second {
        /// Declared first
        pub first: IntCounter,
    }
    let registry = Registry::new();
    foreign(&registry);
    let second = Second::register(&registry).unwrap();
    second.first.inc();
    fill(&Ordered::register(&registry).unwrap());
    let mut expected = vec!["again_first_total"];
    expected.extend(Ordered::METRICS.iter().map(|m| m.name));
    expected.extend(["other_calls_total", "other_up"]);
    assert_eq!(type_lines(&ours(&registry)), expected);
}

#[test]
fn a_plain_registry_with_sets_and_other_collectors_matches_the_text_encoder_on_gather() {
    for registry in [
        Registry::new(),
        Registry::new_custom(None, None).unwrap(),
        Registry::new_custom(None, Some(HashMap::new())).unwrap(),
    ] {
        fill(&Ordered::register(&registry).unwrap());
        foreign(&registry);
        let body = ours(&registry);
        assert_same(&parse(&body), &parse(&text_encoder(&registry)));
        assert!(body.contains("order_zebra_total 3\n"), "{body}");
        assert!(body.contains("other_up 1\n"), "{body}");
    }
}

fn custom_registries() -> Vec<(&'static str, Registry)> {
    let labels = || Some(HashMap::from([("region".to_owned(), "eu".to_owned())]));
    vec![
        (
            "prefix",
            Registry::new_custom(Some("ns".to_owned()), None).unwrap(),
        ),
        ("labels", Registry::new_custom(None, labels()).unwrap()),
        (
            "both",
            Registry::new_custom(Some("ns".to_owned()), labels()).unwrap(),
        ),
    ]
}

#[test]
fn a_custom_registry_applies_its_prefix_and_labels_to_every_family_it_serves() {
    for (shape, registry) in custom_registries() {
        foreign(&registry);
        let body = ours(&registry);
        assert_same(&parse(&body), &parse(&text_encoder(&registry)));
        let up = body
            .lines()
            .find(|line| line.contains("other_up") && !line.starts_with('#'))
            .unwrap_or_else(|| panic!("{shape}: {body}"));
        match shape {
            "prefix" => assert_eq!(up, "ns_other_up 1"),
            "labels" => assert_eq!(up, "other_up{region=\"eu\"} 1"),
            _ => assert_eq!(up, "ns_other_up{region=\"eu\"} 1"),
        }
    }
}

#[test]
fn a_set_is_refused_by_a_registry_with_a_prefix_or_constant_labels_and_says_why() {
    for (shape, registry) in custom_registries() {
        foreign(&registry);
        let before = ours(&registry);
        let err = match Ordered::register(&registry) {
            Err(err) => err,
            Ok(_) => panic!("{shape}: a set was registered in a custom registry"),
        };
        assert!(
            matches!(err, Error::CustomRegistry { .. }),
            "{shape}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with("cannot register Ordered in a registry with the "),
            "{message}"
        );
        if shape != "labels" {
            assert!(message.contains("the prefix `ns`"), "{message}");
        }
        if shape != "prefix" {
            assert!(message.contains("the constant labels region"), "{message}");
        }
        assert!(message.contains("Registry::new()"), "{message}");
        // Nothing of the set is served, with or without the prefix.
        assert_eq!(ours(&registry), before, "{shape}");
        assert!(!text_encoder(&registry).contains("order_"), "{shape}");
    }
}

#[test]
fn a_derived_family_and_another_collector_cannot_share_a_name() {
    let registry = Registry::new();
    let _m = Ordered::register(&registry).unwrap();
    let clash = prometheus::IntCounter::new("order_zebra_total", "Clash").unwrap();
    assert!(registry.register(Box::new(clash)).is_err());
    let registry = Registry::new();
    let first = prometheus::IntGauge::new("order_apple", "First").unwrap();
    registry.register(Box::new(first)).unwrap();
    let err = Ordered::register(&registry).err().expect("a clash");
    assert!(matches!(err, Error::Clash { .. }), "{err}");
    // The failed set left nothing behind: the other collector is all there is.
    assert_eq!(type_lines(&ours(&registry)), ["order_apple"]);
}

#[test]
fn the_inner_registry_gathers_only_other_collectors() {
    let registry = Registry::new();
    fill(&Ordered::register(&registry).unwrap());
    foreign(&registry);
    let inner: Vec<String> = registry
        .prometheus()
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    assert_eq!(inner, ["other_calls_total", "other_up"]);
    let all: Vec<String> = registry
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "sorted by name, as prometheus sorts");
    assert_eq!(all.len(), 6);
}

#[test]
fn global_sets_live_in_the_default_registry_which_wraps_prometheus_default() {
    /// Metrics of the global set.
    #[derive(Metrics)]
    #[metrics(service = "registry_global")]
    pub struct Shared {
        /// Counted globally
        pub hits: IntCounter,
    }
    Shared::global().hits.inc();
    let gathered = |families: Vec<prometheus::proto::MetricFamily>| {
        families
            .iter()
            .any(|f| f.name() == "registry_global_hits_total")
    };
    assert!(gathered(default_registry().gather()));
    // prometheus' own gather() sees the default registry's other collectors only.
    assert!(!gathered(prometheus::gather()));
    let other = prometheus::IntGauge::new("registry_global_other", "Other").unwrap();
    prometheus::register(Box::new(other)).unwrap();
    let body = rsky_metrics_runtime::encode_text(default_registry());
    assert!(body.contains("registry_global_hits_total 1\n"), "{body}");
    assert!(body.contains("registry_global_other 0\n"), "{body}");
}

/// Metrics of the signed service: histograms that may see negative values.
#[derive(Metrics)]
#[metrics(service = "signed")]
pub struct Signed {
    /// A temperature change, below and above zero
    #[metric(buckets = [-10.0, 0.0, 10.0])]
    pub delta: Histogram,
    /// Positive buckets, a negative observation
    #[metric(buckets = [1.0, 2.0])]
    pub skew: Histogram,
    /// Positive buckets and observations
    #[metric(buckets = [1.0, 2.0])]
    pub wait_seconds: Histogram,
    /// By side, below and above zero
    #[metric(labels = ["side"], buckets = [-1.0, 1.0])]
    pub offset: HistogramVec,
}

#[test]
fn openmetrics_histograms_have_a_sum_only_where_openmetrics_allows_one() {
    let registry = Registry::new();
    let m = Signed::register(&registry).unwrap();
    m.delta.observe(-3.0);
    m.delta.observe(5.0);
    m.skew.observe(-4.0);
    m.wait_seconds.observe(1.5);
    m.offset.with_label_values(&["left"]).observe(-0.5);
    // Another collector's histogram with negative buckets goes through the bridge.
    let theirs = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("other_offset", "Offsets").buckets(vec![-1.0, 1.0]),
    )
    .unwrap();
    theirs.observe(0.5);
    registry.register(Box::new(theirs)).unwrap();

    let body = String::from_utf8(exposition::encode(&registry, Format::OpenMetrics)).unwrap();
    python_openmetrics(&body)
        .unwrap_or_else(|err| panic!("prometheus_client refused the body: {err}\n{body}"));
    for name in [
        "signed_delta",
        "signed_skew",
        "signed_offset",
        "other_offset",
    ] {
        assert!(!body.contains(&format!("{name}_sum")), "{name}: {body}");
        assert!(!body.contains(&format!("{name}_count")), "{name}: {body}");
        assert!(body.contains(&format!("{name}_bucket")), "{name}: {body}");
    }
    assert!(body.contains("signed_wait_seconds_sum 1.5\n"), "{body}");
    assert!(body.contains("signed_wait_seconds_count 1\n"), "{body}");
    // The Prometheus text format keeps them, as prometheus' TextEncoder.
    let text = ours(&registry);
    assert!(text.contains("signed_delta_sum 2\n"), "{text}");
    assert!(text.contains("other_offset_sum 0.5\n"), "{text}");
    assert_same(&parse(&text), &parse(&text_encoder(&registry)));
}
