//! The metric names that the services' spec fixes (`specs/services.md`, "The metrics each
//! service exports"): dashboards and alerts read them, so a service test checks its scrape
//! against these lists. Counters end in `_total`; every other name is a gauge.
//!
//! The lists live here once; the trybuild pass files of `rsky-metrics-runtime` stay
//! self-contained on purpose.

/// The 21 metrics of the ingester.
pub const INGESTER_METRICS: &[&str] = &[
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

/// The 12 metrics of the backfiller.
pub const BACKFILLER_METRICS: &[&str] = &[
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

/// The 23 metrics of the indexer.
pub const INDEXER_METRICS: &[&str] = &[
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

/// Each service's name (the prefix of its metrics) with its list, in the spec's order.
pub const BY_SERVICE: &[(&str, &[&str])] = &[
    ("ingester", INGESTER_METRICS),
    ("backfiller", BACKFILLER_METRICS),
    ("indexer", INDEXER_METRICS),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_names_56_metrics_each_once_under_its_service() {
        let mut seen = std::collections::BTreeSet::new();
        for (service, names) in BY_SERVICE {
            for name in *names {
                assert!(
                    name.starts_with(&format!("{service}_")),
                    "{name} under {service}"
                );
                assert!(seen.insert(*name), "{name} listed twice");
            }
        }
        assert_eq!(seen.len(), 56);
    }
}
