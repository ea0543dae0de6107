//! The backfiller: reads repositories to backfill from the `repo_backfill` stream (as a member of
//! the `repo_backfill_group` consumer group), downloads each from its PDS, verifies it and writes
//! its records to `firehose_backfill`.
//!
//! One module per stage: [`config`] (the settings: flags and environment variables), [`resolve`]
//! (DID to PDS and key, cached in Redis), [`fetch`] (`getRepo`; bodies read under a size limit
//! by [`body`]), [`repo`] (CAR, commit, signature, MST, records), [`sink`] (atomic pipelines to
//! the output stream), [`worker`] (what an entry means: the [`Processor`] of the shared stream
//! worker, which reads, retries, dead-letters and trims) and [`metrics`].
//!
//! [`Processor`]: rsky_common::worker::Processor

pub mod body;
pub mod config;
pub mod fetch;
pub mod metrics;
pub mod repo;
pub mod resolve;
pub mod sink;
pub mod worker;

pub use config::{Config, ConfigError};
pub use metrics::BackfillerMetrics;
pub use worker::{Backfiller, WorkerError};

/// Connects, runs until `shutdown`, finishes the repositories in flight: what the `backfiller`
/// binary runs.
pub async fn run(
    config: Config,
    metrics: std::sync::Arc<BackfillerMetrics>,
    shutdown: rsky_common::shutdown::Shutdown,
) -> Result<(), WorkerError> {
    Backfiller::connect(config, metrics)
        .await?
        .run(shutdown)
        .await
}
