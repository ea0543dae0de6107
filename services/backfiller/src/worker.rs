//! The backfiller's half of the shared stream worker (`rsky_common::worker`): what an entry of
//! `repo_backfill` means. The worker reads a batch (this consumer's pending entries first, then
//! new ones), hands it to [`Backfiller`] as a [`Processor`], settles each entry as decided here,
//! and keeps the housekeeping (reclaiming entries idle in a dead consumer, safe trimming,
//! sampling) on one schedule.
//!
//! **Concurrency.** A read batch holds at most `BACKFILLER_CONCURRENCY` entries and its
//! repositories are processed concurrently, all of them at once; the next batch is read once the
//! whole batch is settled. Entries this backfiller has not read stay available to the other
//! backfillers of the group. A slow repository holds up the next read, not the others of its
//! batch.
//!
//! **Redis down.** When writing the events or the DID cache fails, the entry is paused
//! ([`Settle::Pause`]): the worker reads nothing until Redis answers a PING, and the entry's
//! delivery is given back, so an outage of any length dead-letters nothing.
//!
//! **Retries.** A failed repository is left pending ([`Settle::Retry`]); the worker waits its
//! backoff and the next read delivers it again, which Redis counts, so the count survives a
//! restart. The shared [`RetryPolicy`] (`STREAM_MAX_DELIVERIES`) dead-letters it, with the reason and the delivery count, on its last delivery. A repository
//! the PDS says is gone is acknowledged at once; an entry that is not a BackfillEvent is
//! dead-lettered at once.
//!
//! [`RetryPolicy`]: rsky_common::worker::RetryPolicy

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use rsky_common::consumer::{ConsumerConfig, ConsumerError, GroupConsumer, StreamEntry};
use rsky_common::event::BackfillEvent;
use rsky_common::shutdown::Shutdown;
use rsky_common::streams::REPO_FIELD;
use rsky_common::worker::{Processor, Settle, Worker};
use rsky_metrics_runtime::{counted, CountAs};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, GROUP};
use crate::fetch::{self, FetchError};
use crate::metrics::BackfillerMetrics;
use crate::repo::{self, LoadError};
use crate::resolve::{ResolveError, Resolver};
use crate::sink;
use rsky_common::streams::Streams;

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

    /// Whether the failure may come from a stale cached DID resolution: the PDS says the
    /// repository is not there or deactivated (the account may have migrated), or the commit
    /// does not verify (the key may have rotated).
    pub fn may_be_stale_did(&self) -> bool {
        match self {
            Failure::Fetch(FetchError::Unavailable { error, .. }) => {
                error == "RepoNotFound" || error == "RepoDeactivated"
            }
            Failure::Load(LoadError::Verification { .. }) => true,
            _ => false,
        }
    }

    /// Whether the backfiller's own Redis failed (writing the events, or the DID cache): the
    /// worker pauses until it answers, and the entry spends no delivery.
    pub fn is_redis(&self) -> bool {
        matches!(
            self,
            Failure::Write { .. } | Failure::Resolve(ResolveError::Cache { .. })
        )
    }

    /// Whether a body was larger than its limit: it will not shrink, so the entry is
    /// dead-lettered at once.
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            Failure::Fetch(FetchError::TooLarge(_))
                | Failure::Resolve(ResolveError::TooLarge { .. })
        )
    }
}

/// A backfiller: one consumer of the `repo_backfill_group`, and the [`Processor`] of its
/// stream worker.
#[derive(Clone)]
pub struct Backfiller {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    keys: Streams,
    redis: ConnectionManager,
    /// The group's non-blocking operations: acknowledgements in the sink's pipelines, trimming,
    /// sampling. The worker's blocking reads have a consumer (and a connection) of their own.
    group: GroupConsumer,
    http: reqwest::Client,
    resolver: Resolver,
    metrics: Arc<BackfillerMetrics>,
}

