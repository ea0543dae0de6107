//! Every indexer metric name of the services spec, declared as-is.

use rsky_metrics_runtime::{testing, IntCounter, IntGauge, Metrics, Registry};

#[derive(Metrics)]
#[metrics(service = "indexer")]
pub struct IndexerMetrics {
    /// Events processed
    pub events_processed: IntCounter,
    /// Create events
    pub create_events: IntCounter,
    /// Update events
    pub update_events: IntCounter,
    /// Delete events
    pub delete_events: IntCounter,
    /// Repo events
    pub repo_events: IntCounter,
    /// Account events
    pub account_events: IntCounter,
    /// Identity events
    pub identity_events: IntCounter,
    /// Db writes
    pub db_writes: IntCounter,
    /// Errors
    pub errors: IntCounter,
    /// Expected errors
    pub expected_errors: IntCounter,
    /// Unexpected errors
    pub unexpected_errors: IntCounter,
    /// Post events
    pub post_events: IntCounter,
    /// Like events
    pub like_events: IntCounter,
    /// Repost events
    pub repost_events: IntCounter,
    /// Follow events
    pub follow_events: IntCounter,
    /// Block events
    pub block_events: IntCounter,
    /// Profile events
    pub profile_events: IntCounter,
    /// Labels processed
    pub labels_processed: IntCounter,
    /// Labels added
    pub labels_added: IntCounter,
    /// Labels removed
    pub labels_removed: IntCounter,
    /// Ack failures
    pub ack_failures: IntCounter,
    /// Pending messages
    pub pending_messages: IntGauge,
    /// Active tasks
    pub active_tasks: IntGauge,
}

const NAMES: &[&str] = &[
    "indexer_events_processed_total",
    "indexer_create_events_total",
    "indexer_update_events_total",
    "indexer_delete_events_total",
    "indexer_repo_events_total",
    "indexer_account_events_total",
    "indexer_identity_events_total",
    "indexer_db_writes_total",
    "indexer_errors_total",
    "indexer_expected_errors_total",
    "indexer_unexpected_errors_total",
    "indexer_post_events_total",
    "indexer_like_events_total",
    "indexer_repost_events_total",
    "indexer_follow_events_total",
    "indexer_block_events_total",
    "indexer_profile_events_total",
    "indexer_labels_processed_total",
    "indexer_labels_added_total",
    "indexer_labels_removed_total",
    "indexer_ack_failures_total",
    "indexer_pending_messages",
    "indexer_active_tasks",
];

fn main() {
    let declared: Vec<&str> = IndexerMetrics::METRICS.iter().map(|m| m.name).collect();
    assert_eq!(declared, NAMES);
    testing::assert_sets_clean(&[IndexerMetrics::METRICS]);
    let registry = Registry::new();
    IndexerMetrics::register(&registry).unwrap();
    testing::assert_registry_clean(&registry);
}
