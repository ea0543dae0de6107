//! The indexer's test fixtures, shared by its own tests and the end-to-end tests (feature
//! `indexer`): an indexer running in the test's runtime on a registry of its own, its test
//! configuration, event builders and table helpers. Servers, databases, stream prefixes, waiting
//! and the TCP proxy come from [`crate::support`] (re-exported here).

use std::sync::Arc;
use std::time::Duration;

pub use crate::support::{
    pg_addr, redis_addr, redis_url, wait_until, TcpProxy, TestDb, TestStreams,
};
use rsky_common::config::Settings;
use rsky_common::event::{
    AccountEvent, DeleteEvent, IdentityEvent, Label, RecordEvent, RepoEvent, StreamEvent,
};
use rsky_common::shutdown::Shutdown;
use rsky_indexer::{Config, Indexer, IndexerMetrics};
use rsky_metrics_runtime::Registry;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// A valid CID, used wherever an event needs one.
pub const CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

/// A database of its own for an indexer test.
pub async fn test_db() -> TestDb {
    TestDb::create("indexer_test").await
}

/// The configuration of a test indexer: its own database, prefix and quick intervals.
pub fn config(database_url: &str, streams: &TestStreams, extra: &[(&str, &str)]) -> Config {
    let mut pairs: Vec<(String, String)> = vec![
        ("REDIS_URL".into(), redis_url()),
        ("DATABASE_URL".into(), database_url.into()),
        ("REDIS_KEY_PREFIX".into(), streams.prefix.clone()),
        ("INDEXER_CONSUMER".into(), "test-consumer".into()),
        ("STREAM_BLOCK_MS".into(), "100".into()),
        ("STREAM_SAMPLE_INTERVAL_MS".into(), "50".into()),
        ("STREAM_RETRY_BACKOFF_MS".into(), "50".into()),
        ("INDEXER_BATCH_SIZE".into(), "100".into()),
        ("DB_POOL_MAX_SIZE".into(), "8".into()),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push(((*k).into(), (*v).into()));
    }
    Config::from_pairs(pairs).expect("test configuration")
}

/// A fresh database, fresh streams and an indexer on them (`extra`: settings on top of
/// [`config`]'s).
pub async fn start_indexer(extra: &[(&str, &str)]) -> (TestDb, TestStreams, Running) {
    let db = test_db().await;
    let streams = TestStreams::new();
    let indexer = Running::start(config(&db.url(), &streams, extra)).await;
    (db, streams, indexer)
}

/// An indexer running in the test's runtime, with its own registry.
pub struct Running {
    /// Its metrics.
    pub metrics: Arc<IndexerMetrics>,
    /// The registry its metrics are in.
    pub registry: Registry,
    /// Cancel to stop it (with a drain).
    pub shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl Running {
    /// Connects (migrating the database) and runs an indexer on `config`, with fresh metrics.
    pub async fn start(config: Config) -> Running {
        let registry = Registry::new();
        let metrics = Arc::new(IndexerMetrics::register(&registry).expect("register metrics"));
        Self::start_with(config, metrics, registry).await
    }

    /// [`Running::start`] with the caller's metrics and registry.
    pub async fn start_with(
        config: Config,
        metrics: Arc<IndexerMetrics>,
        registry: Registry,
    ) -> Running {
        let indexer = Indexer::connect(config, metrics.clone())
            .await
            .expect("indexer connects and migrates");
        let shutdown = Shutdown::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            indexer.run(token).await.expect("indexer runs");
        });
        Running {
            metrics,
            registry,
            shutdown,
            task,
        }
    }

    /// Ends the indexer as a kill would: no drain, nothing more acknowledged.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
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

