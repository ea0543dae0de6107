//! What the entries of a consumed stream mean: the indexer's [`Processor`] for the shared
//! stream worker (`rsky_common::worker`), which reads a batch (own pending entries first),
//! settles each entry as decided here, and keeps the stream's housekeeping.
//!
//! A read batch is written by [`crate::batch`]: on the batched path (the default) in one
//! transaction of set-based statements, a failing part split until the bad entry is alone; on
//! the per-event path (`INDEXER_WRITE_PATH=per-event`) one transaction per event, events of one
//! DID in order, DIDs concurrently. Labels take the batched path, in stream order.
//!
//! An entry is acknowledged (XACK + XDEL) only after its transaction committed, or when it was
//! rejected as invalid input. A systemic failure (the database unreachable or wrongly set up:
//! see [`crate::db::SQLSTATES`]) pauses the worker, and no entry is charged for it; an entry
//! the database refuses is retried and dead-lettered by the shared retry policy once it has
//! been delivered `STREAM_MAX_DELIVERIES` times.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use deadpool_postgres::Pool;
use futures::FutureExt;
use rsky_common::consumer::StreamEntry;
use rsky_common::event::Label;
use rsky_common::time::now_rfc3339;
use rsky_common::worker::{Processor, Settle};
use rsky_metrics_runtime::IntGauge;

use crate::batch::{self, BatchReport, Outcome, WritePath};
use crate::config::{Config, StreamKind, WritePathSetting};
use crate::db::{self, FailureClass};
use crate::decode::{decode_event, decode_labels, validate_label, Collection};
use crate::index::{EventKind, Indexed, Prepared};
use crate::labels::LabelsWritten;
use crate::metrics::{
    ErrorKind, IndexerMetrics, RecordAction, RecordCollection, RecordLabels, StaleKind,
};

/// What the workers of one indexer share.
pub(crate) struct Shared {
    pub config: Config,
    pub metrics: Arc<IndexerMetrics>,
    pub pool: Pool,
    /// The last pending count of each stream; `pending_messages` is their sum.
    pub pending: Vec<AtomicI64>,
}

impl Shared {
    fn set_pending(&self, slot: usize, count: u64) {
        self.pending[slot].store(count as i64, Ordering::Relaxed);
        let total = self.pending.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        self.metrics.pending_messages.set(total);
    }

    fn write_path(&self) -> WritePath {
        match self.config.write_path {
            WritePathSetting::Batched => WritePath::Batched,
            WritePathSetting::PerEvent => WritePath::PerEvent {
                concurrency: self.config.concurrency,
            },
        }
    }
}

/// Keeps entries in `active_tasks` while they are being written, also when the write panics
/// or is dropped.
struct InFlight<'g> {
    gauge: &'g IntGauge,
    entries: i64,
}

