//! The one stream worker: read a batch from a consumer group (own pending entries first), hand
//! the whole batch to a [`Processor`], settle each entry as the processor decided, and keep the
//! stream's housekeeping on one schedule.
//!
//! - **Settle** ([`Settle`]): acknowledge (XACK + XDEL), retry (leave pending; the next read
//!   delivers it again), pause (a dependency is down: leave pending, wait until the processor
//!   says it recovered), defer (not tried, to keep order behind a failure), or dead-letter now.
//! - **Retry policy** ([`RetryPolicy`]), one for every service: an entry that failed is
//!   dead-lettered, with its reason and delivery count, once the group has delivered it
//!   `max_deliveries` times (`deliveries >= max_deliveries`). Delivery counts live in Redis (the
//!   pending entries list), so the rule holds across restarts and consumers (`STREAM_MAX_DELIVERIES`
//!   in every service; the backfiller's old `BACKFILLER_MAX_RETRIES = r` is read as `r + 1`).
//!   Counting deliveries, not retries, was chosen because it is what Redis stores: no second
//!   counter to keep in step. Only a batch that made no progress (nothing acknowledged or
//!   dead-lettered) is followed by a pause, doubling from `backoff` up to `backoff_max`: a
//!   failing entry never slows the good entries read with it.
//!   Two rules keep the count honest:
//!   - *the check comes before the attempt*: an entry read with more deliveries than
//!     `max_deliveries` ([`RetryPolicy::over_limit`]) was delivered before and never settled
//!     (each attempt killed the process: a repository that crashes the parser, say); it is
//!     dead-lettered, "delivered N times without being settled", without calling the processor,
//!     so it cannot crash-loop a service forever;
//!   - *an entry that was not tried spends no delivery*: after [`Settle::Pause`] (a dependency
//!     is down) or [`Settle::Defer`], the worker sets the entry's delivery count back to what it
//!     was before this delivery (`XCLAIM ... RETRYCOUNT n-1 JUSTID`), so an outage of any length,
//!     re-reading the pending list each time the dependency seems back, never pushes entries
//!     towards the dead letters. When Redis refuses that too (it is what is down), the worker
//!     owes the deliveries and gives them back before its next read.
//! - **A lost group is created again**: when Redis answers `NOGROUP` (it restarted without
//!   persistence, or someone deleted the stream or the group), the worker creates the group
//!   again as at start (`MKSTREAM`, from the start of the stream: what is left in it is
//!   unfinished work), logs a warning naming the stream and the group, tells the processor
//!   ([`Processor::group_recreated`]) and goes on reading. Deliveries it owed are dropped: the
//!   new group has no pending entries.
//! - **Housekeeping** ([`Housekeeping`]), one schedule: claim entries idle too long in another
//!   consumer (`XAUTOCLAIM`), trim the stream below its oldest unfinished entry (never removing
//!   what a group has not finished), and sample the pending count; each when due.
//!
//! A processor receives the whole read batch (so it can write it in one transaction, or split it
//! by key) and returns one [`Settle`] per entry, in the batch's order.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::consumer::{ConsumerError, GroupConsumer, StreamEntry};
use crate::shutdown::Shutdown;

/// What to do with one entry after processing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Done (or rejected as bad input, counted by the processor): acknowledge and delete.
    Ack,
    /// The entry failed: it stays pending and is delivered again; dead-lettered with `reason`
    /// once [`RetryPolicy::exhausted`].
    Retry {
        /// Why, for the log and the dead letter.
        reason: String,
    },
    /// A dependency is down (not the entry's fault): it stays pending; the worker reads no more
    /// until [`Processor::recovered`].
    Pause {
        /// Why, for the log.
        reason: String,
    },
    /// Not tried (it waits behind an earlier failure); stays pending.
    Defer,
    /// Can never succeed: to the dead-letter stream now, with `reason`.
    DeadLetter {
        /// Why.
        reason: String,
    },
}

/// The one retry rule: dead-letter after `max_deliveries` deliveries; pause between failed
/// batches from `backoff`, doubling up to `backoff_max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Deliveries (the first included) after which a failing entry is dead-lettered.
    pub max_deliveries: u64,
    /// The first pause after a failure.
    pub backoff: Duration,
    /// The longest pause.
    pub backoff_max: Duration,
}

impl RetryPolicy {
    /// Whether an entry that failed on its `deliveries`-th delivery goes to the dead letters.
    pub fn exhausted(&self, deliveries: u64) -> bool {
        deliveries >= self.max_deliveries
    }

    /// Whether an entry read for its `deliveries`-th time is dead-lettered before it is tried:
    /// more deliveries than the policy allows mean that earlier ones were never settled.
    pub fn over_limit(&self, deliveries: u64) -> bool {
        deliveries > self.max_deliveries
    }

