//! The consumer-group loop: read `repo_backfill` (own pending entries first, then new ones),
//! process each repository under a concurrency limit, retry failures with backoff, dead-letter
//! the ones that keep failing, and trim the input stream safely.
//!
//! Delivery counts live in Redis (the group's pending entries list), so retries survive a
//! restart: an entry is delivered at most `1 + BACKFILLER_MAX_RETRIES` times before it is
//! dead-lettered, whether those deliveries happened in one process or several. The rule, the
//! backoff and the housekeeping schedule are `rsky_common::worker`'s ([`RetryPolicy`] with
//! `max_deliveries = BACKFILLER_MAX_RETRIES + 1`, [`Housekeeping`]), shared with the indexer.
//! The loop itself is still the backfiller's own: a repository is a long task (seconds to
//! minutes) retried in place with backoff, so entries are handed to tasks as permits free up
//! rather than read and settled in batches.
//!
//! [`RetryPolicy`]: rsky_common::worker::RetryPolicy
//!
//! The consumer-group operations themselves (reads, claims, acknowledgements, dead letters,
//! safe trimming) are [`rsky_common::consumer`]'s, shared with the indexer.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use rsky_common::consumer::{ConsumerConfig, ConsumerError, GroupConsumer, StreamEntry};
use rsky_common::event::BackfillEvent;
use rsky_common::streams::REPO_FIELD;
use rsky_common::worker::Housekeeping;
use rsky_metrics_runtime::{counted, CountAs};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Keys, GROUP};
use crate::fetch::{self, FetchError};
use crate::metrics::BackfillerMetrics;
use crate::repo::{self, LoadError};
use crate::resolve::{ResolveError, Resolver};
use crate::sink;

/// The most entries one read asks for.
const MAX_READ: usize = 100;

/// An error that stops the backfiller.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Redis could not be reached or refused a command the backfiller cannot do without.
    #[error("{what} on {stream} failed: {source}")]
    Redis {
        /// What the backfiller was doing.
        what: &'static str,
        /// The stream concerned.
        stream: String,
        /// The Redis error.
        source: redis::RedisError,
    },
    /// A consumer-group operation the backfiller cannot do without failed.
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
}

/// Why one attempt at a repository failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The entry is not a BackfillEvent; it can never succeed.
    #[error("the entry has no valid {REPO_FIELD:?} field: {0}")]
    Malformed(String),
    /// The DID could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The CAR could not be downloaded.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The CAR could not be read or does not verify.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Writing the events failed.
    #[error("writing the events of {did} failed: {source}")]
    Write {
        /// The DID.
        did: String,
        /// The Redis error.
        source: redis::RedisError,
    },
}

impl Failure {
    /// Whether the entry is acknowledged without retry (the PDS says the repository is gone).
    pub fn is_skip(&self) -> bool {
        matches!(self, Failure::Fetch(e) if e.is_skip())
    }
}

/// A backfiller: one consumer of the `repo_backfill_group`.
#[derive(Clone)]
pub struct Backfiller {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    keys: Keys,
    redis: ConnectionManager,
    /// The group's operations for the repository tasks (never a blocking read: its clones
    /// share one connection).
    group: GroupConsumer,
    /// Blocking reads get a connection of their own so that they do not hold up the others.
    reader: GroupConsumer,
    http: reqwest::Client,
    resolver: Resolver,
    metrics: Arc<BackfillerMetrics>,
    in_flight: Mutex<HashSet<String>>,
}

