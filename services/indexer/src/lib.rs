//! The indexer: reads the firehose and label streams from Redis through consumer groups and
//! writes them into PostgreSQL in the AppView layout, measuring everything it does.
//!
//! Stages, one module each:
//! - [`config`]: the settings (flags and environment variables), read in one place;
//! - [`source`] (private): one worker per stream: read (pending first), index, acknowledge,
//!   dead-letter, trim, sample;
//! - [`decode`]: entries to validated events (bad input is an expected error);
//! - [`db`] and [`schema`]: the pool, failure classes and the migrations;
//! - [`index`]: what each firehose event does in its transaction;
//! - [`labels`]: `label_live` -> `label`;
//! - [`metrics`]: the `indexer_*` metric set.
//!
//! The binary is `rsky_common::runner::main` over [`run`]; in a test or another program:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use rsky_common::config::Settings;
//! use rsky_indexer::{Config, Indexer, IndexerMetrics};
//! use rsky_metrics_runtime::Registry;
//!
//! let config = Config::from_pairs([("DATABASE_URL", "postgres://postgres@127.0.0.1/bsky")])?;
//! let metrics = Arc::new(IndexerMetrics::register(&Registry::new())?);
//! let indexer = Indexer::connect(config, metrics).await?;
//! indexer.run(rsky_common::shutdown::on_signal()).await?;
//! # Ok(()) }
//! ```

pub mod batch;
pub mod config;
pub mod db;
pub mod decode;
pub mod index;
pub mod labels;
pub mod metrics;
pub mod schema;
mod source;
pub mod tls;

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use deadpool_postgres::Pool;
use rsky_common::consumer::{ConsumerError, GroupConsumer};
use rsky_common::shutdown::Shutdown;
use tokio::task::JoinSet;

pub use config::{Config, Mode, StreamKind};
pub use db::DbError;
pub use metrics::IndexerMetrics;

use rsky_common::worker::Worker;
use source::{IndexProcessor, Shared};

/// Why the indexer could not start.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// The database is unreachable or a migration failed.
    #[error("{0} (check DATABASE_URL and that PostgreSQL is running)")]
    Db(#[from] DbError),
    /// Redis is unreachable or refused to create a consumer group.
    #[error("{0} (check REDIS_URL and that Redis is running)")]
    Redis(#[from] ConsumerError),
}

/// A connected indexer, ready to [`run`](Indexer::run).
pub struct Indexer {
    shared: Arc<Shared>,
}

impl Indexer {
    /// Creates the database pool, applies the migrations and checks the Redis URL.
    pub async fn connect(
        config: Config,
        metrics: Arc<IndexerMetrics>,
    ) -> Result<Indexer, IndexerError> {
        let pool = db::pool_with(
            &config.database_url,
            config.db_pool_max_size,
            &config.db_session(),
        )?;
        // Migrations on a connection of their own, without the statement and lock timeouts
        // (building an index on a large table may take longer).
        let migrations = db::pool_with(&config.database_url, 1, &db::Session::unbounded())?;
        schema::migrate(&migrations).await?;
        drop(migrations);
        // One connection of the pool opened now: its session settings are checked at start,
        // and the pool gauges show it from the first sample.
        drop(pool.get().await.map_err(DbError::from)?);
        let streams = config.consumed_streams().len();
        let shared = Arc::new(Shared {
            pending: (0..streams).map(|_| AtomicI64::new(0)).collect(),
            config,
            metrics,
            pool,
        });
        Ok(Indexer { shared })
    }

    /// The database pool (tests and tools query through it).
    pub fn pool(&self) -> &Pool {
        &self.shared.pool
    }

    /// Consumes every configured stream until `shutdown` is cancelled, then finishes and
    /// acknowledges the batches in hand and returns.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), IndexerError> {
        let config = &self.shared.config;
        let mut workers = Vec::new();
        for (slot, (stream, group, kind)) in config.consumed_streams().into_iter().enumerate() {
            let consumer_config = config.worker.consumer(
                &stream,
                &group,
                &config.consumer,
                &config.dead_letter_stream(&stream),
            );
            let pipeline = &config.pipeline;
            let mut consumer = GroupConsumer::connect(
                &pipeline.redis_url,
                pipeline.redis_timeouts,
                consumer_config,
            )
            .await?;
            consumer.create_group().await?;
            let processor = IndexProcessor::new(self.shared.clone(), stream, kind, slot);
            workers.push(Worker::new(
                consumer,
                processor,
                config.worker.retry_policy(),
                config.worker.housekeeping(),
                config.batch_size,
            ));
        }
        // Join sets abort their tasks when dropped: when this future is dropped (the task that
        // runs it aborted), no worker goes on reading or acknowledging on its own.
        let mut sampler = JoinSet::new();
        sampler.spawn(sample_pool(self.shared.clone(), shutdown.clone()));
        let mut tasks = JoinSet::new();
        for worker in workers {
            tasks.spawn(worker.run(shutdown.clone()));
        }
        while let Some(result) = tasks.join_next().await {
            if let Err(err) = result {
                tracing::error!(error = %err, "a stream worker panicked");
            }
        }
        shutdown.cancel();
        while sampler.join_next().await.is_some() {}
        Ok(())
    }
}

/// Connects, runs until `shutdown`, drains: what the `indexer` binary runs.
pub async fn run(
    config: Config,
    metrics: Arc<IndexerMetrics>,
    shutdown: Shutdown,
) -> Result<(), IndexerError> {
    Indexer::connect(config, metrics).await?.run(shutdown).await
}

/// Samples the pool's size, idle connections and waiting tasks into their gauges.
async fn sample_pool(shared: Arc<Shared>, shutdown: Shutdown) {
    loop {
        let status = shared.pool.status();
        let metrics = &shared.metrics;
        metrics.db_pool_connections.set(status.size as i64);
        metrics
            .db_pool_idle_connections
            .set(status.available as i64);
        metrics.db_pool_waiting_tasks.set(status.waiting as i64);
        tokio::select! {
            _ = tokio::time::sleep(shared.config.worker.sample_interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