impl Backfiller {
    /// Connects to Redis and prepares the HTTP client. Nothing is read until [`Backfiller::run`].
    pub async fn connect(
        config: Config,
        metrics: Arc<BackfillerMetrics>,
    ) -> Result<Self, WorkerError> {
        let keys = config.streams().clone();
        let pipeline = &config.pipeline;
        let redis = pipeline.connect().await.map_err(|err| WorkerError::Redis {
            what: "connecting to Redis",
            stream: keys.repo_backfill.clone(),
            source: err.into_redis(),
        })?;
        let group = GroupConsumer::connect(
            &pipeline.redis_url,
            pipeline.redis_timeouts,
            consumer_config(&config, &keys),
        )
        .await?;
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
                http,
                resolver,
                metrics,
            }),
        })
    }

    /// The stream and key names in use.
    pub fn keys(&self) -> &Streams {
        &self.inner.keys
    }

    /// Creates the consumer group (and the stream) if they do not exist yet.
    pub async fn ensure_group(&self) -> Result<(), WorkerError> {
        Ok(self.inner.group.clone().create_group().await?)
    }

    /// Runs the stream worker until `shutdown` is cancelled; the batch in hand is finished and
    /// settled, then the input stream is trimmed once more.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let inner = &self.inner;
        self.ensure_group().await?;
        let pipeline = &inner.config.pipeline;
        let reader = GroupConsumer::connect(
            &pipeline.redis_url,
            pipeline.redis_timeouts,
            consumer_config(&inner.config, &inner.keys),
        )
        .await?;
        let worker = Worker::new(
            reader,
            self.clone(),
            inner.config.worker.retry_policy(),
            inner.config.worker.housekeeping(),
            inner.config.concurrency,
        );
        worker.run(shutdown).await;
        if let Err(err) = self.trim().await {
            tracing::warn!(error = %err, "trimming at shutdown failed");
        }
        tracing::info!("backfiller stopped");
        Ok(())
    }

    /// Waits while the output stream is at or above its high-water mark
    /// ([`rsky_common::pipeline::wait_for_room`]), sampling its length into
    /// `output_stream_length`. The worker stops waiting at shutdown (it drops this future).
    async fn wait_for_output_capacity(&self) {
        let inner = &self.inner;
        let mut redis = inner.redis.clone();
        rsky_common::pipeline::wait_for_room(
            &mut redis,
            &inner.keys.firehose_backfill,
            inner.config.high_water_mark,
            inner.config.pipeline.backpressure_poll,
            &inner.metrics.backpressure_active,
            &Shutdown::new(),
            |len| {
                if let Ok(len) = len {
                    inner.metrics.output_stream_length.set(len as i64);
                }
            },
        )
        .await;
    }

    /// Processes one entry to its decision: acknowledge (done or skipped), retry, or
    /// dead-letter (malformed).
    async fn handle_entry(&self, entry: &StreamEntry) -> Settle {
        let metrics = &self.inner.metrics;
        if entry.fields.is_empty() {
            // Deleted from the stream while pending: finished by an earlier delivery.
            return Settle::Ack;
        }
        let event = match parse_entry(entry) {
            Ok(event) => event,
            Err(failure) => {
                metrics.repos_failed.inc();
                metrics.errors[failure.count_as()].inc();
                return Settle::DeadLetter {
                    reason: failure.to_string(),
                };
            }
        };
        if entry.deliveries > 1 {
            metrics.retries_attempted.inc();
        }
        // The attempt counts itself in repos_failed when it fails.
        let failure = match self.attempt(entry, &event).await {
            Ok(()) => return Settle::Ack,
            Err(failure) => failure,
        };
        metrics.errors[failure.count_as()].inc();
        if failure.is_skip() {
            metrics.repos_skipped.inc();
            tracing::info!(did = %event.did, id = %entry.id, reason = %failure, "acknowledging without retry");
            return Settle::Ack;
        }
        if failure.is_too_large() {
            return Settle::DeadLetter {
                reason: failure.to_string(),
            };
        }
        if failure.is_redis() {
            // Our own Redis, not the repository: pause without spending the delivery.
            tracing::warn!(did = %event.did, id = %entry.id, reason = %failure,
                "Redis failed; pausing until it answers");
            return Settle::Pause {
                reason: failure.to_string(),
            };
        }
        tracing::info!(did = %event.did, id = %entry.id, deliveries = entry.deliveries,
            reason = %failure, "attempt failed");
        Settle::Retry {
            reason: failure.to_string(),
        }
    }

    /// Trims `repo_backfill` below its oldest entry that any group has not finished: the oldest
    /// pending entry, or the first undelivered one. Returns how many entries were removed.
    pub async fn trim(&self) -> Result<u64, ConsumerError> {
        let trimmed = self.inner.group.clone().trim_safe().await?;
        if trimmed > 0 {
            self.inner.metrics.entries_trimmed.inc_by(trimmed);
            tracing::info!(trimmed, "trimmed the input stream");
        }
        Ok(trimmed)
    }

    /// Samples the stream-length gauges: undelivered input entries and the output length.
    pub async fn sample_gauges(&self) -> Result<(), ConsumerError> {
        let inner = &self.inner;
        let waiting = inner.group.clone().undelivered_count().await?;
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

    /// Resolves `did` (through the cache), downloads, reads and verifies its repository. When
    /// the DID came from the cache and the PDS says the repository is not there or deactivated,
    /// or the commit does not verify, the DID is resolved again, once, and, if its PDS or key
    /// changed (the account migrated, the key rotated), the repository is fetched from there.
    async fn resolve_and_load(&self, did: &str) -> Result<repo::Repo, Failure> {
        let inner = &self.inner;
        let (resolved, cached) = inner.resolver.resolve(did, &inner.metrics).await?;
        let failure = match self.fetch_and_load(did, &resolved).await {
            Err(failure) if cached && failure.may_be_stale_did() => failure,
            result => return result,
        };
        tracing::info!(did, reason = %failure, "the cached PDS or key may be stale; resolving the DID again");
        let fresh = inner.resolver.refresh(did).await?;
        if fresh == resolved {
            return Err(failure);
        }
        tracing::info!(did, pds = %fresh.pds, "the DID resolves elsewhere now; fetching again");
        self.fetch_and_load(did, &fresh).await
    }

    /// Downloads, reads and verifies the repository of `did` as `resolved` says.
    async fn fetch_and_load(
        &self,
        did: &str,
        resolved: &crate::resolve::ResolvedDid,
    ) -> Result<repo::Repo, Failure> {
        let config = &self.inner.config;
        let car = fetch::get_repo(
            &self.inner.http,
            &resolved.pds,
            did,
            config.fetch_timeout,
            config.max_repo_bytes,
        )
        .await?;
        let (did_owned, key) = (did.to_owned(), resolved.signing_key.clone());
        let loaded = tokio::task::spawn_blocking(move || repo::load(car, &did_owned, &key))
            .await
            .map_err(|join| {
                Failure::Load(LoadError::Parse {
                    did: did.to_owned(),
                    source: Box::new(rsky_atproto::repo::RepoError::InvalidCommit(format!(
                        "loading panicked: {join}"
                    ))),
                })
            })??;
        Ok(loaded)
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
        let loaded = self
            .resolve_and_load(did)
            .await
            .inspect_err(|failure| match failure {
                Failure::Resolve(_) => metrics.did_resolution_errors.inc(),
                Failure::Fetch(_) => metrics.car_fetch_errors.inc(),
                Failure::Load(LoadError::Parse { .. }) => metrics.car_parse_errors.inc(),
                Failure::Load(LoadError::Verification { .. }) => metrics.verification_errors.inc(),
                Failure::Malformed(_) | Failure::Write { .. } => {}
            })?;
        let filtered = loaded.filtered;
        for (path, reason) in &loaded.invalid {
            tracing::warn!(did, path, %reason, "invalid record left out");
        }
        let invalid = loaded.invalid.len() as u64;
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
        metrics.records_invalid.inc_by(invalid);
        metrics.repos_processed.inc();
        tracing::debug!(
            did,
            records = written.creates,
            filtered,
            "repository backfilled"
        );
        Ok(())
    }
}

