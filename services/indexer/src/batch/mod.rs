//! The batched write path: a whole read batch in one transaction, with set-based statements
//! per table, and the per-event path ([`crate::index`]) as the fallback and the baseline.
//!
//! [`write_events`] writes decoded firehose events, [`write_label_entries`] the valid labels of
//! label entries. Both return one [`Outcome`] per input, in input order, and a
//! [`TransactionRecord`] per transaction tried, so the caller acknowledges exactly the entries
//! whose transaction committed (or that were invalid) and observes the write duration per batch.
//!
//! - Set-based statements: `INSERT ... SELECT FROM unnest($1::text[], ...) ON CONFLICT`, one per
//!   table (see [`events`] and [`labels`]); rows are sorted by key so concurrent batches take row
//!   locks in one order.
//! - The per-event guarantees hold: the rev guard and tombstones, per-DID order (the events of a
//!   record are applied in rounds, in stream order; see [`events`]), idempotent replays.
//! - Server limits: a part that fails on a statement timeout (57014), a program limit (class 54)
//!   or a connection closed under it, while the database still answers a probe, is split like
//!   a poison, never paused forever; one entry alone failing so is that entry's failure
//!   (retried, then dead-lettered), not the database's.
//! - Poison isolation: a batch that fails (not for a lost connection) is split in halves, each
//!   tried again on its own, until the failing part is at most [`FALLBACK_SIZE`] entries; those
//!   are written one by one through the per-event path. Only the bad entry fails; the rest
//!   commit. Later entries of a failed entry's DID (for labels: every later entry) are
//!   [`Outcome::Deferred`], so they are not applied before it.

pub mod events;
pub mod labels;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use deadpool_postgres::{Pool, Transaction};
use futures::future::BoxFuture;
use futures::StreamExt;
use rsky_common::event::Label;

use crate::db::FailureClass;
use crate::index::{index_event, IndexError, Indexed, Prepared};
use crate::labels::{index_labels, LabelsWritten};

/// A failing part of a batch this small is written entry by entry (the per-event path).
pub const FALLBACK_SIZE: usize = 8;

/// The byte budget of one set-based statement: a batch whose records add up to more is written
/// as consecutive parts within it (a record larger than the budget alone is a part of its own).
/// PostgreSQL refuses a protocol message over 1 GB (and closes the connection); 64 MiB keeps a
/// statement far below that and its memory bounded, whatever the entry count.
pub const STATEMENT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Times a transaction is tried again after a deadlock or serialization failure (SQLSTATE class
/// 40) before its entries fail as unavailable.
const CONFLICT_RETRIES: u32 = 3;

/// What happened to one entry.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<T> {
    /// Its transaction committed: acknowledge it and count it.
    Committed(T),
    /// The database rejected it as invalid input (SQLSTATE class 22): acknowledge it and
    /// count it as an expected error; retrying cannot help.
    Invalid {
        /// The database's message.
        reason: String,
    },
    /// Not written: leave it pending. `Unexpected` counts towards dead-lettering;
    /// `Unavailable` (systemic: lost connection, pool timeout, repeated deadlock, a standby, a
    /// timeout; see [`crate::db::SQLSTATES`]) is never the entry's fault.
    Failed {
        /// How to handle it.
        class: FailureClass,
        /// Why.
        reason: String,
    },
    /// The database refused it for a limit it will always exceed (SQLSTATE class 54, e.g.
    /// 54000 index row too large): dead-letter it at once, retrying cannot help.
    Unwritable {
        /// The database's message.
        reason: String,
    },
    /// Not tried, so that it is not applied before an earlier failed entry of its DID (labels:
    /// of its stream); leave it pending, count nothing.
    Deferred,
}

impl<T> Outcome<T> {
    /// Whether the entry may be acknowledged (committed or invalid).
    pub fn is_settled(&self) -> bool {
        matches!(self, Outcome::Committed(_) | Outcome::Invalid { .. })
    }
}

/// One transaction the writer started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransactionRecord {
    /// Entries it was to write.
    pub entries: usize,
    /// From taking the connection to the commit (or the failure).
    pub duration: Duration,
    /// Whether it committed.
    pub committed: bool,
}

/// The result of writing a batch.
#[derive(Clone, Debug)]
pub struct BatchReport<T> {
    /// One per input, in input order.
    pub outcomes: Vec<Outcome<T>>,
    /// Every transaction tried, in order: one when the batch committed whole.
    pub transactions: Vec<TransactionRecord>,
}

