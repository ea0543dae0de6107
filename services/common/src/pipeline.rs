//! The pipeline context: what every service of the pipeline is told about the streams, in one
//! vocabulary, and the few operations built on it (connecting, waiting for room in a stream).
//!
//! - [`PipelineSettings`] (every service): `REDIS_URL`, `REDIS_KEY_PREFIX` (read as
//!   [`Streams`], the one stream-names type), the Redis timeouts and `BACKPRESSURE_POLL_MS`.
//! - [`WorkerSettings`] (every service that consumes a stream with the [`crate::worker`]): the
//!   `STREAM_*` settings of a consumer group worker and `DEAD_LETTER_MAX_LEN`.
//!
//! A service flattens them into its own settings (`#[command(flatten)]`), so `--help` lists
//! each once with the same name and meaning in every service; values reach the code as fields
//! and arguments, never through process-wide statics. Names the services used before this
//! context are listed in [`WorkerSettings::RENAMED_INDEXER`] and
//! [`WorkerSettings::RENAMED_BACKFILLER`] and still read ([`crate::config::Settings::RENAMED`]),
//! with a warning naming the new one.

use std::time::{Duration, Instant};

use rsky_metrics_runtime::IntGauge;

use crate::config::{at_least, millis_at_least, Renamed};
use crate::consumer::ConsumerConfig;
use crate::shutdown::Shutdown;
use crate::store::{self, Connection, RedisTimeouts, StoreError};
use crate::streams::{Streams, PREFIX_ENV};
use crate::worker::{Housekeeping, RetryPolicy};

/// Where the streams are and how to reach them: the settings every pipeline service shares.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct PipelineSettings {
    /// The Redis the streams, cursors and caches are in.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prepended to every stream and key name (tests use their own; empty in production).
    #[arg(id = "stream_names", long = "redis-key-prefix", env = PREFIX_ENV, default_value = "", hide_default_value = true, value_parser = streams)]
    pub streams: Streams,
    /// The timeouts of every Redis connection.
    #[command(flatten)]
    pub redis_timeouts: RedisTimeouts,
    /// How often a writer waiting for room in a full stream checks its length again (ms).
    #[arg(long = "backpressure-poll-ms", env = "BACKPRESSURE_POLL_MS", default_value = "1000", value_parser = millis_at_least(1))]
    pub backpressure_poll: Duration,
}

fn streams(prefix: &str) -> Result<Streams, String> {
    Ok(Streams::new(prefix.trim()))
}

impl PipelineSettings {
    /// Connects to `REDIS_URL` with the configured timeouts ([`store::connect`]).
    pub async fn connect(&self) -> Result<Connection, StoreError> {
        store::connect(&self.redis_url, self.redis_timeouts).await
    }
}

/// The settings of a consumer-group stream worker ([`crate::worker::Worker`]): one name and one
/// meaning in every service.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// How long one read waits for new entries (ms).
    #[arg(long = "stream-block-ms", env = "STREAM_BLOCK_MS", default_value = "1000", value_parser = millis_at_least(1))]
    pub block: Duration,
    /// An entry idle this long in another consumer's pending list is claimed (ms).
    #[arg(long = "stream-claim-idle-ms", env = "STREAM_CLAIM_IDLE_MS", default_value = "300000", value_parser = millis_at_least(1))]
    pub claim_idle: Duration,
    /// How often idle entries of other consumers are claimed (ms).
    #[arg(long = "stream-claim-interval-ms", env = "STREAM_CLAIM_INTERVAL_MS", default_value = "30000", value_parser = millis_at_least(1))]
    pub claim_interval: Duration,
    /// Deliveries, the first included, after which a failing entry is dead-lettered.
    #[arg(long = "stream-max-deliveries", env = "STREAM_MAX_DELIVERIES", default_value = "5", value_parser = at_least(1u64))]
    pub max_deliveries: u64,
    /// The first pause after a batch that made no progress (ms); it doubles up to the longest.
    #[arg(long = "stream-retry-backoff-ms", env = "STREAM_RETRY_BACKOFF_MS", default_value = "500", value_parser = millis_at_least(1))]
    pub retry_backoff: Duration,
    /// The longest pause between batches that made no progress (ms).
    #[arg(long = "stream-retry-backoff-max-ms", env = "STREAM_RETRY_BACKOFF_MAX_MS", default_value = "30000", value_parser = millis_at_least(1))]
    pub retry_backoff_max: Duration,
    /// How often the stream is trimmed below its oldest unfinished entry (ms).
    #[arg(long = "stream-trim-interval-ms", env = "STREAM_TRIM_INTERVAL_MS", default_value = "60000", value_parser = millis_at_least(1))]
    pub trim_interval: Duration,
    /// How often pending counts and the service's gauges are sampled (ms).
    #[arg(long = "stream-sample-interval-ms", env = "STREAM_SAMPLE_INTERVAL_MS", default_value = "5000", value_parser = millis_at_least(1))]
    pub sample_interval: Duration,
    /// Dead-letter streams are trimmed to about this many entries, oldest first.
    #[arg(long, env = "DEAD_LETTER_MAX_LEN", default_value_t = crate::dead_letter::DEFAULT_MAX_LEN, value_parser = at_least(1u64))]
    pub dead_letter_max_len: u64,
}

