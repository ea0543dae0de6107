//! The backfiller: reads repositories to backfill from the `repo_backfill` stream (as a member of
//! the `repo_backfill_group` consumer group), downloads each from its PDS, verifies it and writes
//! its records to `firehose_backfill`.
//!
//! One module per stage: [`config`] (the environment), [`resolve`] (DID to PDS and key, cached in
//! Redis), [`fetch`] (`getRepo`), [`repo`] (CAR, commit, signature, MST, records), [`sink`]
//! (atomic pipelines to the output stream), [`worker`] (the consumer-group loop, retries,
//! dead letters, trimming) and [`metrics`].

pub mod config;
pub mod fetch;
pub mod metrics;
pub mod repo;
pub mod resolve;
pub mod sink;
pub mod worker;

pub use config::{Config, ConfigError, Keys};
pub use metrics::{BackfillerMetrics, SharedMetrics};
pub use worker::{Backfiller, WorkerError};