/// Which path [`write_events`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePath {
    /// The batch in one transaction of set-based statements (poison isolated by splitting).
    Batched,
    /// One transaction per event (the original path): events of one DID in order, up to
    /// `concurrency` DIDs at a time.
    PerEvent {
        /// Events in flight at most.
        concurrency: usize,
    },
}

/// Writes `events` (decoded, in stream order) along `path`; `now` is their `"indexedAt"`.
pub async fn write_events(
    pool: &Pool,
    path: WritePath,
    events: &[Prepared],
    now: &str,
) -> BatchReport<Indexed> {
    match path {
        WritePath::Batched => isolate(pool, &events::EventWriter { now }, events).await,
        WritePath::PerEvent { concurrency } => per_event(pool, events, now, concurrency).await,
    }
}

/// Writes the valid labels of label entries (one `Vec` per entry, in stream order) in one
/// transaction; a label and its later negation end with the label removed, as entry by entry.
pub async fn write_label_entries(
    pool: &Pool,
    entries: &[Vec<&Label>],
) -> BatchReport<LabelsWritten> {
    isolate(pool, &labels::LabelWriter::default(), entries).await
}

/// What a set-based writer provides to [`isolate`].
trait SetWriter: Sync {
    type Item: Sync;
    type Done: Send;

    /// Entries with the same key keep their order: after a failed one, the later ones wait.
    fn order_key<'i>(&self, item: &'i Self::Item) -> &'i str;

    /// About how many bytes the item adds to a set-based statement.
    fn size(&self, item: &Self::Item) -> usize;

    /// Writes `items` with set-based statements inside `tx`; one result per item.
    fn write_set<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        items: &'a [&'a Self::Item],
    ) -> BoxFuture<'a, Result<Vec<Self::Done>, IndexError>>;

    /// Writes one item the per-event way inside `tx`.
    fn write_one<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        item: &'a Self::Item,
    ) -> BoxFuture<'a, Result<Self::Done, IndexError>>;
}

impl SetWriter for events::EventWriter<'_> {
    type Item = Prepared;
    type Done = Indexed;

    fn order_key<'i>(&self, item: &'i Prepared) -> &'i str {
        item.did()
    }

    fn size(&self, item: &Prepared) -> usize {
        let record = match item.event() {
            rsky_common::event::StreamEvent::Create(e)
            | rsky_common::event::StreamEvent::Update(e) => {
                serde_json::to_vec(&e.record).map_or(0, |json| json.len())
            }
            _ => 0,
        };
        // The record twice (`record.json` and the derived columns) and the keys.
        2 * record + 256
    }

    fn write_set<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        items: &'a [&'a Prepared],
    ) -> BoxFuture<'a, Result<Vec<Indexed>, IndexError>> {
        Box::pin(self.write(tx, items))
    }

    fn write_one<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        item: &'a Prepared,
    ) -> BoxFuture<'a, Result<Indexed, IndexError>> {
        Box::pin(index_event(tx, item, self.now))
    }
}

impl<'l> SetWriter for labels::LabelWriter<'l> {
    type Item = Vec<&'l Label>;
    type Done = LabelsWritten;

    fn order_key<'i>(&self, _: &'i Vec<&'l Label>) -> &'i str {
        // Label entries are applied in stream order, whatever their subjects.
        ""
    }

    fn size(&self, item: &Vec<&'l Label>) -> usize {
        item.iter()
            .map(|l| l.uri.len() + l.src.len() + l.val.len() + 128)
            .sum()
    }

    fn write_set<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        items: &'a [&'a Vec<&'l Label>],
    ) -> BoxFuture<'a, Result<Vec<LabelsWritten>, IndexError>> {
        Box::pin(self.write(tx, items))
    }

    fn write_one<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        item: &'a Vec<&'l Label>,
    ) -> BoxFuture<'a, Result<LabelsWritten, IndexError>> {
        Box::pin(async move { Ok(index_labels(tx, item).await?) })
    }
}

/// The state of one [`isolate`] call.
struct Isolation<'k, T> {
    outcomes: Vec<Option<Outcome<T>>>,
    transactions: Vec<TransactionRecord>,
    /// Order keys with a failed entry: their later entries are deferred.
    failed_keys: HashSet<&'k str>,
    /// Set once the database is unavailable: nothing more is tried.
    unavailable: Option<String>,
}