impl WorkerSettings {
    /// The indexer's names before the pipeline context.
    pub const RENAMED_INDEXER: &'static [Renamed] = &[
        Renamed::same("INDEXER_BLOCK_MS", "STREAM_BLOCK_MS"),
        Renamed::same("INDEXER_CLAIM_IDLE_MS", "STREAM_CLAIM_IDLE_MS"),
        Renamed::same("INDEXER_CLAIM_INTERVAL_MS", "STREAM_CLAIM_INTERVAL_MS"),
        Renamed::same("INDEXER_MAX_DELIVERIES", "STREAM_MAX_DELIVERIES"),
        Renamed::same("INDEXER_RETRY_BACKOFF_MS", "STREAM_RETRY_BACKOFF_MS"),
        Renamed::same("INDEXER_TRIM_INTERVAL_MS", "STREAM_TRIM_INTERVAL_MS"),
        Renamed::same("INDEXER_SAMPLE_INTERVAL_MS", "STREAM_SAMPLE_INTERVAL_MS"),
    ];

    /// The backfiller's names before the pipeline context. `BACKFILLER_MAX_RETRIES = r` counted
    /// retries after the first attempt: it is read as `STREAM_MAX_DELIVERIES = r + 1`.
    pub const RENAMED_BACKFILLER: &'static [Renamed] = &[
        Renamed::same("BACKFILLER_READ_BLOCK_MS", "STREAM_BLOCK_MS"),
        Renamed::same("BACKFILLER_RECLAIM_IDLE_MS", "STREAM_CLAIM_IDLE_MS"),
        Renamed::plus_one("BACKFILLER_MAX_RETRIES", "STREAM_MAX_DELIVERIES"),
        Renamed::same("BACKFILLER_RETRY_BACKOFF_MS", "STREAM_RETRY_BACKOFF_MS"),
        Renamed::same(
            "BACKFILLER_RETRY_BACKOFF_MAX_MS",
            "STREAM_RETRY_BACKOFF_MAX_MS",
        ),
        Renamed::same("BACKFILLER_TRIM_INTERVAL_MS", "STREAM_TRIM_INTERVAL_MS"),
        Renamed::same("BACKFILLER_SAMPLE_INTERVAL_MS", "STREAM_SAMPLE_INTERVAL_MS"),
        Renamed::same("BACKFILLER_BACKPRESSURE_POLL_MS", "BACKPRESSURE_POLL_MS"),
    ];

    /// The one retry rule with these settings.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_deliveries: self.max_deliveries,
            backoff: self.retry_backoff,
            backoff_max: self.retry_backoff_max.max(self.retry_backoff),
        }
    }

    /// The housekeeping schedule with these settings.
    pub fn housekeeping(&self) -> Housekeeping {
        Housekeeping::new(
            self.claim_interval,
            self.trim_interval,
            self.sample_interval,
        )
    }

    /// The consumer of `group` on `stream`, named `consumer`, dead-lettering to `dead_letter`.
    pub fn consumer(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        dead_letter: &str,
    ) -> ConsumerConfig {
        ConsumerConfig {
            stream: stream.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            dead_letter_stream: dead_letter.to_owned(),
            dead_letter_max_len: self.dead_letter_max_len,
            block: self.block,
            claim_min_idle: self.claim_idle,
        }
    }
}

