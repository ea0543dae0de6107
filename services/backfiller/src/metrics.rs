//! The backfiller's metrics. The names of the spec's metrics are fixed (dashboards and alerts use
//! them); the others are additions declared the same way.
//!
//! Main uses [`BackfillerMetrics::global`]; tests call [`BackfillerMetrics::register`] with a
//! registry of their own so that they can run in parallel.

use rsky_metrics_runtime::{
    CountAs, Histogram, IntCounter, IntCounterFamily, IntGauge, LabelValue, Metrics,
};

use crate::repo::LoadError;
use crate::worker::Failure;

/// What a failed attempt failed on: the `kind` label of `backfiller_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
#[label(name = "kind")]
pub enum ErrorKind {
    /// A repo_backfill entry that is not a BackfillEvent (dead-lettered at once)
    InvalidInput,
    /// The DID could not be resolved (also in `backfiller_did_resolution_errors_total`)
    DidResolution,
    /// getRepo failed: transport, timeout, non-2xx (also in `backfiller_car_fetch_errors_total`)
    CarFetch,
    /// The CAR could not be read (also in `backfiller_car_parse_errors_total`)
    CarParse,
    /// The commit names another DID or its signature does not verify (also in
    /// `backfiller_verification_errors_total`)
    Verification,
    /// Writing the events to Redis failed
    Redis,
    /// A getRepo or DID-document body larger than its limit (dead-lettered at once; also in
    /// `backfiller_car_fetch_errors_total` or `backfiller_did_resolution_errors_total`)
    TooLarge,
}

impl CountAs<ErrorKind> for Failure {
    fn count_as(&self) -> ErrorKind {
        match self {
            failure if failure.is_too_large() => ErrorKind::TooLarge,
            Failure::Malformed(_) => ErrorKind::InvalidInput,
            Failure::Resolve(_) => ErrorKind::DidResolution,
            Failure::Fetch(_) => ErrorKind::CarFetch,
            Failure::Load(LoadError::Parse { .. }) => ErrorKind::CarParse,
            Failure::Load(LoadError::Verification { .. }) => ErrorKind::Verification,
            Failure::Write { .. } => ErrorKind::Redis,
        }
    }
}

/// Every metric the backfiller exports, registered at start so that each is on the first scrape.
#[derive(Metrics)]
#[metrics(service = "backfiller")]
pub struct BackfillerMetrics {
    /// Repositories written to firehose_backfill and acknowledged
    pub repos_processed: IntCounter,
    /// Processing attempts that ended in an error (retried, paused, dead-lettered or skipped)
    pub repos_failed: IntCounter,
    /// Repositories written to repo_backfill_dlq after their last retry
    pub repos_dead_lettered: IntCounter,
    /// Times the consumer group was gone (NOGROUP: Redis lost its data, or the stream or group was deleted) and was created again; entries lost with it were never processed
    pub consumer_groups_recreated: IntCounter,
    /// Records written to firehose_backfill as create events
    pub records_extracted: IntCounter,
    /// Records left out because their collection is not under app.bsky. or chat.bsky.
    pub records_filtered: IntCounter,
    /// Records left out because they are invalid (a bad repository path, or a block that is not a record); the rest of their repository is written
    pub records_invalid: IntCounter,
    /// Attempts at a repository delivered before: a retry after a failed attempt, a crash or a reclaim
    pub retries_attempted: IntCounter,
    /// getRepo requests that failed: transport errors, timeouts and non-2xx answers
    pub car_fetch_errors: IntCounter,
    /// Repository CARs that could not be read: truncated CARs, missing blocks, bad MST nodes or records
    pub car_parse_errors: IntCounter,
    /// Repositories whose commit names another DID or whose signature does not verify
    pub verification_errors: IntCounter,
    /// Entries of repo_backfill not yet delivered to any backfiller
    pub repos_waiting: IntGauge,
    /// Repositories being processed by this backfiller
    pub repos_running: IntGauge,
    /// Length of firehose_backfill, sampled
    pub output_stream_length: IntGauge,
    /// Repositories acknowledged without retry because the PDS answered RepoNotFound, RepoTakendown or RepoDeactivated
    pub repos_skipped: IntCounter,
    /// DID resolutions that failed: PLC or did:web errors, documents without a PDS or an atproto key
    pub did_resolution_errors: IntCounter,
    /// DID resolutions answered from the Redis cache
    pub did_cache_hits: IntCounter,
    /// 1 while reading waits for firehose_backfill to drain below its high-water mark
    pub backpressure_active: IntGauge,
    /// Time to process one repository attempt: resolve, fetch, verify, decode and write
    #[metric(unit = "seconds", buckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0])]
    pub repo_duration_seconds: Histogram,
    /// Entries removed from repo_backfill by trimming below the oldest unfinished entry
    pub entries_trimmed: IntCounter,
    /// Processing attempts of a repository, first tries and retries (each ends in repos_processed or repos_failed)
    pub repo_attempts: IntCounter,
    /// Failed processing attempts and malformed entries, by kind (the sum is repos_failed, panics aside)
    pub errors: IntCounterFamily<ErrorKind>,
}