impl<T> Isolation<'_, T> {
    fn new(len: usize) -> Self {
        Isolation {
            outcomes: (0..len).map(|_| None).collect(),
            transactions: Vec::new(),
            failed_keys: HashSet::new(),
            unavailable: None,
        }
    }

    fn report(self) -> BatchReport<T> {
        BatchReport {
            outcomes: self
                .outcomes
                .into_iter()
                .map(|o| o.unwrap_or(Outcome::Deferred))
                .collect(),
            transactions: self.transactions,
        }
    }
}

/// What one transaction writes.
enum Work<'a, I> {
    /// Several entries, set-based.
    Set(&'a [&'a I]),
    /// One entry, the per-event way.
    One(&'a I),
}

/// Writes `items` as one set; a part that fails is split in halves (written in stream order)
/// until it is small enough to be written entry by entry.
async fn isolate<W: SetWriter>(pool: &Pool, writer: &W, items: &[W::Item]) -> BatchReport<W::Done> {
    let mut state = Isolation::new(items.len());
    let sizes: Vec<usize> = items.iter().map(|item| writer.size(item)).collect();
    let mut parts = parts_within(&sizes, STATEMENT_MAX_BYTES);
    while let Some(part) = parts.pop_front() {
        let live = runnable(writer, items, &part, &mut state);
        if live.is_empty() {
            continue;
        }
        let set: Vec<&W::Item> = live.iter().map(|&i| &items[i]).collect();
        let err = match transact(pool, &mut state.transactions, writer, Work::Set(&set)).await {
            Ok(done) => {
                for (&i, d) in live.iter().zip(done) {
                    state.outcomes[i] = Some(Outcome::Committed(d));
                }
                continue;
            }
            Err(err) => err,
        };
        let split_anyway = err.class() == FailureClass::Unavailable
            && err.may_be_the_work()
            && database_answers(pool).await;
        if err.class() == FailureClass::Unavailable && !split_anyway {
            // Not the entries' fault: they all wait for the database, and so does the rest.
            state.unavailable = Some(err.to_string());
            runnable(writer, items, &live, &mut state);
        } else if live.len() <= FALLBACK_SIZE {
            tracing::debug!(error = %err, entries = live.len(),
                "part of a batch failed; writing its entries one by one");
            for i in live {
                write_single(pool, writer, items, i, &mut state).await;
            }
        } else {
            tracing::debug!(error = %err, entries = live.len(),
                "a batch failed; splitting it to isolate the failing entries");
            let right = live[live.len() / 2..].to_vec();
            let left = live[..live.len() / 2].to_vec();
            parts.push_front(right);
            parts.push_front(left);
        }
    }
    state.report()
}

/// Consecutive parts (indexes in order) whose sizes add up to at most `budget` each; an item
/// larger than the budget is a part of its own.
fn parts_within(sizes: &[usize], budget: usize) -> VecDeque<Vec<usize>> {
    let mut parts = VecDeque::new();
    let mut part = Vec::new();
    let mut bytes = 0usize;
    for (i, &size) in sizes.iter().enumerate() {
        if !part.is_empty() && bytes.saturating_add(size) > budget {
            parts.push_back(std::mem::take(&mut part));
            bytes = 0;
        }
        part.push(i);
        bytes = bytes.saturating_add(size);
    }
    if !part.is_empty() {
        parts.push_back(part);
    }
    parts
}

/// The entries of `part` still to try: the others are marked failed (database unavailable) or
/// deferred (an earlier entry of their order key failed).
fn runnable<'k, W: SetWriter>(
    writer: &W,
    items: &'k [W::Item],
    part: &[usize],
    state: &mut Isolation<'k, W::Done>,
) -> Vec<usize> {
    let mut live = Vec::with_capacity(part.len());
    for &i in part {
        if let Some(reason) = &state.unavailable {
            state.outcomes[i] = Some(Outcome::Failed {
                class: FailureClass::Unavailable,
                reason: reason.clone(),
            });
        } else if state.failed_keys.contains(writer.order_key(&items[i])) {
            state.outcomes[i] = Some(Outcome::Deferred);
        } else {
            live.push(i);
        }
    }
    live
}