impl<'g> InFlight<'g> {
    fn start(gauge: &'g IntGauge, entries: usize) -> Self {
        let entries = entries as i64;
        gauge.add(entries);
        InFlight { gauge, entries }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.gauge.sub(self.entries);
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
        match self.kind {
            StreamKind::Firehose => self.index_events(entries).await,
            StreamKind::Labels => self.index_label_entries(entries).await,
        }
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

    fn group_recreated(&self) {
        self.shared.metrics.consumer_groups_recreated.inc();
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

    /// Indexes firehose entries: decodes them (invalid ones are rejected and acknowledged),
    /// writes the rest along the configured path, and settles each by its outcome.
    async fn index_events(&self, entries: &[StreamEntry]) -> Vec<Settle> {
        let mut settles: Vec<Option<Settle>> = vec![None; entries.len()];
        let mut prepared: Vec<Prepared> = Vec::with_capacity(entries.len());
        let mut positions: Vec<usize> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if entry.fields.is_empty() {
                // Deleted from the stream while pending: nothing left to index.
                settles[i] = Some(Settle::Ack);
                continue;
            }
            match decode_event(entry).and_then(Prepared::new) {
                Ok(p) => {
                    prepared.push(p);
                    positions.push(i);
                }
                Err(err) if err.is_unwritable() => {
                    // Legal, but no table can hold it as it is: to the dead letters at once,
                    // before any database work (the worker counts it).
                    settles[i] = Some(Settle::DeadLetter {
                        reason: err.to_string(),
                    });
                }
                Err(err) => {
                    self.count_error(FailureClass::Expected);
                    tracing::warn!(stream = self.stream(), id = %entry.id, error = %err,
                        "invalid event rejected");
                    settles[i] = Some(Settle::Ack);
                }
            }
        }
        if !prepared.is_empty() {
            let shared = &self.shared;
            let now = now_rfc3339();
            let write = batch::write_events(&shared.pool, shared.write_path(), &prepared, &now);
            let report = self.write(prepared.len(), write).await;
            for (&i, outcome) in positions.iter().zip(report.outcomes) {
                settles[i] =
                    Some(self.settle(&entries[i], outcome, |indexed| self.count_indexed(indexed)));
            }
        }
        settles
            .into_iter()
            .map(|s| s.unwrap_or(Settle::Ack))
            .collect()
    }

    /// Indexes label entries in stream order, the valid labels of all of them in one
    /// transaction where it commits (a negation never lands before its label: the batch keeps
    /// each label's last operation, and after a failed entry the later ones are deferred).
    async fn index_label_entries(&self, entries: &[StreamEntry]) -> Vec<Settle> {
        let mut settles: Vec<Option<Settle>> = vec![None; entries.len()];
        let mut decoded = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if entry.fields.is_empty() {
                settles[i] = Some(Settle::Ack);
                continue;
            }
            match decode_labels(entry) {
                Ok(event) => decoded.push((i, event)),
                Err(err) => {
                    self.count_error(FailureClass::Expected);
                    tracing::warn!(stream = self.stream(), id = %entry.id, error = %err,
                        "invalid label entry rejected");
                    settles[i] = Some(Settle::Ack);
                }
            }
        }
        // Per entry: its position, its labels, how many were invalid; `valid` is what is written.
        let mut kept: Vec<(usize, u64, u64)> = Vec::new();
        let mut valid: Vec<Vec<&Label>> = Vec::new();
        for (i, event) in &decoded {
            let mut labels = Vec::with_capacity(event.labels.len());
            let mut invalid = 0u64;
            for label in &event.labels {
                match validate_label(label) {
                    Ok(()) => labels.push(label),
                    Err(err) => {
                        invalid += 1;
                        tracing::warn!(stream = self.stream(), id = %entries[*i].id, error = %err,
                            "invalid label skipped");
                    }
                }
            }
            if labels.is_empty() {
                // Nothing to write: settled now.
                self.count_labels(event.labels.len() as u64, invalid, LabelsWritten::default());
                settles[*i] = Some(Settle::Ack);
            } else {
                kept.push((*i, event.labels.len() as u64, invalid));
                valid.push(labels);
            }
        }
        if !valid.is_empty() {
            let write = batch::write_label_entries(&self.shared.pool, &valid);
            let report = self.write(valid.len(), write).await;
            for (&(i, total, invalid), outcome) in kept.iter().zip(report.outcomes) {
                settles[i] = Some(self.settle(&entries[i], outcome, |written| {
                    // Counted once the entry is settled, so a retried entry is not counted twice.
                    self.count_labels(total, invalid, *written)
                }));
            }
        }
        settles
            .into_iter()
            .map(|s| s.unwrap_or(Settle::Ack))
            .collect()
    }