/// Waits while `stream` holds `high_water_mark` entries or more (checking every `poll`), with
/// `active` at 1 meanwhile and at 0 when it returns. Every length read is handed to `observe`
/// as `Ok(len)`, every failed read as `Err` (the wait goes on: a Redis that does not answer
/// gives no room). Returns early when `shutdown` is cancelled. The one backpressure loop of the
/// pipeline: the ingester before each write, the backfiller before each read.
pub async fn wait_for_room(
    conn: &mut Connection,
    stream: &str,
    high_water_mark: u64,
    poll: Duration,
    active: &IntGauge,
    shutdown: &Shutdown,
    mut observe: impl FnMut(Result<u64, &StoreError>),
) {
    let _active = ActiveGuard(active);
    let mut waiting_since: Option<Instant> = None;
    loop {
        match store::stream_len(conn, stream).await {
            Ok(len) => {
                observe(Ok(len));
                if len < high_water_mark {
                    break;
                }
                if waiting_since.is_none() {
                    tracing::warn!(%stream, len, high_water_mark, "backpressure: waiting for consumers to drain the stream");
                    waiting_since = Some(Instant::now());
                    active.set(1);
                }
            }
            Err(err) => {
                observe(Err(&err));
                tracing::warn!(%stream, error = %err, "cannot check the stream length; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    if let Some(since) = waiting_since {
        tracing::info!(%stream, waited = ?since.elapsed(), "backpressure released");
    }
}

/// Sets the gauge back to 0 however the wait ends (returned, or dropped at shutdown).
struct ActiveGuard<'a>(&'a IntGauge);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[derive(clap::Args, Debug)]
    struct Service {
        #[command(flatten)]
        pipeline: PipelineSettings,
        #[command(flatten)]
        worker: WorkerSettings,
    }
    impl Settings for Service {
        const RENAMED: &'static [Renamed] = WorkerSettings::RENAMED_BACKFILLER;
    }

    #[test]
    fn one_vocabulary_with_the_documented_defaults() {
        let service = Service::from_pairs([("REDIS_KEY_PREFIX", "t1:")]).unwrap();
        assert_eq!(service.pipeline.streams.repo_backfill, "t1:repo_backfill");
        assert_eq!(service.pipeline.redis_timeouts, RedisTimeouts::DEFAULT);
        assert_eq!(service.worker.block, Duration::from_secs(1));
        assert_eq!(service.worker.max_deliveries, 5);
        let consumer = service.worker.consumer("s", "g", "c", "s_dlq");
        assert_eq!(
            consumer.dead_letter_max_len,
            crate::dead_letter::DEFAULT_MAX_LEN
        );
        assert_eq!(consumer.claim_min_idle, Duration::from_secs(300));
    }

    #[test]
    fn the_old_names_are_still_read_and_max_retries_counts_one_delivery_less() {
        let service = Service::from_pairs([
            ("BACKFILLER_READ_BLOCK_MS", "70"),
            ("BACKFILLER_MAX_RETRIES", "3"),
            ("BACKFILLER_BACKPRESSURE_POLL_MS", "9"),
        ])
        .unwrap();
        assert_eq!(service.worker.block, Duration::from_millis(70));
        assert_eq!(service.worker.max_deliveries, 4);
        assert_eq!(service.pipeline.backpressure_poll, Duration::from_millis(9));
    }

    #[test]
    fn a_new_name_wins_over_its_old_one() {
        let service = Service::from_pairs([
            ("BACKFILLER_READ_BLOCK_MS", "70"),
            ("STREAM_BLOCK_MS", "80"),
        ])
        .unwrap();
        assert_eq!(service.worker.block, Duration::from_millis(80));
    }

    #[test]
    fn a_bad_old_value_names_the_old_variable() {
        let err = Service::from_pairs([("BACKFILLER_MAX_RETRIES", "many")]).unwrap_err();
        assert_eq!(err.var, "BACKFILLER_MAX_RETRIES");
    }
}
