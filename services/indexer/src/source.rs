//! What the entries of a consumed stream mean: the indexer's [`Processor`] for the shared
//! stream worker (`rsky_common::worker`), which reads a batch (own pending entries first),
//! settles each entry as decided here, and keeps the stream's housekeeping.
//!
//! A batch is indexed with a concurrency limit: events of one DID in order, DIDs concurrently;
//! labels in stream order. A database that cannot be reached pauses the worker (no entry is
//! charged for it); an entry the database refuses is retried and dead-lettered by the shared
//! retry policy.
//!
//! An entry is acknowledged (XACK + XDEL) only after its transaction committed, or when it was
//! rejected as invalid input. Entries whose work failed otherwise stay pending and are
//! delivered again; those the database refused (not a lost connection) go to the dead-letter
//! stream once they have been delivered `INDEXER_MAX_DELIVERIES` times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use deadpool_postgres::Pool;
use futures::future::BoxFuture;
use futures::StreamExt;
use rsky_common::consumer::StreamEntry;
use rsky_common::event::Label;
use rsky_common::time::now_rfc3339;
use rsky_common::worker::{Processor, Settle};
use rsky_metrics_runtime::{counted, CountAs, CountError, CountOutcome, IntCounterFamily};
use tokio::sync::Semaphore;

use crate::config::{Config, StreamKind};
use crate::db::{self, DbError, FailureClass};
use crate::decode::{decode_event, decode_labels, validate_label, Collection};
use crate::index::{index_event, EventKind, IndexError, Indexed, Prepared};
use crate::labels::{index_labels, LabelsWritten};
use crate::metrics::{ErrorKind, IndexerMetrics, RecordAction, RecordCollection, RecordLabels};

/// Longest pause between retries of a failing batch.
pub(crate) const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

/// What the workers of one indexer share.
pub(crate) struct Shared {
    pub config: Config,
    pub metrics: Arc<IndexerMetrics>,
    pub pool: Pool,
    /// One permit per event being indexed, over all streams (`INDEXER_CONCURRENCY`).
    pub permits: Semaphore,
    /// The last pending count of each stream; `pending_messages` is their sum.
    pub pending: Vec<AtomicI64>,
}

impl Shared {
    fn set_pending(&self, slot: usize, count: u64) {
        self.pending[slot].store(count as i64, Ordering::Relaxed);
        let total = self.pending.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        self.metrics.pending_messages.set(total);
    }
}

/// What happened to one entry.
#[derive(Debug)]
enum Outcome {
    /// Indexed and committed (or nothing to do).
    Done,
    /// Invalid input: counted and acknowledged.
    Rejected,
    /// Not tried, to keep the order behind an earlier failure; stays pending.
    Deferred,
    /// Not indexed; stays pending.
    Failed { class: FailureClass, reason: String },
}

/// `#[counted]` counts a write in `errors` when its entry was rejected or failed (under its kind).
impl CountOutcome for Outcome {
    fn is_error(&self) -> bool {
        matches!(self, Outcome::Rejected | Outcome::Failed { .. })
    }
}

/// The kind a rejected or failed entry counts under in `errors` (`Done` and `Deferred` are not
/// errors: `#[counted]` never counts them).
impl CountAs<ErrorKind> for Outcome {
    fn count_as(&self) -> ErrorKind {
        match self {
            Outcome::Failed { class, .. } => ErrorKind::of(*class),
            Outcome::Done | Outcome::Rejected | Outcome::Deferred => ErrorKind::InvalidInput,
        }
    }
}

/// `#[counted]` counts a write returning a rejected or failed [`Outcome`] under its kind.
impl CountError<Outcome> for IntCounterFamily<ErrorKind> {
    fn count_error(&self, returned: &Outcome) {
        if returned.is_error() {
            self[returned.count_as()].inc();
        }
    }
}

