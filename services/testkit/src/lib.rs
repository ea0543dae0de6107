//! Test servers for the pipeline services, built from real encoders (DAG-CBOR, CIDs, CARv1,
//! signed MST repositories from `rsky-atproto`), on loopback.
//!
//! - [`relay`]: [`TestRelay`], serving `subscribeRepos`, `listRepos` and `subscribeLabels`
//!   from in-memory logs, with cursor resume and knobs for disconnects and failures.
//! - [`firehose`]: [`FirehoseScript`], commits (create/update/delete), identity, account,
//!   sync, info, error and malformed frames.
//! - `indexer` (feature `indexer`): the indexer's fixtures, shared by its tests and the
//!   end-to-end tests: an indexer in the test's runtime, its test configuration, event builders,
//!   table helpers.
//! - [`labels`]: `#labels` frames.
//! - [`load`]: a steady, realistic stream of accounts posting, liking and following.
//! - [`log`]: the frame log the relay serves from.
//! - [`pds`]: [`TestPds`], serving `listRepos`, `getRepo` (signed repository CARs with an MST)
//!   and a did:web document, with every failure a backfiller must handle.
//! - [`plc`]: [`TestPlc`], a PLC directory serving DID documents.
//! - [`binary`]: the checks every service binary passes (`--help`, `--version`, a bad value,
//!   `health`, SIGTERM, JSON logs).
//! - [`spec`]: the metric names the services' spec fixes, one list per service.
//! - [`support`]: what every test shares: the Redis and PostgreSQL servers (`TEST_REDIS_URL`,
//!   `TEST_DATABASE_URL`), unique names, [`support::wait_until`], a database and stream names per
//!   test, and a TCP proxy that can be cut.
#![warn(missing_docs)]

pub mod binary;
pub mod firehose;
#[cfg(feature = "indexer")]
pub mod indexer;
pub mod labels;
pub mod load;
pub mod log;
pub mod pds;
pub mod plc;
pub mod relay;
pub mod spec;
pub mod support;

pub use firehose::{FirehoseScript, Op, RawOp};
pub use log::Item;
pub use pds::{Behaviour, TestAccount, TestPds};
pub use plc::TestPlc;
pub use relay::{ListedRepo, TestRelay};

/// Locks a mutex of a test server's shared state; a panicked test thread does not poison the
/// server for the tests that follow.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
