//! The ingester's metrics, under the names dashboards and alerts already use.

use rsky_common::store::StoreError;
use rsky_metrics_runtime::{
    CountAs, Histogram, IntCounter, IntCounterFamily, IntGauge, LabelValue, Metrics,
};

/// What an ingester error was: the `kind` label of `ingester_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
#[label(name = "kind")]
pub enum ErrorKind {
    /// A websocket connection that could not be opened, failed or ended unexpectedly
    Connection,
    /// A websocket that did not connect (TCP, TLS and upgrade) within the connect timeout, or
    /// from which nothing (frame, ping or pong) arrived within the read-idle timeout
    Timeout,
    /// A `#error` frame sent by a relay or a labeler
    ErrorFrame,
    /// A frame or block that could not be decoded (CBOR, CAR, record), or a text message
    Decode,
    /// Well-formed input that breaks a rule: an invalid DID or repo path, a missing CID or
    /// block, a stored cursor that is not a sequence number
    InvalidInput,
    /// A Redis command or batch write that failed
    Redis,
    /// An event or label batch that could not be serialized to JSON
    Serialize,
    /// A listRepos page that could not be fetched or read (see `ingester_backfill_fetch_errors_total`)
    ListRepos,
    /// A task that panicked
    #[label(panic)]
    Panic,
}

impl CountAs<ErrorKind> for StoreError {
    fn count_as(&self) -> ErrorKind {
        ErrorKind::Redis
    }
}

/// Every metric of the ingester. Registered at start, so each is on the first scrape at zero.
///
/// The service takes this set by reference: `main` passes [`IngesterMetrics::global`], tests a
/// set registered in a fresh `Registry` each, so parallel tests never share counters.
#[derive(Metrics)]
#[metrics(service = "ingester")]
pub struct IngesterMetrics {
    /// Firehose frames received (every websocket binary message, well-formed or not)
    pub firehose_events: IntCounter,
    /// Create operations forwarded from firehose commits
    pub firehose_create_events: IntCounter,
    /// Update operations forwarded from firehose commits
    pub firehose_update_events: IntCounter,
    /// Delete operations forwarded from firehose commits
    pub firehose_delete_events: IntCounter,
    /// Commit operations skipped because their collection is outside app.bsky. and chat.bsky.
    pub firehose_filtered_operations: IntCounter,
    /// Entries written to the firehose_live stream
    pub stream_events: IntCounter,
    /// Errors by kind: error frames, malformed frames, invalid operations, failed connections and writes
    pub errors: IntCounterFamily<ErrorKind>,
    /// Frames received from labelers (subscribeLabels)
    pub labeler_events: IntCounter,
    /// Labels written to the label_live stream
    pub labels_written: IntCounter,
    /// Repositories listed by listRepos
    pub backfill_repos_fetched: IntCounter,
    /// Repositories written to the repo_backfill stream
    pub backfill_repos_written: IntCounter,
    /// listRepos requests that failed (connection, HTTP status or body)
    pub backfill_fetch_errors: IntCounter,
    /// Hosts whose listRepos was skipped because their cursor says it already finished
    pub backfill_cursor_skips: IntCounter,
    /// Length of the firehose_live stream, sampled every 10 seconds
    pub firehose_live_length: IntGauge,
    /// Length of the firehose_backfill stream, sampled every 10 seconds
    pub firehose_backfill_length: IntGauge,
    /// Length of the label_live stream, sampled every 10 seconds
    pub label_live_length: IntGauge,
    /// Length of the repo_backfill stream, sampled every 10 seconds
    pub repo_backfill_length: IntGauge,
    /// 1 while writing waits for firehose_live to drain below the high-water mark, else 0
    pub backpressure_active: IntGauge,
    /// 1 while listRepos waits for repo_backfill to drain below its high-water mark, else 0
    pub backfill_backpressure_active: IntGauge,
    /// Open websocket connections (relays and labelers)
    pub websocket_connections: IntGauge,
    /// Events decoded but not yet written to Redis
    pub events_in_memory: IntGauge,
    /// 1 once listRepos finished on every host, else 0
    pub backfill_complete: IntGauge,
    /// Atomic batch writes (XADDs plus cursor) sent to Redis, failed ones included
    pub batch_writes: IntCounter,
    /// Time to write one batch to Redis
    #[metric(unit = "seconds", buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])]
    pub batch_write_seconds: Histogram,
    /// listRepos requests sent, failed ones included
    pub list_repos_requests: IntCounter,
    /// Time to fetch one listRepos page
    #[metric(unit = "seconds", buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])]
    pub list_repos_seconds: Histogram,
}