impl Outcome {
    /// What the stream worker does with the entry.
    fn settle(self) -> Settle {
        match self {
            Outcome::Done | Outcome::Rejected => Settle::Ack,
            Outcome::Deferred => Settle::Defer,
            Outcome::Failed {
                class: FailureClass::Unavailable,
                reason,
            } => Settle::Pause { reason },
            Outcome::Failed { reason, .. } => Settle::Retry { reason },
        }
    }
}

/// The indexer's half of the stream worker of one stream: what its entries mean.
pub(crate) struct IndexProcessor {
    shared: Arc<Shared>,
    kind: StreamKind,
    slot: usize,
    stream: String,
}

impl Processor for IndexProcessor {
    async fn process(&self, entries: &[StreamEntry]) -> Vec<Settle> {
        let outcomes = match self.kind {
            StreamKind::Firehose => self.index_events(entries).await,
            StreamKind::Labels => self.index_label_entries(entries).await,
        };
        outcomes.into_iter().map(Outcome::settle).collect()
    }

    async fn recovered(&self) -> bool {
        db::is_reachable(&self.shared.pool).await
    }

    fn dead_lettered(&self, _entry: &StreamEntry, _reason: &str) {
        self.shared.metrics.dead_lettered.inc();
    }

    fn ack_failed(&self, entries: usize) {
        self.shared.metrics.ack_failures.inc_by(entries as u64);
    }

    fn trimmed(&self, entries: u64) {
        self.shared.metrics.trimmed_entries.inc_by(entries);
    }

    fn sampled_pending(&self, pending: u64) {
        self.shared.set_pending(self.slot, pending);
    }
}

impl IndexProcessor {
    pub fn new(shared: Arc<Shared>, stream: String, kind: StreamKind, slot: usize) -> Self {
        IndexProcessor {
            shared,
            kind,
            slot,
            stream,
        }
    }

    fn stream(&self) -> &str {
        &self.stream
    }

