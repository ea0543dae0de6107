//! Clashes across metric sets at registration: a name taken by another set, directly or through a
//! suffix, is an error naming both declarations, and nothing of the failed set stays registered.

use rsky_metrics_runtime::{
    encode_text, testing, Error, Histogram, IntCounter, IntGauge, Metrics, Registry,
};

/// A histogram `clash_latency_seconds` (owns `_bucket`, `_sum`, `_count`).
#[derive(Metrics)]
#[metrics(service = "clash")]
pub struct HistogramSet {
    /// Time to handle one request
    pub latency_seconds: Histogram,
}

/// A counter whose family `clash_latency_seconds_count` is the histogram's count series.
#[derive(Metrics)]
#[metrics(service = "clash")]
pub struct CountSet {
    /// Registered before the clash is found
    pub fresh: IntGauge,
    /// Requests timed
    pub latency_seconds_count: IntCounter,
}

/// A gauge named like the histogram's sum series.
#[derive(Metrics)]
#[metrics(service = "clash")]
pub struct SumSet {
    /// Seconds spent in total
    pub latency_seconds_sum_value: IntGauge,
    /// Sum of latencies
    #[metric(name = "latency_sum_seconds")]
    pub sum: IntGauge,
}

#[test]
fn a_counter_named_after_a_histograms_count_series_is_a_clash_naming_both() {
    let registry = Registry::new();
    HistogramSet::register(&registry).unwrap();
    let err = CountSet::register(&registry)
        .err()
        .expect("the suffix clash must fail");
    let message = err.to_string();
    assert!(matches!(err, Error::Clash { .. }), "{message}");
    assert!(
        message.contains("CountSet.latency_seconds_count"),
        "{message}"
    );
    assert!(
        message.contains("HistogramSet.latency_seconds"),
        "{message}"
    );
    assert!(message.contains("clash_latency_seconds_count"), "{message}");
}

#[test]
fn the_clash_is_found_whichever_set_registers_first() {
    let registry = Registry::new();
    CountSet::register(&registry).unwrap();
    let message = HistogramSet::register(&registry)
        .err()
        .expect("the suffix clash must fail")
        .to_string();
    assert!(
        message.contains("HistogramSet.latency_seconds"),
        "{message}"
    );
    assert!(
        message.contains("CountSet.latency_seconds_count"),
        "{message}"
    );
}

#[test]
fn nothing_of_a_set_that_failed_on_a_suffix_clash_stays_registered() {
    let registry = Registry::new();
    HistogramSet::register(&registry).unwrap();
    assert!(CountSet::register(&registry).is_err());
    assert!(
        !encode_text(&registry).contains("clash_fresh"),
        "a failed set left metrics behind"
    );
    // Its reservations are gone too: a set without the clashing field registers fine.
    /// Only the gauge of `CountSet`.
    #[derive(Metrics)]
    #[metrics(service = "clash")]
    pub struct FreshOnly {
        /// Registered before the clash is found
        pub fresh: IntGauge,
    }
    FreshOnly::register(&registry).unwrap().fresh.set(1);
}

#[test]
fn a_failed_histogram_leaves_no_reservation_behind() {
    let registry = Registry::new();
    CountSet::register(&registry).unwrap();
    assert!(HistogramSet::register(&registry).is_err());
    // The histogram registered its own name before its `_count` clashed: it must be gone.
    assert!(!encode_text(&registry).contains("clash_latency_seconds_bucket"));
}

#[test]
fn the_same_sets_in_separate_registries_do_not_clash() {
    for _ in 0..2 {
        let registry = Registry::new();
        HistogramSet::register(&registry).unwrap();
        SumSet::register(&registry).unwrap();
    }
    let other = Registry::new();
    CountSet::register(&other).unwrap();
}

#[test]
fn reservations_do_not_show_on_the_scrape() {
    let registry = Registry::new();
    let set = HistogramSet::register(&registry).unwrap();
    set.latency_seconds.observe(0.2);
    let text = encode_text(&registry);
    assert_eq!(text.matches("# TYPE").count(), 1, "{text}");
    testing::assert_exposition_clean(&text);
}
