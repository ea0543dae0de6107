//! What to run, and where.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The binaries of other packages that the stack runs.
pub const SERVICE_BINARIES: [&str; 5] = [
    "test-pds",
    "test-relay",
    "ingester",
    "backfiller",
    "indexer",
];

/// The packages that build [`SERVICE_BINARIES`].
pub const SERVICE_PACKAGES: [&str; 4] = [
    "rsky-testkit",
    "rsky-ingester",
    "rsky-backfiller",
    "rsky-indexer",
];

/// The accounts `test-pds` hosts after the served ones: a bad signature, a truncated CAR, an
/// HTTP 500 and a missing repository (`rsky_testkit::pds::LOAD_FAILURES`).
pub(super) const FAILING_ACCOUNTS: usize = rsky_testkit::pds::LOAD_FAILURES.len();

/// What to run, and where.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Where the [`SERVICE_BINARIES`] are.
    pub bin_dir: PathBuf,
    /// Logs, the Prometheus config copy and its data go here.
    pub work_dir: PathBuf,
    /// Redis (must be running).
    pub redis_url: String,
    /// A PostgreSQL URL the stack can create its database with (must be running).
    pub database_url: String,
    /// The database the indexers write to; created when missing.
    pub database: String,
    /// Prefix of every Redis key the services use.
    pub key_prefix: String,
    /// Prometheus's scrape and rule evaluation interval.
    pub scrape_interval: Duration,
    /// Prometheus's address (port 0: a free port).
    pub prometheus_addr: SocketAddr,
    /// Firehose events per second from the test relay.
    pub relay_rate: u64,
    /// Accounts posting on the firehose.
    pub relay_accounts: usize,
    /// Repositories on the test PDS that backfill successfully (a few failing ones are added).
    pub backfill_accounts: usize,
    /// Records in each of those repositories.
    pub records_per_repo: usize,
    /// Backfiller processes.
    pub backfillers: usize,
    /// Indexer processes.
    pub indexers: usize,
}

impl StackOptions {
    /// Defaults for a demo on this machine: Redis and PostgreSQL on 127.0.0.1, Prometheus on
    /// 127.0.0.1:9090 scraping every 15 s (as in production), 2 backfillers and 2 indexers.
    pub fn demo(bin_dir: PathBuf, work_dir: PathBuf) -> Self {
        StackOptions {
            bin_dir,
            work_dir,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
            database: "rsky_local_stack".to_owned(),
            key_prefix: "local-stack:".to_owned(),
            scrape_interval: Duration::from_secs(15),
            prometheus_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            relay_rate: 100,
            relay_accounts: 500,
            backfill_accounts: 20,
            records_per_repo: 30,
            backfillers: 2,
            indexers: 2,
        }
    }
}
