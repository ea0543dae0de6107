//! The indexer's metrics: the names dashboards and alerts already use, plus write latency,
//! stream-to-row latency, dead letters, trims and database pool gauges.
//!
//! Every counter counts work that is done: an event is counted once its database transaction
//! committed, an error once the event was classified.

use rsky_metrics_runtime::{
    Histogram, IntCounter, IntCounterFamily, IntGauge, LabelSet, LabelValue, Metrics,
};

use crate::db::FailureClass;

/// The `collection` label of `indexer_records_by_collection_total`: the six collections with
/// their own table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
pub enum RecordCollection {
    #[label(rename = "app.bsky.feed.post")]
    Post,
    #[label(rename = "app.bsky.feed.like")]
    Like,
    #[label(rename = "app.bsky.feed.repost")]
    Repost,
    #[label(rename = "app.bsky.graph.follow")]
    Follow,
    #[label(rename = "app.bsky.graph.block")]
    Block,
    #[label(rename = "app.bsky.actor.profile")]
    Profile,
}

/// The `action` label of `indexer_records_by_collection_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
pub enum RecordAction {
    Create,
    Update,
    Delete,
}

/// The labels of `indexer_records_by_collection_total`: collection and action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelSet)]
pub struct RecordLabels {
    pub collection: RecordCollection,
    pub action: RecordAction,
}

/// What an indexer error was: the `kind` label of `indexer_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
#[label(name = "kind")]
pub enum ErrorKind {
    /// Invalid input: an event, label or record that does not decode or validate, or that the
    /// database rejects as a data error (acknowledged; also in `indexer_expected_errors_total`)
    InvalidInput,
    /// Systemic: the database cannot be reached or is wrongly set up (connection lost, pool
    /// timeout, a standby, a missing table or privilege, a timeout); left pending, never
    /// dead-lettered
    DatabaseUnavailable,
    /// Another database failure (retried, dead-lettered after too many deliveries)
    Database,
    /// A write that panicked
    #[label(panic)]
    Panic,
}

impl ErrorKind {
    /// The kind a failure of `class` counts as.
    pub fn of(class: FailureClass) -> Self {
        match class {
            FailureClass::Expected => ErrorKind::InvalidInput,
            FailureClass::Unavailable => ErrorKind::DatabaseUnavailable,
            FailureClass::Unexpected => ErrorKind::Database,
        }
    }
}

/// What a stale write was: the `kind` label of `indexer_stale_events_total`. A stale write is
/// one that an order guard skipped because what it would change already holds a newer state (a
/// reclaimed entry replayed late, another indexer of the group behind, a backfilled event after
/// live ones); it is processed and acknowledged, not an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
#[label(name = "kind")]
pub enum StaleKind {
    /// A record create, update or delete older (by rev) than the record's stored revision
    Record,
    /// An account event older (by seq) than the last one applied to its DID
    Account,
    /// An identity event older (by seq) than the last one applied to its DID
    Identity,
    /// A label or negation older (by cts) than the last operation applied to its key
    Label,
}

/// Metrics of the indexer (`indexer_*`). Tests register their own set with
/// `IndexerMetrics::register(&registry)`; the binary uses `IndexerMetrics::global()`.
#[derive(Metrics, Clone)]
#[metrics(service = "indexer")]
pub struct IndexerMetrics {
    /// Stream events whose database work committed (records, repos, accounts, identities)
    pub events_processed: IntCounter,
    /// Record create events indexed
    pub create_events: IntCounter,
    /// Record update events indexed
    pub update_events: IntCounter,
    /// Record delete events indexed (tombstones written)
    pub delete_events: IntCounter,
    /// Repo commit events indexed (actor_sync advanced)
    pub repo_events: IntCounter,
    /// Account status events indexed (actor upstream status)
    pub account_events: IntCounter,
    /// Identity events indexed (actor handle)
    pub identity_events: IntCounter,
    /// Entry writes committed: one per event, one per label entry (on the batched path many share a transaction)
    pub db_writes: IntCounter,
    /// Events or labels that failed, expected or not, by kind
    pub errors: IntCounterFamily<ErrorKind>,
    /// Events or labels rejected as invalid input (bad DID, AT-URI, record, JSON; data errors from the database); acknowledged
    pub expected_errors: IntCounter,
    /// Event failures not caused by the input (database down, timeouts, server errors); left pending and retried
    pub unexpected_errors: IntCounter,
    /// Record events indexed, by collection and action (the six collections with their own table)
    pub records_by_collection: IntCounterFamily<RecordLabels>,
    /// app.bsky.feed.post creates, updates and deletes indexed
    pub post_events: IntCounter,
    /// app.bsky.feed.like creates, updates and deletes indexed
    pub like_events: IntCounter,
    /// app.bsky.feed.repost creates, updates and deletes indexed
    pub repost_events: IntCounter,
    /// app.bsky.graph.follow creates, updates and deletes indexed
    pub follow_events: IntCounter,
    /// app.bsky.graph.block creates, updates and deletes indexed
    pub block_events: IntCounter,
    /// app.bsky.actor.profile creates, updates and deletes indexed
    pub profile_events: IntCounter,
    /// Labels read from the label stream, valid or not
    pub labels_processed: IntCounter,
    /// Labels written to the label table
    pub labels_added: IntCounter,
    /// Negation labels applied (their label removed)
    pub labels_removed: IntCounter,
    /// Events and labels skipped as stale, by kind: older than what their order guard (record rev, account or identity seq, label cts) already holds; processed and acknowledged, not errors
    pub stale_events: IntCounterFamily<StaleKind>,
    /// Stream entries whose acknowledgement (XACK + XDEL) failed; they stay pending and are redelivered
    pub ack_failures: IntCounter,
    /// Entries delivered to the indexer's consumer group and not yet acknowledged (XPENDING, all consumers, all streams)
    pub pending_messages: IntGauge,
    /// Events and label entries being written right now
    pub active_tasks: IntGauge,
    /// Event and label-entry writes tried, one per entry per delivery (a retried entry counts again)
    pub write_attempts: IntCounter,
    /// Entries moved to a dead-letter stream after too many failed deliveries
    pub dead_lettered: IntCounter,
    /// Times the consumer group was gone (NOGROUP: Redis lost its data, or the stream or group was deleted) and was created again; entries lost with it were never processed
    pub consumer_groups_recreated: IntCounter,
    /// Entries removed by safe trimming (acknowledged entries left in a stream)
    pub trimmed_entries: IntCounter,
    /// One committed transaction, from taking the connection to the commit (a read batch on the batched path, an event on the per-event path)
    #[metric(unit = "seconds", buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])]
    pub write_duration_seconds: Histogram,
    /// Time from the entry's XADD to its committed row (from the stream entry ID's timestamp)
    #[metric(unit = "seconds", buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0])]
    pub stream_to_commit_seconds: Histogram,
    /// Database connections in the pool (idle and in use)
    pub db_pool_connections: IntGauge,
    /// Database connections idle in the pool
    pub db_pool_idle_connections: IntGauge,
    /// Tasks waiting for a database connection
    pub db_pool_waiting_tasks: IntGauge,
}