    /// Indexes firehose entries: events of one DID in order, DIDs concurrently.
    async fn index_events(&self, entries: &[StreamEntry]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(entries.len());
        let mut prepared: Vec<Option<Prepared>> = Vec::with_capacity(entries.len());
        let mut by_did: HashMap<String, Vec<usize>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry.fields.is_empty() {
                // Deleted from the stream while pending: nothing left to index.
                outcomes.push(Some(Outcome::Done));
                prepared.push(None);
                continue;
            }
            match decode_event(entry).and_then(Prepared::new) {
                Ok(p) => {
                    let did = p.did().to_owned();
                    by_did
                        .entry(did.clone())
                        .or_insert_with(|| {
                            order.push(did);
                            Vec::new()
                        })
                        .push(i);
                    prepared.push(Some(p));
                    outcomes.push(None);
                }
                Err(err) => {
                    self.count_error(FailureClass::Expected);
                    tracing::warn!(stream = self.stream(), id = %entry.id, error = %err,
                        "invalid event rejected");
                    prepared.push(None);
                    outcomes.push(Some(Outcome::Rejected));
                }
            }
        }
        let groups: Vec<Vec<usize>> = order
            .into_iter()
            .filter_map(|did| by_did.remove(&did))
            .collect();
        let prepared = &prepared;
        let results: Vec<Vec<(usize, Outcome)>> = futures::stream::iter(groups)
            .map(|group| -> BoxFuture<'_, Vec<(usize, Outcome)>> {
                Box::pin(self.index_group(entries, prepared, group))
            })
            .buffer_unordered(self.shared.config.concurrency)
            .collect()
            .await;
        for (i, outcome) in results.into_iter().flatten() {
            outcomes[i] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Done))
            .collect()
    }

    /// Indexes the events of one DID, in stream order.
    async fn index_group(
        &self,
        entries: &[StreamEntry],
        prepared: &[Option<Prepared>],
        group: Vec<usize>,
    ) -> Vec<(usize, Outcome)> {
        let mut out = Vec::with_capacity(group.len());
        for i in group {
            if let Some(p) = &prepared[i] {
                out.push((i, self.index_one(&entries[i], p).await));
            }
        }
        out
    }

    async fn index_one(&self, entry: &StreamEntry, prepared: &Prepared) -> Outcome {
        let shared = &self.shared;
        let Ok(_permit) = shared.permits.acquire().await else {
            return Outcome::Failed {
                class: FailureClass::Unavailable,
                reason: "the indexer is shutting down".to_owned(),
            };
        };
        self.write_event(entry, prepared).await
    }

    /// One event's transaction, run while it holds a permit. `#[counted]` counts the attempt,
    /// keeps it in `active_tasks` until it returns (or panics, or is dropped) and counts a
    /// rejected or failed outcome in `errors`; `write_duration_seconds` is observed by hand, for
    /// committed transactions only.
    #[counted(metrics = &self.shared.metrics, events = write_attempts, errors = errors,
              in_flight = active_tasks)]
    async fn write_event(&self, entry: &StreamEntry, prepared: &Prepared) -> Outcome {
        let shared = &self.shared;
        let started = Instant::now();
        let now = now_rfc3339();
        let result: Result<Indexed, IndexError> = async {
            let mut client = shared.pool.get().await?;
            let tx = client.transaction().await?;
            let indexed = index_event(&tx, prepared, &now).await?;
            tx.commit().await?;
            Ok(indexed)
        }
        .await;
        match result {
            Ok(indexed) => {
                self.count_indexed(&indexed);
                self.observe_commit(entry, started);
                Outcome::Done
            }
            Err(err) => self.failure(entry, err.class(), err.to_string()),
        }
    }

    /// Indexes label entries in stream order, each in its own transaction: a negation must
    /// not commit before the label it negates (labels are few next to firehose events).
    async fn index_label_entries(&self, entries: &[StreamEntry]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(entries.len());
        for entry in entries {
            let outcome = if outcomes.iter().any(|o| matches!(o, Outcome::Failed { .. })) {
                // After a failure, later labels wait for it, so they are applied after it.
                Outcome::Deferred
            } else {
                self.index_label_entry(entry).await
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn index_label_entry(&self, entry: &StreamEntry) -> Outcome {
        let shared = &self.shared;
        let metrics = &shared.metrics;
        if entry.fields.is_empty() {
            return Outcome::Done;
        }
        let event = match decode_labels(entry) {
            Ok(event) => event,
            Err(err) => {
                self.count_error(FailureClass::Expected);
                tracing::warn!(stream = self.stream(), id = %entry.id, error = %err,
                    "invalid label entry rejected");
                return Outcome::Rejected;
            }
        };
        let mut valid: Vec<&Label> = Vec::with_capacity(event.labels.len());
        let mut invalid = 0u64;
        for label in &event.labels {
            match validate_label(label) {
                Ok(()) => valid.push(label),
                Err(err) => {
                    invalid += 1;
                    tracing::warn!(stream = self.stream(), id = %entry.id, error = %err,
                        "invalid label skipped");
                }
            }
        }
        let written = if valid.is_empty() {
            Default::default()
        } else {
            let Ok(_permit) = shared.permits.acquire().await else {
                return Outcome::Failed {
                    class: FailureClass::Unavailable,
                    reason: "the indexer is shutting down".to_owned(),
                };
            };
            match self.write_labels(entry, &valid).await {
                Ok(written) => written,
                Err(outcome) => return outcome,
            }
        };
        // Counted once the entry is settled, so a retried entry is not counted twice.
        metrics.labels_processed.inc_by(event.labels.len() as u64);
        metrics.labels_added.inc_by(written.added);
        metrics.labels_removed.inc_by(written.removed);
        for _ in 0..invalid {
            self.count_error(FailureClass::Expected);
        }
        Outcome::Done
    }

    /// One label entry's transaction, run while it holds a permit; counted like
    /// [`IndexProcessor::write_event`]. `Err` is the entry's outcome when the transaction failed.
    #[counted(metrics = &self.shared.metrics, events = write_attempts, errors = errors,
              in_flight = active_tasks)]
    async fn write_labels(
        &self,
        entry: &StreamEntry,
        valid: &[&Label],
    ) -> Result<LabelsWritten, Outcome> {
        let shared = &self.shared;
        let started = Instant::now();
        let result: Result<_, DbError> = async {
            let mut client = shared.pool.get().await?;
            let tx = client.transaction().await?;
            let written = index_labels(&tx, valid).await?;
            tx.commit().await?;
            Ok(written)
        }
        .await;
        match result {
            Ok(written) => {
                shared.metrics.db_writes.inc();
                self.observe_commit(entry, started);
                Ok(written)
            }
            Err(err) => Err(self.failure(entry, err.class(), err.to_string())),
        }
    }

    /// The outcome of a failed write, counted in `expected_errors` or `unexpected_errors`.
    /// Only the `#[counted]` writes call it: they count the failure in `errors` themselves.
    fn failure(&self, entry: &StreamEntry, class: FailureClass, reason: String) -> Outcome {
        self.count_class(class);
        match class {
            FailureClass::Expected => {
                tracing::warn!(stream = self.stream(), id = %entry.id, error = %reason,
                    "the database rejected the event as invalid");
                Outcome::Rejected
            }
            _ => {
                tracing::warn!(stream = self.stream(), id = %entry.id, error = %reason,
                    deliveries = entry.deliveries, "indexing failed; the entry will be retried");
                Outcome::Failed { class, reason }
            }
        }
    }

    /// An entry or label that failed outside a write: `errors` and its class.
    fn count_error(&self, class: FailureClass) {
        self.shared.metrics.errors[ErrorKind::of(class)].inc();
        self.count_class(class);
    }

    fn count_class(&self, class: FailureClass) {
        let metrics = &self.shared.metrics;
        match class {
            FailureClass::Expected => metrics.expected_errors.inc(),
            FailureClass::Unavailable | FailureClass::Unexpected => metrics.unexpected_errors.inc(),
        }
    }

    fn count_indexed(&self, indexed: &Indexed) {
        let m = &self.shared.metrics;
        m.events_processed.inc();
        m.db_writes.inc();
        match indexed.kind {
            EventKind::Create => m.create_events.inc(),
            EventKind::Update => m.update_events.inc(),
            EventKind::Delete => m.delete_events.inc(),
            EventKind::Repo => m.repo_events.inc(),
            EventKind::Account => m.account_events.inc(),
            EventKind::Identity => m.identity_events.inc(),
        }
        match indexed.collection {
            Some(Collection::Post) => m.post_events.inc(),
            Some(Collection::Like) => m.like_events.inc(),
            Some(Collection::Repost) => m.repost_events.inc(),
            Some(Collection::Follow) => m.follow_events.inc(),
            Some(Collection::Block) => m.block_events.inc(),
            Some(Collection::Profile) => m.profile_events.inc(),
            None => {}
        }
        let action = match indexed.kind {
            EventKind::Create => Some(RecordAction::Create),
            EventKind::Update => Some(RecordAction::Update),
            EventKind::Delete => Some(RecordAction::Delete),
            EventKind::Repo | EventKind::Account | EventKind::Identity => None,
        };
        let collection = indexed.collection.map(|c| match c {
            Collection::Post => RecordCollection::Post,
            Collection::Like => RecordCollection::Like,
            Collection::Repost => RecordCollection::Repost,
            Collection::Follow => RecordCollection::Follow,
            Collection::Block => RecordCollection::Block,
            Collection::Profile => RecordCollection::Profile,
        });
        if let (Some(collection), Some(action)) = (collection, action) {
            m.records_by_collection[RecordLabels { collection, action }].inc();
        }
    }

    fn observe_commit(&self, entry: &StreamEntry, started: Instant) {
        let m = &self.shared.metrics;
        m.write_duration_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Some(added_ms) = entry.added_at_ms() {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            m.stream_to_commit_seconds
                .observe(now_ms.saturating_sub(added_ms) as f64 / 1000.0);
        }
    }
}
