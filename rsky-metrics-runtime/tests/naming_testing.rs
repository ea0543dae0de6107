//! The `testing` helpers: metric sets and real exposition text checked against the naming rules,
//! and a scrape of one metric of every kind that `promtool check metrics` accepts as it is.

use rsky_metrics_runtime::testing::{self, Rule};
use rsky_metrics_runtime::{
    encode_text, Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Metrics, MetricsServer, Registry,
};

/// One metric of every kind the derive supports.
#[derive(Metrics)]
#[metrics(service = "kinds")]
pub struct EveryKind {
    /// Requests handled
    pub requests: IntCounter,
    /// CPU time used
    #[metric(unit = "seconds")]
    pub cpu_seconds: Counter,
    /// Items waiting
    pub queue_length: IntGauge,
    /// Fraction of the cache in use
    #[metric(unit = "ratio")]
    pub cache_used_ratio: Gauge,
    /// Time to handle one request
    #[metric(buckets = [0.005, 0.05, 0.5, 5.0])]
    pub request_duration_seconds: Histogram,
    /// Events by stream and outcome
    #[metric(labels = ["stream", "outcome"])]
    pub events: IntCounterVec,
    /// Bytes written by stream
    #[metric(labels = ["stream"])]
    pub written_bytes: CounterVec,
    /// Length of each stream
    #[metric(labels = ["stream"])]
    pub stream_length: IntGaugeVec,
    /// Temperature by sensor
    #[metric(labels = ["sensor"])]
    pub temperature_celsius: GaugeVec,
    /// Payload sizes by stream
    #[metric(labels = ["stream"], buckets = [64.0, 1024.0, 65536.0])]
    pub payload_bytes: HistogramVec,
}

/// A second set whose histogram's `_count` is the first one's counter.
#[derive(Metrics)]
#[metrics(service = "kinds")]
pub struct Overlapping {
    /// Requests, timed: a histogram `kinds_requests` reserves the counter's stem
    pub requests: Histogram,
}

/// A set with a gauge named like a histogram series of `EveryKind`.
#[derive(Metrics)]
#[metrics(service = "kinds")]
pub struct SumGauge {
    /// Sum of request durations
    #[metric(name = "request_duration_seconds_sum_value")]
    pub sum: Gauge,
}

fn scrape_of_every_kind() -> String {
    let registry = Registry::new();
    let m = EveryKind::register(&registry).unwrap();
    m.requests.inc();
    m.cpu_seconds.inc_by(0.25);
    m.queue_length.set(3);
    m.cache_used_ratio.set(0.5);
    m.request_duration_seconds.observe(0.02);
    m.events.with_label_values(&["live", "ok"]).inc();
    m.written_bytes.with_label_values(&["live"]).inc_by(512.0);
    m.stream_length.with_label_values(&["live"]).set(7);
    m.temperature_celsius.with_label_values(&["cpu"]).set(41.5);
    m.payload_bytes.with_label_values(&["live"]).observe(100.0);
    encode_text(&registry)
}

#[test]
fn promtool_reports_nothing_on_a_scrape_of_every_kind() {
    testing::assert_promtool_clean(&scrape_of_every_kind());
}

#[test]
fn the_lint_reports_nothing_on_a_scrape_of_every_kind() {
    testing::assert_exposition_clean(&scrape_of_every_kind());
}

#[test]
fn the_lint_and_promtool_both_flag_bad_exposition() {
    for text in [
        "# HELP svc_latency_ms Latency\n# TYPE svc_latency_ms gauge\nsvc_latency_ms 1\n",
        "# HELP svc_requests Requests\n# TYPE svc_requests counter\nsvc_requests 1\n",
        "# TYPE svc_queue gauge\nsvc_queue 1\n",
        "# HELP svc_queueLength Queue\n# TYPE svc_queueLength gauge\nsvc_queueLength 1\n",
    ] {
        assert!(
            testing::promtool_check(text).is_err(),
            "promtool accepted:\n{text}"
        );
        assert!(
            !testing::lint_exposition(text).is_empty(),
            "the lint accepted:\n{text}"
        );
    }
}

#[test]
fn build_info_and_process_metrics_of_the_server_are_clean() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let registry = Registry::new();
        EveryKind::register(&registry).unwrap();
        let server = MetricsServer::for_set::<EveryKind>()
            .listen("127.0.0.1:0".parse().unwrap())
            .registry(registry.clone())
            .bind()
            .await
            .unwrap();
        let text = encode_text(&registry);
        assert!(text.contains("kinds_build_info"), "{text}");
        testing::assert_registry_clean(&registry);
        drop(server);
    });
}

#[test]
fn clean_sets_have_no_findings() {
    assert_eq!(
        testing::check_sets(&[EveryKind::METRICS, SumGauge::METRICS]),
        vec![]
    );
}

#[test]
fn check_sets_finds_a_suffix_clash_across_sets() {
    let findings = testing::check_sets(&[EveryKind::METRICS, Overlapping::METRICS]);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].rule, Rule::FamilyClash);
    assert_eq!(findings[0].metric, "kinds_requests");
    assert!(
        findings[0].message.contains("kinds_requests_total"),
        "{}",
        findings[0]
    );
    assert!(
        findings[0].message.contains("field `requests`"),
        "{}",
        findings[0]
    );
}

#[test]
fn check_sets_finds_a_set_listed_twice() {
    let findings = testing::check_sets(&[SumGauge::METRICS, SumGauge::METRICS]);
    assert_eq!(findings.len(), 1);
    assert!(findings[0].message.contains("declared twice"));
}

#[test]
#[should_panic(expected = "naming problem")]
fn assert_sets_clean_panics_listing_the_findings() {
    testing::assert_sets_clean(&[EveryKind::METRICS, Overlapping::METRICS]);
}

#[test]
#[should_panic(expected = "abbreviated-unit")]
fn assert_exposition_clean_panics_naming_the_rule() {
    testing::assert_exposition_clean(
        "# HELP svc_latency_ms Latency\n# TYPE svc_latency_ms gauge\nsvc_latency_ms 1\n",
    );
}