    /// Runs one write of `entries` entries: keeps them in `active_tasks` meanwhile, observes
    /// `write_duration_seconds` once per committed transaction and counts the attempts (one per
    /// entry tried: an entry deferred behind an earlier failure was not). A write that panics
    /// fails every entry (retried, counted as `panic`).
    async fn write<T>(
        &self,
        entries: usize,
        write: impl std::future::Future<Output = BatchReport<T>>,
    ) -> BatchReport<T> {
        let m = &self.shared.metrics;
        let in_flight = InFlight::start(&m.active_tasks, entries);
        let result = AssertUnwindSafe(write).catch_unwind().await;
        drop(in_flight);
        let report = match result {
            Ok(report) => report,
            Err(_) => {
                m.errors[ErrorKind::Panic].inc_by(entries as u64);
                m.unexpected_errors.inc_by(entries as u64);
                tracing::error!(stream = self.stream(), entries, "a write panicked");
                let reason = "the write panicked".to_owned();
                return BatchReport {
                    outcomes: (0..entries)
                        .map(|_| Outcome::Failed {
                            class: FailureClass::Unexpected,
                            reason: reason.clone(),
                        })
                        .collect(),
                    transactions: Vec::new(),
                };
            }
        };
        for tx in report.transactions.iter().filter(|tx| tx.committed) {
            m.write_duration_seconds.observe(tx.duration.as_secs_f64());
        }
        let tried = report
            .outcomes
            .iter()
            .filter(|o| !matches!(o, Outcome::Deferred))
            .count();
        m.write_attempts.inc_by(tried as u64);
        report
    }

    /// Counts one entry's outcome and decides what the stream worker does with it; `committed`
    /// counts what a committed entry wrote.
    fn settle<T>(
        &self,
        entry: &StreamEntry,
        outcome: Outcome<T>,
        committed: impl FnOnce(&T),
    ) -> Settle {
        match outcome {
            Outcome::Committed(done) => {
                committed(&done);
                self.shared.metrics.db_writes.inc();
                self.observe_commit(entry);
                Settle::Ack
            }
            Outcome::Invalid { reason } => {
                self.count_error(FailureClass::Expected);
                tracing::warn!(stream = self.stream(), id = %entry.id, error = %reason,
                    "the database rejected the entry as invalid");
                Settle::Ack
            }
            Outcome::Failed { class, reason } => {
                self.count_error(class);
                if class == FailureClass::Unavailable {
                    tracing::warn!(stream = self.stream(), id = %entry.id, error = %reason,
                        "the database is unavailable or wrongly set up; pausing");
                    Settle::Pause { reason }
                } else {
                    tracing::warn!(stream = self.stream(), id = %entry.id, error = %reason,
                        deliveries = entry.deliveries, "indexing failed; the entry will be retried");
                    Settle::Retry { reason }
                }
            }
            Outcome::Unwritable { reason } => {
                self.count_error(FailureClass::Unexpected);
                Settle::DeadLetter { reason }
            }
            Outcome::Deferred => Settle::Defer,
        }
    }

    fn count_labels(&self, total: u64, invalid: u64, written: LabelsWritten) {
        let metrics = &self.shared.metrics;
        metrics.labels_processed.inc_by(total);
        metrics.labels_added.inc_by(written.added);
        metrics.labels_removed.inc_by(written.removed);
        metrics.stale_events[StaleKind::Label].inc_by(written.stale);
        for _ in 0..invalid {
            self.count_error(FailureClass::Expected);
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
        if !indexed.applied {
            let stale = match indexed.kind {
                EventKind::Create | EventKind::Update | EventKind::Delete => {
                    Some(StaleKind::Record)
                }
                EventKind::Account => Some(StaleKind::Account),
                EventKind::Identity => Some(StaleKind::Identity),
                EventKind::Repo => None,
            };
            if let Some(kind) = stale {
                m.stale_events[kind].inc();
            }
        }
    }

    /// `stream_to_commit_seconds` of a committed entry: from its XADD (the entry ID's time) to
    /// now, just after the commit.
    fn observe_commit(&self, entry: &StreamEntry) {
        let m = &self.shared.metrics;
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