impl Processor for Backfiller {
    async fn process(&self, entries: &[StreamEntry]) -> Vec<Settle> {
        // By index: a stream of borrowed entries trips the compiler's `Send` inference.
        futures::stream::iter(0..entries.len())
            .map(|i| -> BoxFuture<'_, Settle> { Box::pin(self.handle_entry(&entries[i])) })
            .buffered(self.inner.config.concurrency)
            .collect()
            .await
    }

    async fn ready(&self) {
        self.wait_for_output_capacity().await
    }

    async fn recovered(&self) -> bool {
        let mut redis = self.inner.redis.clone();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut redis);
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), ping).await,
            Ok(Ok(_))
        )
    }

    async fn sample(&self) {
        if let Err(err) = self.sample_gauges().await {
            tracing::warn!(error = %err, "sampling the stream lengths failed");
        }
    }

    fn dead_lettered(&self, _entry: &StreamEntry, _reason: &str) {
        self.inner.metrics.repos_dead_lettered.inc();
    }

    fn group_recreated(&self) {
        self.inner.metrics.consumer_groups_recreated.inc();
    }

    fn trimmed(&self, entries: u64) {
        if entries > 0 {
            self.inner.metrics.entries_trimmed.inc_by(entries);
            tracing::info!(trimmed = entries, "trimmed the input stream");
        }
    }
}

fn consumer_config(config: &Config, keys: &Streams) -> ConsumerConfig {
    config.worker.consumer(
        &keys.repo_backfill,
        GROUP,
        &config.consumer,
        &keys.repo_backfill_dlq,
    )
}

fn parse_entry(entry: &StreamEntry) -> Result<BackfillEvent, Failure> {
    let payload = entry
        .field(REPO_FIELD)
        .ok_or_else(|| Failure::Malformed("the field is missing".to_owned()))?;
    serde_json::from_str(payload).map_err(|e| Failure::Malformed(e.to_string()))
}