/// Writes entry `i` alone through the per-event path.
async fn write_single<'k, W: SetWriter>(
    pool: &Pool,
    writer: &W,
    items: &'k [W::Item],
    i: usize,
    state: &mut Isolation<'k, W::Done>,
) {
    if runnable(writer, items, &[i], state).is_empty() {
        return;
    }
    let item = &items[i];
    let result = transact(pool, &mut state.transactions, writer, Work::One(item)).await;
    state.outcomes[i] = Some(match result {
        Ok(mut done) => match done.pop() {
            Some(done) => Outcome::Committed(done),
            None => Outcome::Deferred,
        },
        Err(err) => {
            let mut class = err.class();
            let reason = err.to_string();
            if class == FailureClass::Unavailable
                && err.may_be_the_work()
                && database_answers(pool).await
            {
                // Alone, over a limit or a timeout, while the database answers: the entry's
                // own failure (retried, then dead-lettered), not a reason to stop the rest.
                class = FailureClass::Unexpected;
            }
            match class {
                FailureClass::Expected => Outcome::Invalid { reason },
                FailureClass::Unavailable => {
                    state.unavailable = Some(reason.clone());
                    Outcome::Failed { class, reason }
                }
                FailureClass::Unexpected if err.over_a_limit() => {
                    state.failed_keys.insert(writer.order_key(item));
                    Outcome::Unwritable { reason }
                }
                FailureClass::Unexpected => {
                    state.failed_keys.insert(writer.order_key(item));
                    Outcome::Failed { class, reason }
                }
            }
        }
    });
}

/// Whether the database answers a trivial query within [`PROBE_TIMEOUT`]: after a failure
/// that may be the work's own (a timeout, a limit), tells the work from the database.
async fn database_answers(pool: &Pool) -> bool {
    let probe = async {
        let client = pool.get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, probe).await,
        Ok(Some(_))
    )
}

/// How long [`database_answers`] waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `work` in a transaction of its own and commits it, trying again after a deadlock or
/// serialization failure; records every attempt in `log`.
async fn transact<W: SetWriter>(
    pool: &Pool,
    log: &mut Vec<TransactionRecord>,
    writer: &W,
    work: Work<'_, W::Item>,
) -> Result<Vec<W::Done>, IndexError> {
    let entries = match &work {
        Work::Set(items) => items.len(),
        Work::One(_) => 1,
    };
    let mut attempt = 0;
    loop {
        let started = Instant::now();
        let result: Result<Vec<W::Done>, IndexError> = async {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let done = match &work {
                Work::Set(items) => writer.write_set(&tx, items).await?,
                Work::One(item) => vec![writer.write_one(&tx, item).await?],
            };
            tx.commit().await?;
            Ok(done)
        }
        .await;
        log.push(TransactionRecord {
            entries,
            duration: started.elapsed(),
            committed: result.is_ok(),
        });
        match result {
            Err(IndexError::Db(err))
                if attempt < CONFLICT_RETRIES
                    && err.sqlstate().is_some_and(|code| code.starts_with("40")) =>
            {
                attempt += 1;
                tracing::debug!(error = %err, attempt, "transaction conflict; trying again");
            }
            other => return other,
        }
    }
}

/// The per-event path over a batch: one transaction per event, the events of one DID in
/// stream order (deferred after a failure), up to `concurrency` DIDs at a time.
async fn per_event(
    pool: &Pool,
    events: &[Prepared],
    now: &str,
    concurrency: usize,
) -> BatchReport<Indexed> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_did: HashMap<&str, usize> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        let group = *by_did.entry(event.did()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(i);
    }
    let writer = events::EventWriter { now };
    let writer = &writer;
    let results: Vec<Isolation<'_, Indexed>> = futures::stream::iter(groups)
        .map(|group| async move {
            let mut state = Isolation::new(events.len());
            for i in group {
                write_single(pool, writer, events, i, &mut state).await;
            }
            state
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut outcomes: Vec<Option<Outcome<Indexed>>> = (0..events.len()).map(|_| None).collect();
    let mut transactions = Vec::new();
    for state in results {
        transactions.extend(state.transactions);
        for (i, outcome) in state.outcomes.into_iter().enumerate() {
            if outcome.is_some() {
                outcomes[i] = outcome;
            }
        }
    }
    Isolation {
        outcomes,
        transactions,
        failed_keys: HashSet::new(),
        unavailable: None,
    }
    .report()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_cut_into_consecutive_parts_within_the_byte_budget() {
        let parts = parts_within(&[40, 40, 40, 10, 200, 5], 100);
        assert_eq!(
            Vec::from(parts),
            [vec![0, 1], vec![2, 3], vec![4], vec![5]],
            "in order; an item over the budget alone"
        );
        assert!(parts_within(&[], 100).is_empty());
        assert_eq!(Vec::from(parts_within(&[1; 5], 100)), [vec![0, 1, 2, 3, 4]]);
    }
}