impl Backfiller {
    /// Connects to Redis and prepares the HTTP client. Nothing is read until [`Backfiller::run`].
    pub async fn connect(
        config: Config,
        metrics: Arc<BackfillerMetrics>,
    ) -> Result<Self, WorkerError> {
        let keys = config.keys();
        let redis_err = |what| {
            let stream = keys.repo_backfill.clone();
            move |source| WorkerError::Redis {
                what,
                stream,
                source,
            }
        };
        let client = redis::Client::open(config.redis_url.as_str())
            .map_err(redis_err("opening REDIS_URL"))?;
        let redis = ConnectionManager::new(client.clone())
            .await
            .map_err(redis_err("connecting to Redis"))?;
        let consumer_config = ConsumerConfig {
            stream: keys.repo_backfill.clone(),
            group: GROUP.to_owned(),
            consumer: config.consumer.clone(),
            dead_letter_stream: keys.dead_letter.clone(),
            block: config.read_block,
            claim_min_idle: config.reclaim_idle,
        };
        let group = GroupConsumer::connect(&client, consumer_config.clone()).await?;
        let reader = GroupConsumer::connect(&client, consumer_config).await?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("rsky-backfiller/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(WorkerError::Http)?;
        let resolver = Resolver::new(&config, http.clone(), redis.clone());
        Ok(Backfiller {
            inner: Arc::new(Inner {
                config,
                keys,
                redis,
                group,
                reader,
                http,
                resolver,
                metrics,
                in_flight: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The stream and key names in use.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// Creates the consumer group (and the stream) if they do not exist yet.
    pub async fn ensure_group(&self) -> Result<(), WorkerError> {
        Ok(self.group().create_group().await?)
    }

    /// The group's operations, on the connection shared by the repository tasks.
    fn group(&self) -> GroupConsumer {
        self.inner.group.clone()
    }

    /// Runs until `shutdown` is cancelled, then lets the repositories in flight finish.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let inner = &self.inner;
        self.ensure_group().await?;
        // Entries another backfiller left idle become ours; the pending read below picks them up.
        let reclaimed = self.reclaim_stale().await?;
        tracing::info!(
            consumer = %inner.config.consumer,
            reclaimed = reclaimed.len(),
            stream = %inner.keys.repo_backfill,
            "backfiller started"
        );
        let semaphore = Arc::new(Semaphore::new(inner.config.concurrency));
        let mut tasks = JoinSet::new();
        // Our own pending entries first (walked once, from id 0), then new ones (`>`).
        let mut history: Option<String> = Some("0".to_owned());
        let mut housekeeping = Housekeeping::new(
            inner.config.trim_interval,
            inner.config.trim_interval,
            inner.config.sample_interval,
        );
        while !shutdown.is_cancelled() {
            while let Some(done) = tasks.try_join_next() {
                log_task_end(done);
            }
            let due = housekeeping.due();
            if due.sample {
                if let Err(err) = self.sample_gauges().await {
                    tracing::warn!(error = %err, "sampling the stream lengths failed");
                }
            }
            if due.claim || due.trim {
                self.periodic_maintenance(&semaphore, &mut tasks, &shutdown)
                    .await;
            }
            if !self.wait_for_output_capacity(&shutdown).await {
                break;
            }
            let permit = tokio::select! {
                permit = semaphore.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = shutdown.cancelled() => break,
            };
            let count = (semaphore.available_permits() + 1).min(MAX_READ);
            let entries = match self.read(history.as_deref(), count).await {
                Ok(entries) => entries,
                Err(err) => {
                    tracing::warn!(error = %err, stream = %inner.keys.repo_backfill, "reading the input stream failed; retrying in 1 s");
                    drop(permit);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = shutdown.cancelled() => {}
                    }
                    continue;
                }
            };
            if history.is_some() {
                history = entries.last().map(|e| e.id.clone());
            }
            let mut permit = Some(permit);
            for entry in entries {
                let permit = match permit.take() {
                    Some(permit) => permit,
                    None => match semaphore.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                self.spawn_entry(entry, permit, &mut tasks, &shutdown);
            }
        }
        tracing::info!(
            in_flight = tasks.len(),
            "shutting down: finishing the repositories in flight"
        );
        while let Some(done) = tasks.join_next().await {
            log_task_end(done);
        }
        if let Err(err) = self.trim().await {
            tracing::warn!(error = %err, "trimming at shutdown failed");
        }
        tracing::info!("backfiller stopped");
        Ok(())
    }

    fn spawn_entry(
        &self,
        entry: StreamEntry,
        permit: OwnedSemaphorePermit,
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) {
        {
            let mut in_flight = lock(&self.inner.in_flight);
            if !in_flight.insert(entry.id.clone()) {
                return; // Already being processed here (reclaimed while in flight).
            }
        }
        let this = self.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let id = entry.id.clone();
            this.handle_entry(entry, &shutdown).await;
            lock(&this.inner.in_flight).remove(&id);
            drop(permit);
        });
    }

    /// Reclaims idle entries of other consumers, then trims; reclaimed entries are processed.
    async fn periodic_maintenance(
        &self,
        semaphore: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) {
        match self.reclaim_stale().await {
            Ok(entries) => {
                for entry in entries {
                    let permit = match semaphore.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    };
                    self.spawn_entry(entry, permit, tasks, shutdown);
                }
            }
            Err(err) => tracing::warn!(error = %err, "reclaiming idle entries failed"),
        }
        if let Err(err) = self.trim().await {
            tracing::warn!(error = %err, "trimming the input stream failed");
        }
    }

    /// XAUTOCLAIMs every entry idle for longer than the reclaim time, returning them.
    pub async fn reclaim_stale(&self) -> Result<Vec<StreamEntry>, ConsumerError> {
        let claimed = self.group().claim_stale_entries(MAX_READ).await?;
        if !claimed.is_empty() {
            tracing::info!(count = claimed.len(), "reclaimed idle entries");
        }
        Ok(claimed)
    }

    /// Reads our pending entries after `history` (without waiting), or new entries when
    /// `history` is `None` (waiting up to the read block time).
    async fn read(
        &self,
        history: Option<&str>,
        count: usize,
    ) -> Result<Vec<StreamEntry>, ConsumerError> {
        let mut reader = self.inner.reader.clone();
        match history {
            Some(after) => reader.read_pending_after(after, count).await,
            None => {
                let block = self.inner.config.read_block;
                reader.read_new(count, Some(block)).await
            }
        }
    }

    /// Waits while the output stream is at or above its high-water mark. Returns false when
    /// shutdown was asked for while waiting.
    async fn wait_for_output_capacity(&self, shutdown: &CancellationToken) -> bool {
        let inner = &self.inner;
        let mut redis = inner.redis.clone();
        let mut waiting_since: Option<Instant> = None;
        loop {
            match redis.xlen::<_, usize>(&inner.keys.firehose_backfill).await {
                Ok(len) => {
                    inner.metrics.output_stream_length.set(len as i64);
                    if len < inner.config.high_water_mark {
                        inner.metrics.backpressure_active.set(0);
                        if let Some(since) = waiting_since {
                            tracing::info!(waited = ?since.elapsed(), "output drained below its high-water mark; reading again");
                        }
                        return true;
                    }
                    if waiting_since.is_none() {
                        tracing::info!(length = len, high_water_mark = inner.config.high_water_mark, stream = %inner.keys.firehose_backfill, "backpressure: waiting for the output stream to drain");
                        waiting_since = Some(Instant::now());
                    }
                    inner.metrics.backpressure_active.set(1);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "XLEN of the output stream failed");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(inner.config.backpressure_poll) => {}
                () = shutdown.cancelled() => return false,
            }
        }
    }

    /// Processes one entry to the end: success, skip, dead letter, or left pending at shutdown.
    async fn handle_entry(&self, mut entry: StreamEntry, shutdown: &CancellationToken) {
        let inner = &self.inner;
        let metrics = &inner.metrics;
        let event = match parse_entry(&entry) {
            Ok(event) => event,
            Err(failure) => {
                metrics.repos_failed.inc();
                metrics.errors[failure.count_as()].inc();
                if let Ok(Some(delivery)) = self.group().delivery(&entry.id).await {
                    entry.deliveries = delivery.deliveries;
                }
                self.dead_letter(&entry, &failure).await;
                return;
            }
        };
        loop {
            // The attempt counts itself in repos_failed when it fails.
            let result = self.attempt(&entry, &event).await;
            let failure = match result {
                Ok(()) => return,
                Err(failure) => failure,
            };
            metrics.errors[failure.count_as()].inc();
            if failure.is_skip() {
                metrics.repos_skipped.inc();
                tracing::info!(did = %event.did, id = %entry.id, reason = %failure, "acknowledging without retry");
                self.acknowledge(&entry.id).await;
                return;
            }
            let attempts = match self.group().delivery(&entry.id).await {
                Ok(Some(delivery)) if delivery.consumer == inner.config.consumer => {
                    delivery.deliveries
                }
                Ok(_) => {
                    tracing::info!(id = %entry.id, "the entry is no longer ours; leaving it to its new owner");
                    return;
                }
                Err(err) => {
                    tracing::warn!(id = %entry.id, error = %err, "cannot read the delivery count; the entry stays pending");
                    return;
                }
            };
            let policy = inner.config.retry_policy();
            if policy.exhausted(attempts) {
                tracing::warn!(did = %event.did, id = %entry.id, attempts, reason = %failure, "dead-lettering after the last retry");
                entry.deliveries = attempts;
                self.dead_letter(&entry, &failure).await;
                return;
            }
            let backoff = policy.backoff(attempts);
            tracing::info!(did = %event.did, id = %entry.id, attempts, ?backoff, reason = %failure, "retrying after backoff");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                // Left pending: the next start reads it again.
                () = shutdown.cancelled() => return,
            }
            // The retry is a delivery, counted in Redis.
            match self.group().redeliver(&entry.id).await {
                Ok(true) => metrics.retries_attempted.inc(),
                Ok(false) => return,
                Err(err) => {
                    tracing::warn!(id = %entry.id, error = %err, "cannot claim the entry for a retry; it stays pending");
                    return;
                }
            }
        }
    }

    /// One attempt: resolve, fetch, load and verify, write. Counts its own stage errors; the
    /// attempt itself is counted in `repo_attempts` and, when it fails, `repos_failed`, is in
    /// `repos_running` while it runs, and its time (ok or error) is in `repo_duration_seconds`.
    #[counted(metrics = &self.inner.metrics, events = repo_attempts, errors = repos_failed,
              in_flight = repos_running, duration = repo_duration_seconds)]
    async fn attempt(&self, entry: &StreamEntry, event: &BackfillEvent) -> Result<(), Failure> {
        let inner = &self.inner;
        let metrics = &inner.metrics;
        let did = event.did.as_str();
        let resolved = inner
            .resolver
            .resolve(did, metrics)
            .await
            .inspect_err(|_| {
                metrics.did_resolution_errors.inc();
            })?;
        let car = fetch::get_repo(&inner.http, &resolved.pds, did, inner.config.fetch_timeout)
            .await
            .inspect_err(|_| metrics.car_fetch_errors.inc())?;
        let (did_owned, key) = (did.to_owned(), resolved.signing_key);
        let loaded = tokio::task::spawn_blocking(move || repo::load(&car, &did_owned, &key))
            .await
            .map_err(|join| {
                Failure::Load(LoadError::Parse {
                    did: did.to_owned(),
                    source: Box::new(rsky_atproto::repo::RepoError::InvalidCommit(format!(
                        "loading panicked: {join}"
                    ))),
                })
            })?
            .inspect_err(|err| match err {
                LoadError::Parse { .. } => metrics.car_parse_errors.inc(),
                LoadError::Verification { .. } => metrics.verification_errors.inc(),
            })?;
        let filtered = loaded.filtered;
        let time = rsky_common::time::now_rfc3339();
        let ack = (&inner.group, entry.id.as_str());
        let mut redis = inner.redis.clone();
        let written = sink::write_repo(
            &mut redis,
            &inner.keys.firehose_backfill,
            loaded,
            &time,
            Some(ack),
        )
        .await
        .map_err(|source| Failure::Write {
            did: did.to_owned(),
            source,
        })?;
        metrics.records_extracted.inc_by(written.creates);
        metrics.records_filtered.inc_by(filtered);
        metrics.repos_processed.inc();
        tracing::debug!(
            did,
            records = written.creates,
            filtered,
            "repository backfilled"
        );
        Ok(())
    }

    async fn acknowledge(&self, id: &str) {
        if let Err(err) = self.group().ack(&[id.to_owned()]).await {
            tracing::warn!(id, error = %err, "XACK + XDEL failed; the entry stays pending");
        }
    }

    /// Writes the entry to the dead-letter stream with why and how many tries (its delivery
    /// count), and acknowledges it.
    async fn dead_letter(&self, entry: &StreamEntry, failure: &Failure) {
        match self.group().dead_letter(entry, &failure.to_string()).await {
            Ok(()) => self.inner.metrics.repos_dead_lettered.inc(),
            Err(err) => {
                tracing::warn!(id = %entry.id, error = %err, "dead-lettering failed; the entry stays pending")
            }
        }
    }

    /// Trims `repo_backfill` below its oldest entry that any group has not finished: the oldest
    /// pending entry, or the first undelivered one. Returns how many entries were removed.
    pub async fn trim(&self) -> Result<u64, ConsumerError> {
        let trimmed = self.group().trim_safe().await?;
        if trimmed > 0 {
            self.inner.metrics.entries_trimmed.inc_by(trimmed);
            tracing::info!(trimmed, "trimmed the input stream");
        }
        Ok(trimmed)
    }

    /// Samples the stream-length gauges: undelivered input entries and the output length.
    pub async fn sample_gauges(&self) -> Result<(), ConsumerError> {
        let inner = &self.inner;
        let waiting = self.group().undelivered_count().await?;
        inner.metrics.repos_waiting.set(waiting as i64);
        let output: u64 = inner
            .redis
            .clone()
            .xlen(&inner.keys.firehose_backfill)
            .await
            .map_err(|source| ConsumerError::Redis {
                op: "XLEN",
                stream: inner.keys.firehose_backfill.clone(),
                group: GROUP.to_owned(),
                source,
            })?;
        inner.metrics.output_stream_length.set(output as i64);
        Ok(())
    }
}

fn parse_entry(entry: &StreamEntry) -> Result<BackfillEvent, Failure> {
    let payload = entry
        .field(REPO_FIELD)
        .ok_or_else(|| Failure::Malformed("the field is missing".to_owned()))?;
    serde_json::from_str(payload).map_err(|e| Failure::Malformed(e.to_string()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn log_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(err) = done {
        tracing::error!(error = %err, "a repository task panicked; its entry stays pending");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsky_common::config::Settings;

    #[test]
    fn max_retries_r_is_the_shared_rule_with_r_plus_one_deliveries() {
        let config = Config::from_pairs([("BACKFILLER_MAX_RETRIES", "3")]).unwrap();
        let policy = config.retry_policy();
        // Deliveries 1..=3 are the first attempt and two retries; the fourth is the third retry,
        // after which the entry is dead-lettered.
        assert!(!policy.exhausted(3));
        assert!(policy.exhausted(4));
        assert_eq!(policy.backoff(2), config.retry_backoff * 2);
    }
}
