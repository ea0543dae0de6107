//! Every backfiller metric name of the services spec, declared as-is.

use rsky_metrics_runtime::{testing, IntCounter, IntGauge, Metrics, Registry};

#[derive(Metrics)]
#[metrics(service = "backfiller")]
pub struct BackfillerMetrics {
    /// Repos processed
    pub repos_processed: IntCounter,
    /// Repos failed
    pub repos_failed: IntCounter,
    /// Repos dead lettered
    pub repos_dead_lettered: IntCounter,
    /// Records extracted
    pub records_extracted: IntCounter,
    /// Records filtered
    pub records_filtered: IntCounter,
    /// Retries attempted
    pub retries_attempted: IntCounter,
    /// Car fetch errors
    pub car_fetch_errors: IntCounter,
    /// Car parse errors
    pub car_parse_errors: IntCounter,
    /// Verification errors
    pub verification_errors: IntCounter,
    /// Repos waiting
    pub repos_waiting: IntGauge,
    /// Repos running
    pub repos_running: IntGauge,
    /// Output stream length
    pub output_stream_length: IntGauge,
}

const NAMES: &[&str] = &[
    "backfiller_repos_processed_total",
    "backfiller_repos_failed_total",
    "backfiller_repos_dead_lettered_total",
    "backfiller_records_extracted_total",
    "backfiller_records_filtered_total",
    "backfiller_retries_attempted_total",
    "backfiller_car_fetch_errors_total",
    "backfiller_car_parse_errors_total",
    "backfiller_verification_errors_total",
    "backfiller_repos_waiting",
    "backfiller_repos_running",
    "backfiller_output_stream_length",
];

fn main() {
    let declared: Vec<&str> = BackfillerMetrics::METRICS.iter().map(|m| m.name).collect();
    assert_eq!(declared, NAMES);
    testing::assert_sets_clean(&[BackfillerMetrics::METRICS]);
    let registry = Registry::new();
    BackfillerMetrics::register(&registry).unwrap();
    testing::assert_registry_clean(&registry);
}
