//! An indexer running in the test's runtime, on a registry of its own, for the end-to-end tests.
//! Servers, databases, stream prefixes and waiting come from `rsky_testkit::support`.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use rsky_common::config::Settings;
use rsky_common::shutdown::Shutdown;
use rsky_indexer::{Config, Indexer, IndexerMetrics};
use rsky_metrics_runtime::Registry;
pub use rsky_testkit::support::{redis_url, wait_until, TestDb, TestStreams};
use tokio::task::JoinHandle;

/// The six collections with their own table.
pub const COLLECTIONS: [(&str, &str); 6] = [
    ("app.bsky.feed.post", "post"),
    ("app.bsky.feed.like", "like"),
    ("app.bsky.feed.repost", "repost"),
    ("app.bsky.graph.follow", "follow"),
    ("app.bsky.graph.block", "actor_block"),
    ("app.bsky.actor.profile", "profile"),
];

/// A database of its own.
pub async fn test_db() -> TestDb {
    TestDb::create("e2e_test").await
}

/// An indexer on `database_url` and the test's streams, in `INDEXER_MODE=stream`.
pub fn indexer_config(database_url: &str, streams: &TestStreams) -> Config {
    Config::from_pairs([
        ("REDIS_URL", redis_url()),
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_KEY_PREFIX", streams.prefix.clone()),
        ("INDEXER_CONSUMER", "e2e-consumer".to_owned()),
        ("INDEXER_MODE", "stream".to_owned()),
        ("INDEXER_BLOCK_MS", "100".to_owned()),
        ("INDEXER_SAMPLE_INTERVAL_MS", "50".to_owned()),
        ("INDEXER_RETRY_BACKOFF_MS", "50".to_owned()),
        ("INDEXER_BATCH_SIZE", "100".to_owned()),
        ("DB_POOL_MAX_SIZE", "8".to_owned()),
    ])
    .expect("the e2e indexer configuration is valid")
}

/// An indexer running in the test's runtime, with its own registry.
pub struct RunningIndexer {
    pub metrics: Arc<IndexerMetrics>,
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl RunningIndexer {
    pub async fn start(config: Config) -> RunningIndexer {
        let registry = Registry::new();
        let metrics = Arc::new(IndexerMetrics::register(&registry).expect("register metrics"));
        let indexer = Indexer::connect(config, metrics.clone())
            .await
            .expect("indexer connects and migrates");
        let shutdown = Shutdown::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            indexer.run(token).await.expect("indexer runs");
        });
        RunningIndexer {
            metrics,
            shutdown,
            task,
        }
    }

    /// Cancels and waits for the drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the indexer drains within 20 s")
            .expect("the indexer task ends cleanly");
    }
}

pub async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(&format!(r#"SELECT count(*) FROM "{table}""#), &[])
        .await
        .expect("count")
        .get(0)
}

pub async fn count_where(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}
