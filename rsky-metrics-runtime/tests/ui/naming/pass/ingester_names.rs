//! Every ingester metric name of the services spec, declared as-is.

use rsky_metrics_runtime::{testing, IntCounter, IntGauge, Metrics, Registry};

#[derive(Metrics)]
#[metrics(service = "ingester")]
pub struct IngesterMetrics {
    /// Firehose events
    pub firehose_events: IntCounter,
    /// Firehose create events
    pub firehose_create_events: IntCounter,
    /// Firehose update events
    pub firehose_update_events: IntCounter,
    /// Firehose delete events
    pub firehose_delete_events: IntCounter,
    /// Firehose filtered operations
    pub firehose_filtered_operations: IntCounter,
    /// Stream events
    pub stream_events: IntCounter,
    /// Errors
    pub errors: IntCounter,
    /// Labeler events
    pub labeler_events: IntCounter,
    /// Labels written
    pub labels_written: IntCounter,
    /// Backfill repos fetched
    pub backfill_repos_fetched: IntCounter,
    /// Backfill repos written
    pub backfill_repos_written: IntCounter,
    /// Backfill fetch errors
    pub backfill_fetch_errors: IntCounter,
    /// Backfill cursor skips
    pub backfill_cursor_skips: IntCounter,
    /// Firehose live length
    pub firehose_live_length: IntGauge,
    /// Firehose backfill length
    pub firehose_backfill_length: IntGauge,
    /// Label live length
    pub label_live_length: IntGauge,
    /// Repo backfill length
    pub repo_backfill_length: IntGauge,
    /// Backpressure active
    pub backpressure_active: IntGauge,
    /// Websocket connections
    pub websocket_connections: IntGauge,
    /// Events in memory
    pub events_in_memory: IntGauge,
    /// Backfill complete
    pub backfill_complete: IntGauge,
}

const NAMES: &[&str] = &[
    "ingester_firehose_events_total",
    "ingester_firehose_create_events_total",
    "ingester_firehose_update_events_total",
    "ingester_firehose_delete_events_total",
    "ingester_firehose_filtered_operations_total",
    "ingester_stream_events_total",
    "ingester_errors_total",
    "ingester_labeler_events_total",
    "ingester_labels_written_total",
    "ingester_backfill_repos_fetched_total",
    "ingester_backfill_repos_written_total",
    "ingester_backfill_fetch_errors_total",
    "ingester_backfill_cursor_skips_total",
    "ingester_firehose_live_length",
    "ingester_firehose_backfill_length",
    "ingester_label_live_length",
    "ingester_repo_backfill_length",
    "ingester_backpressure_active",
    "ingester_websocket_connections",
    "ingester_events_in_memory",
    "ingester_backfill_complete",
];

fn main() {
    let declared: Vec<&str> = IngesterMetrics::METRICS.iter().map(|m| m.name).collect();
    assert_eq!(declared, NAMES);
    testing::assert_sets_clean(&[IngesterMetrics::METRICS]);
    let registry = Registry::new();
    IngesterMetrics::register(&registry).unwrap();
    testing::assert_registry_clean(&registry);
}
