//! The end-to-end tests' support: the indexer's own test harness (an indexer in the test's
//! runtime on a registry of its own, its test configuration, table helpers), shared rather than
//! copied; servers, databases, stream prefixes and waiting come from `rsky_testkit::support`.

#[path = "../../../indexer/tests/common/mod.rs"]
mod indexer;

pub use indexer::*;