    /// The pause after the `failures`-th consecutive failure: `backoff * 2^(failures-1)`, at
    /// most `backoff_max`.
    pub fn backoff(&self, failures: u64) -> Duration {
        let exponent = failures.saturating_sub(1).min(20) as u32;
        self.backoff
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.backoff_max)
    }
}

/// When each housekeeping task is next due.
#[derive(Clone, Debug)]
pub struct Housekeeping {
    claim_interval: Duration,
    trim_interval: Duration,
    sample_interval: Duration,
    next_claim: Instant,
    next_trim: Instant,
    next_sample: Instant,
}

/// The housekeeping tasks that are due.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Claim stale entries of other consumers.
    pub claim: bool,
    /// Trim the stream safely.
    pub trim: bool,
    /// Sample the pending count (and the service's gauges).
    pub sample: bool,
}

impl Housekeeping {
    /// Claiming and sampling are due at once, trimming after a second (after the first reads).
    pub fn new(claim: Duration, trim: Duration, sample: Duration) -> Self {
        let now = Instant::now();
        Housekeeping {
            claim_interval: claim,
            trim_interval: trim,
            sample_interval: sample,
            next_claim: now,
            next_trim: now + Duration::from_secs(1).min(trim),
            next_sample: now,
        }
    }

    /// The tasks due now; each is scheduled again one interval later.
    pub fn due(&mut self) -> Due {
        let now = Instant::now();
        let mut due = Due::default();
        if now >= self.next_claim {
            self.next_claim = now + self.claim_interval;
            due.claim = true;
        }
        if now >= self.next_trim {
            self.next_trim = now + self.trim_interval;
            due.trim = true;
        }
        if now >= self.next_sample {
            self.next_sample = now + self.sample_interval;
            due.sample = true;
        }
        due
    }

    /// Makes the sample due now (a last sample at shutdown).
    pub fn sample_now(&mut self) {
        self.next_sample = Instant::now();
    }
}

/// The domain half of a stream worker: what a batch means, and the service's metrics.
pub trait Processor: Send + Sync {
    /// Processes a whole read batch (retries first, then new entries, in stream order) and
    /// returns one decision per entry, in the same order.
    fn process(&self, entries: &[StreamEntry]) -> impl Future<Output = Vec<Settle>> + Send;

    /// After a [`Settle::Pause`]: whether the dependency answers again. The worker asks with a
    /// growing interval (at most [`Worker::MAX_PROBE_INTERVAL`]) until it does.
    fn recovered(&self) -> impl Future<Output = bool> + Send {
        async { true }
    }