/// The number of rows of `table`.
pub async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(&format!(r#"SELECT count(*) FROM "{table}""#), &[])
        .await
        .expect("count")
        .get(0)
}

/// The count that `sql` (a `SELECT count(*) ...`) returns.
pub async fn count_where(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// A TID for `n` (increasing with `n`).
pub fn rev(n: u64) -> String {
    rsky_atproto::syntax::tid_from_parts(1_700_000_000_000_000 + n * 1000, 7)
}

/// A did:plc for `n`.
pub fn did(n: u64) -> String {
    format!("did:plc:user{n:020}")
}

/// A valid record of `collection` (post, like, repost, follow, block, profile, other) for `n`.
pub fn record_for(collection: &str, n: u64) -> Value {
    let subject_uri = format!("at://{}/app.bsky.feed.post/{}", did(n + 1), rev(n));
    match collection {
        "app.bsky.feed.post" => {
            json!({"$type": collection, "text": format!("post {n}"), "createdAt": "2024-01-01T00:00:00.000Z"})
        }
        "app.bsky.feed.like" | "app.bsky.feed.repost" => {
            json!({"$type": collection, "subject": {"uri": subject_uri, "cid": CID}, "createdAt": "2024-01-01T00:00:00.000Z"})
        }
        "app.bsky.graph.follow" | "app.bsky.graph.block" => {
            json!({"$type": collection, "subject": did(n + 1), "createdAt": "2024-01-01T00:00:00.000Z"})
        }
        "app.bsky.actor.profile" => {
            json!({"$type": collection, "displayName": format!("user {n}"), "description": "hi",
                   "avatar": {"$type": "blob", "ref": {"$link": CID}, "mimeType": "image/jpeg", "size": 1}})
        }
        _ => json!({"$type": collection, "createdAt": "2024-01-01T00:00:00.000Z"}),
    }
}

/// A create event.
pub fn create(did: &str, collection: &str, rkey: &str, rev: &str, record: Value) -> StreamEvent {
    StreamEvent::Create(record_event(did, collection, rkey, rev, record))
}

/// An update event.
pub fn update(did: &str, collection: &str, rkey: &str, rev: &str, record: Value) -> StreamEvent {
    StreamEvent::Update(record_event(did, collection, rkey, rev, record))
}

/// The record event under a create or update.
pub fn record_event(
    did: &str,
    collection: &str,
    rkey: &str,
    rev: &str,
    record: Value,
) -> RecordEvent {
    RecordEvent {
        seq: 1,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        commit: CID.into(),
        rev: rev.into(),
        collection: collection.into(),
        rkey: rkey.into(),
        cid: CID.into(),
        record,
    }
}

/// A delete event.
pub fn delete(did: &str, collection: &str, rkey: &str, rev: &str) -> StreamEvent {
    StreamEvent::Delete(DeleteEvent {
        seq: 1,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        commit: CID.into(),
        rev: rev.into(),
        collection: collection.into(),
        rkey: rkey.into(),
    })
}

/// A repo (sync) event at `seq`.
pub fn repo(did: &str, rev: &str, seq: i64) -> StreamEvent {
    StreamEvent::Repo(RepoEvent {
        seq,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        commit: CID.into(),
        rev: rev.into(),
    })
}

/// An account event.
pub fn account(did: &str, active: bool, status: Option<&str>) -> StreamEvent {
    StreamEvent::Account(AccountEvent {
        seq: 1,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        active,
        status: status.map(str::to_owned),
    })
}

/// An identity event.
pub fn identity(did: &str, handle: Option<&str>) -> StreamEvent {
    StreamEvent::Identity(IdentityEvent {
        seq: 1,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        handle: handle.map(str::to_owned),
    })
}

/// A label from `src` on `uri`.
pub fn label(src: &str, uri: &str, val: &str, neg: bool) -> Label {
    Label {
        src: src.into(),
        uri: uri.into(),
        cid: None,
        val: val.into(),
        neg: neg.then_some(true),
        cts: "2024-01-01T00:00:00.000Z".into(),
    }
}

/// The six collections with their own table.
pub const COLLECTIONS: [(&str, &str); 6] = [
    ("app.bsky.feed.post", "post"),
    ("app.bsky.feed.like", "like"),
    ("app.bsky.feed.repost", "repost"),
    ("app.bsky.graph.follow", "follow"),
    ("app.bsky.graph.block", "actor_block"),
    ("app.bsky.actor.profile", "profile"),
];

/// A pool on the test database, with the indexer's migrations applied (for the write paths
/// called directly, without Redis).
pub async fn migrated_pool(db: &TestDb) -> deadpool_postgres::Pool {
    let pool = rsky_indexer::db::pool(&db.url(), 4).expect("pool");
    rsky_indexer::schema::migrate(&pool)
        .await
        .expect("migrations");
    pool
}

/// Validates `events` as the indexer's decoder does and extracts their collection fields.
pub fn prepare(events: &[StreamEvent]) -> Vec<rsky_indexer::index::Prepared> {
    events
        .iter()
        .map(|e| {
            rsky_indexer::decode::validate_event(e).expect("a valid event");
            rsky_indexer::index::Prepared::new(e.clone()).expect("a valid record")
        })
        .collect()
}

/// Every table the indexer writes, as sorted rows of text: two databases hold the same rows
/// when their snapshots are equal.
pub async fn snapshot(client: &tokio_postgres::Client) -> Vec<(String, Vec<String>)> {
    let mut tables = Vec::new();
    for table in [
        "record",
        "actor",
        "actor_sync",
        "post",
        "like",
        "repost",
        "follow",
        "actor_block",
        "profile",
        "label",
    ] {
        let rows: Vec<String> = client
            .query(
                &format!(r#"SELECT t::text FROM "{table}" t ORDER BY 1"#),
                &[],
            )
            .await
            .expect("snapshot")
            .iter()
            .map(|r| r.get(0))
            .collect();
        tables.push((table.to_owned(), rows));
    }
    tables
}