    /// Waits until the processor can take another batch (e.g. its output stream drained below
    /// a high-water mark). The worker reads nothing meanwhile (entries it has not read stay
    /// available to the other consumers of the group) and stops waiting at shutdown.
    fn ready(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The sampling of the housekeeping is due: sample the service's own gauges (after
    /// [`Processor::sampled_pending`]).
    fn sample(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// An entry went to the dead-letter stream.
    fn dead_lettered(&self, _entry: &StreamEntry, _reason: &str) {}

    /// `entries` could not be acknowledged (they stay pending and come back).
    fn ack_failed(&self, _entries: usize) {}

    /// Housekeeping trimmed `entries` from the stream.
    fn trimmed(&self, _entries: u64) {}

    /// Housekeeping sampled the group's pending count.
    fn sampled_pending(&self, _pending: u64) {}

    /// The consumer group was gone (`NOGROUP`) and the worker created it again.
    fn group_recreated(&self) {}
}

/// Read, process, settle, housekeeping: one consumer of one stream.
pub struct Worker<P> {
    consumer: GroupConsumer,
    processor: P,
    policy: RetryPolicy,
    housekeeping: Housekeeping,
    batch_size: usize,
    failures: u64,
    /// Deliveries to give back that Redis refused (it was down too): `(id, count)`, given back
    /// before the next read.
    owed: Vec<(String, u64)>,
}

impl<P: Processor> Worker<P> {
    /// The longest interval between two [`Processor::recovered`] probes.
    pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(2);

    /// A worker reading `batch_size` entries at a time.
    pub fn new(
        consumer: GroupConsumer,
        processor: P,
        policy: RetryPolicy,
        housekeeping: Housekeeping,
        batch_size: usize,
    ) -> Self {
        Worker {
            consumer,
            processor,
            policy,
            housekeeping,
            batch_size,
            failures: 0,
            owed: Vec::new(),
        }
    }

    fn stream(&self) -> &str {
        &self.consumer.config().stream
    }

    /// Runs until `shutdown`; the batch in hand is processed and settled before returning.
    pub async fn run(mut self, shutdown: Shutdown) {
        tracing::info!(stream = self.stream(), group = %self.consumer.config().group,
            consumer = %self.consumer.config().consumer, "consuming");
        while !shutdown.is_cancelled() {
            self.housekeeping().await;
            tokio::select! {
                _ = self.processor.ready() => {}
                _ = shutdown.cancelled() => break,
            }
            if !self.settle_owed_deliveries().await {
                self.pause(&shutdown).await;
                continue;
            }
            let batch = match self.consumer.read(self.batch_size).await {
                Ok(batch) => batch,
                Err(err) => {
                    if !self.recreate_lost_group(&err).await {
                        tracing::warn!(stream = self.stream(), error = %err, "cannot read the stream; retrying");
                        self.pause(&shutdown).await;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                continue;
            }
            let mut entries = Vec::with_capacity(batch.len());
            for entry in batch.pending.into_iter().chain(batch.new) {
                if self.policy.over_limit(entry.deliveries) {
                    // Delivered more often than any failure may be, and never settled: earlier
                    // attempts ended without a decision (the process died). Not tried again.
                    let reason =
                        format!("delivered {} times without being settled", entry.deliveries);
                    self.dead_letter(&entry, &reason).await;
                } else {
                    entries.push(entry);
                }
            }
            if entries.is_empty() {
                continue;
            }
            let decisions = self.processor.process(&entries).await;
            self.settle(&entries, decisions, &shutdown).await;
        }
        // One last sample so the gauges show what this worker leaves behind.
        self.housekeeping.sample_now();
        self.housekeeping().await;
        tracing::info!(stream = self.stream(), "drained and stopped");
    }

    /// Acknowledges what is done, dead-letters what can never succeed or failed too often, and
    /// waits after a failure.
    async fn settle(
        &mut self,
        entries: &[StreamEntry],
        decisions: Vec<Settle>,
        shutdown: &Shutdown,
    ) {
        let mut ack = Vec::new();
        let mut untried = Vec::new();
        let mut paused = false;
        let mut failed = false;
        // Entries that left the stream (acknowledged or dead-lettered): a batch with any made
        // progress, and its failures are the failing entries' own business, not the others'.
        let mut settled = 0usize;
        for (entry, decision) in entries.iter().zip(decisions) {
            match decision {
                Settle::Ack => ack.push(entry.id.clone()),
                Settle::Defer => untried.push(entry),
                Settle::Pause { .. } => {
                    paused = true;
                    untried.push(entry);
                }
                Settle::Retry { reason } => {
                    failed = true;
                    if self.policy.exhausted(entry.deliveries) {
                        settled += usize::from(self.dead_letter(entry, &reason).await);
                    }
                }
                Settle::DeadLetter { reason } => {
                    settled += usize::from(self.dead_letter(entry, &reason).await)
                }
            }
        }
        settled += ack.len();
        if let Err(err) = self.consumer.ack(&ack).await {
            self.processor.ack_failed(ack.len());
            tracing::warn!(stream = self.stream(), error = %err, entries = ack.len(),
                "acknowledgement failed; the entries stay pending and will be processed again");
        }
        self.give_back_deliveries(&untried).await;
        if paused {
            self.wait_for_recovery(shutdown).await;
        } else if failed && settled == 0 {
            // Only a batch that made no progress backs off: a failing entry next to good ones
            // is retried (and dead-lettered after its deliveries) without slowing them.
            self.pause(shutdown).await;
        } else {
            self.failures = 0;
        }
    }

    /// Sets the delivery count of entries that were paused or deferred back to what it was
    /// before this delivery: they were not tried on their merits, so re-reading them must not
    /// bring them closer to the dead letters. What Redis refuses (it is down too) is owed and
    /// given back before the next read.
    async fn give_back_deliveries(&mut self, entries: &[&StreamEntry]) {
        self.owed.extend(
            entries
                .iter()
                .map(|e| (e.id.clone(), e.deliveries.saturating_sub(1))),
        );
        self.settle_owed_deliveries().await;
    }

    /// Gives back the owed deliveries; false (and they stay owed) when Redis refuses.
    async fn settle_owed_deliveries(&mut self) -> bool {
        if self.owed.is_empty() {
            return true;
        }
        let counts: Vec<(&str, u64)> = self
            .owed
            .iter()
            .map(|(id, count)| (id.as_str(), *count))
            .collect();
        match self.consumer.set_deliveries(&counts).await {
            Ok(()) => {
                self.owed.clear();
                true
            }
            Err(err) => {
                if self.recreate_lost_group(&err).await {
                    return true;
                }
                tracing::warn!(stream = self.stream(), error = %err, entries = self.owed.len(),
                    "cannot give back the deliveries of untried entries yet; reading waits");
                false
            }
        }
    }

    /// When `err` is `NOGROUP` (Redis lost the group or the stream), creates the group again as
    /// at start and returns true; false for any other error, or when the creation fails too
    /// (the caller pauses and the next command tells again).
    async fn recreate_lost_group(&mut self, err: &ConsumerError) -> bool {
        if !err.is_no_group() {
            return false;
        }
        let group = self.consumer.config().group.clone();
        tracing::warn!(stream = self.stream(), %group, error = %err,
            "the consumer group is gone (Redis lost its data, or the stream or the group was deleted); creating it again");
        match self.consumer.create_group().await {
            Ok(()) => {
                // The new group has no pending entries: nothing is owed to them any more.
                self.owed.clear();
                self.processor.group_recreated();
                true
            }
            Err(err) => {
                tracing::warn!(stream = self.stream(), %group, error = %err,
                    "cannot create the consumer group again; retrying");
                false
            }
        }
    }

    /// Dead-letters `entry`; whether it left the stream.
    async fn dead_letter(&mut self, entry: &StreamEntry, reason: &str) -> bool {
        match self.consumer.dead_letter(entry, reason).await {
            Ok(()) => {
                self.processor.dead_lettered(entry, reason);
                tracing::error!(stream = self.stream(), id = %entry.id,
                    deliveries = entry.deliveries, %reason, "entry dead-lettered");
                true
            }
            Err(err) => {
                self.processor.ack_failed(1);
                tracing::warn!(stream = self.stream(), error = %err, id = %entry.id,
                    "cannot dead-letter; the entry stays pending");
                false
            }
        }
    }

    /// Sleeps the policy's backoff for one more consecutive failure (or until shutdown).
    async fn pause(&mut self, shutdown: &Shutdown) {
        self.failures += 1;
        tokio::select! {
            _ = tokio::time::sleep(self.policy.backoff(self.failures)) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    /// Waits until the processor's dependency answers again, keeping the housekeeping going and
    /// reading nothing meanwhile.
    async fn wait_for_recovery(&mut self, shutdown: &Shutdown) {
        let mut interval = self.policy.backoff;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.cancelled() => return,
            }
            self.housekeeping().await;
            if self.processor.recovered().await {
                tracing::info!(stream = self.stream(), "the dependency answers again");
                self.failures = 0;
                return;
            }
            tracing::warn!(
                stream = self.stream(),
                "the dependency is still unavailable"
            );
            interval = (interval * 2).min(Self::MAX_PROBE_INTERVAL);
        }
    }

    /// Claims stale entries, trims safely and samples the pending count, each when it is due.
    async fn housekeeping(&mut self) {
        let due = self.housekeeping.due();
        if due.claim {
            match self.consumer.claim_stale(self.batch_size).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(stream = self.stream(), claimed = n, "claimed stale entries")
                }
                Err(err) => {
                    if !self.recreate_lost_group(&err).await {
                        log_housekeeping("claim stale entries", &err)
                    }
                }
            }
        }
        if due.trim {
            match self.consumer.trim_safe().await {
                Ok(n) => self.processor.trimmed(n),
                Err(err) => log_housekeeping("trim", &err),
            }
        }
        if due.sample {
            match self.consumer.pending_count().await {
                Ok(n) => self.processor.sampled_pending(n),
                Err(err) => log_housekeeping("sample the pending count", &err),
            }
            self.processor.sample().await;
        }
    }
}

fn log_housekeeping(what: &str, err: &ConsumerError) {
    tracing::warn!(error = %err, "cannot {what}; will try again");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_exhausted_on_its_max_deliveries_th_delivery() {
        let policy = RetryPolicy {
            max_deliveries: 4,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        assert!(!policy.exhausted(3));
        assert!(policy.exhausted(4));
        assert!(policy.exhausted(5));
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_maximum() {
        let policy = RetryPolicy {
            max_deliveries: 1,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(400));
        assert_eq!(policy.backoff(5), Duration::from_secs(1));
        assert_eq!(policy.backoff(u64::MAX), Duration::from_secs(1));
    }

    #[test]
    fn each_housekeeping_task_comes_due_once_per_interval() {
        let mut schedule = Housekeeping::new(
            Duration::from_secs(60),
            Duration::from_millis(0),
            Duration::from_secs(60),
        );
        let first = schedule.due();
        assert!(first.claim && first.sample && first.trim);
        let second = schedule.due();
        assert!(!second.claim && !second.sample);
        schedule.sample_now();
        assert!(schedule.due().sample);
    }
}
