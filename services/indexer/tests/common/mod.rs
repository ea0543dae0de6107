//! Test support: a database per test, a stream prefix per test, a metric registry per test, an
//! indexer running in the test's runtime, event builders and a TCP proxy that can be cut.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsky_common::config::Env;
use rsky_common::event::{
    AccountEvent, DeleteEvent, IdentityEvent, Label, LabelsEvent, RecordEvent, RepoEvent,
    StreamEvent,
};
use rsky_common::shutdown::Shutdown;
use rsky_indexer::{Config, Indexer, IndexerMetrics};
use rsky_metrics_runtime::Registry;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The tests' PostgreSQL server, as `(user[:password], host, port)`: from `TEST_DATABASE_URL`
/// (an admin URL such as `postgres://postgres:secret@127.0.0.1:5432/postgres`; the test command
/// sets it, with a password on a fresh Debian cluster), or the local trust-auth server.
pub fn pg_server() -> (String, String, u16) {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .unwrap_or_else(|| panic!("TEST_DATABASE_URL={url:?} is not a postgres:// URL"));
    let (credentials, rest) = rest
        .rsplit_once('@')
        .unwrap_or_else(|| panic!("TEST_DATABASE_URL={url:?} names no user"));
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse()
                .unwrap_or_else(|_| panic!("TEST_DATABASE_URL={url:?} has a bad port")),
        ),
        None => (authority, 5432),
    };
    (credentials.to_owned(), host.to_owned(), port)
}

/// The URL of database `name` on the tests' server, reached through `port`.
pub fn pg_url(name: &str, port: u16) -> String {
    let (credentials, host, _) = pg_server();
    format!("postgres://{credentials}@{host}:{port}/{name}")
}

/// The server's address, for a proxy in front of it.
pub fn pg_addr() -> SocketAddr {
    use std::net::ToSocketAddrs;
    let (_, host, port) = pg_server();
    (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve the test PostgreSQL host {host}"))
}
pub const REDIS: &str = "redis://127.0.0.1:6379";
pub const CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{tag}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A database of its own, dropped (with its connections) when the test ends.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = unique("indexer_test");
        let admin = pg_url("postgres", pg_server().2);
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL at {admin}: {err}"));
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        TestDb { name }
    }

    pub fn url(&self) -> String {
        self.url_on(pg_server().2)
    }

    pub fn url_on(&self, port: u16) -> String {
        pg_url(&self.name, port)
    }

    /// A direct connection (not through any proxy) for assertions.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // psql takes the admin URL as it is, password included.
        let _ = std::process::Command::new("psql")
            .arg(pg_url("postgres", pg_server().2))
            .args(["-q", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Stream names under a prefix of their own, deleted when the test ends.
pub struct TestStreams {
    pub prefix: String,
}

impl TestStreams {
    pub fn new() -> TestStreams {
        TestStreams {
            prefix: format!("{}:", unique("ix")),
        }
    }

    pub fn name(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(REDIS)
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("Redis on 127.0.0.1:6379")
    }

    pub async fn xadd_event(&self, stream: &str, event: &StreamEvent) -> String {
        let json = serde_json::to_string(event).expect("serialize");
        self.xadd_raw(stream, "event", &json).await
    }

    /// Adds `events` to `firehose_live`, in order.
    pub async fn xadd_live(&self, events: impl IntoIterator<Item = StreamEvent>) {
        for event in events {
            self.xadd_event("firehose_live", &event).await;
        }
    }

    pub async fn xadd_raw(&self, stream: &str, field: &str, value: &str) -> String {
        let mut conn = self.conn().await;
        redis::cmd("XADD")
            .arg(self.name(stream))
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async(&mut conn)
            .await
            .expect("XADD")
    }

    pub async fn xadd_labels(&self, labels: Vec<Label>) -> String {
        let json = serde_json::to_string(&LabelsEvent { seq: 1, labels }).expect("serialize");
        self.xadd_raw("label_live", "labels", &json).await
    }

    pub async fn xlen(&self, stream: &str) -> u64 {
        let mut conn = self.conn().await;
        redis::cmd("XLEN")
            .arg(self.name(stream))
            .query_async(&mut conn)
            .await
            .expect("XLEN")
    }

    /// Entries delivered to `group` on `stream` and not acknowledged.
    pub async fn pending(&self, stream: &str, group: &str) -> u64 {
        let mut conn = self.conn().await;
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(self.name(stream))
            .arg(group)
            .query_async(&mut conn)
            .await
            .expect("XPENDING");
        match reply {
            redis::Value::Array(parts) => match parts.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                _ => 0,
            },
            _ => 0,
        }
    }

    /// The entries of `stream`, as (id, field map).
    pub async fn entries(&self, stream: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut conn = self.conn().await;
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.name(stream))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        reply
            .ids
            .into_iter()
            .map(|id| {
                let mut fields: Vec<(String, String)> = id
                    .map
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            redis::from_redis_value_ref::<String>(v).unwrap_or_default(),
                        )
                    })
                    .collect();
                fields.sort();
                (id.id, fields)
            })
            .collect()
    }
}

impl Drop for TestStreams {
    fn drop(&mut self) {
        if let Ok(client) = redis::Client::open(REDIS) {
            if let Ok(mut conn) = client.get_connection() {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.prefix))
                    .query(&mut conn)
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
                }
            }
        }
    }
}

/// The configuration of a test indexer: its own database, prefix and quick intervals.
pub fn config(database_url: &str, streams: &TestStreams, extra: &[(&str, &str)]) -> Config {
    let mut pairs: Vec<(String, String)> = vec![
        ("REDIS_URL".into(), REDIS.into()),
        ("DATABASE_URL".into(), database_url.into()),
        ("REDIS_KEY_PREFIX".into(), streams.prefix.clone()),
        ("INDEXER_CONSUMER".into(), "test-consumer".into()),
        ("INDEXER_BLOCK_MS".into(), "100".into()),
        ("INDEXER_SAMPLE_INTERVAL_MS".into(), "50".into()),
        ("INDEXER_RETRY_BACKOFF_MS".into(), "50".into()),
        ("INDEXER_BATCH_SIZE".into(), "100".into()),
        ("DB_POOL_MAX_SIZE".into(), "8".into()),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push(((*k).into(), (*v).into()));
    }
    Config::from_env(&Env::from_pairs(pairs)).expect("test configuration")
}

/// A fresh database, fresh streams and an indexer on them (`extra`: settings on top of
/// [`config`]'s).
pub async fn start_indexer(extra: &[(&str, &str)]) -> (TestDb, TestStreams, Running) {
    let db = TestDb::create().await;
    let streams = TestStreams::new();
    let indexer = Running::start(config(&db.url(), &streams, extra)).await;
    (db, streams, indexer)
}

/// An indexer running in the test's runtime, with its own registry.
pub struct Running {
    pub metrics: Arc<IndexerMetrics>,
    pub registry: Registry,
    pub shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl Running {
    pub async fn start(config: Config) -> Running {
        let registry = Registry::new();
        let metrics = Arc::new(IndexerMetrics::register(&registry).expect("register metrics"));
        Self::start_with(config, metrics, registry).await
    }

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

    /// Cancels and waits for the drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the indexer drains within 20 s")
            .expect("the indexer task ends cleanly");
    }
}

/// Polls `check` until it is true or `timeout` passes (then panics with `what`).
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
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

/// A TID for `n` (increasing with `n`).
pub fn rev(n: u64) -> String {
    rsky_atproto::syntax::tid_from_parts(1_700_000_000_000_000 + n * 1000, 7)
}

pub fn did(n: u64) -> String {
    format!("did:plc:user{n:020}")
}

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

pub fn create(did: &str, collection: &str, rkey: &str, rev: &str, record: Value) -> StreamEvent {
    StreamEvent::Create(record_event(did, collection, rkey, rev, record))
}

pub fn update(did: &str, collection: &str, rkey: &str, rev: &str, record: Value) -> StreamEvent {
    StreamEvent::Update(record_event(did, collection, rkey, rev, record))
}

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

pub fn repo(did: &str, rev: &str, seq: i64) -> StreamEvent {
    StreamEvent::Repo(RepoEvent {
        seq,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        commit: CID.into(),
        rev: rev.into(),
    })
}

pub fn account(did: &str, active: bool, status: Option<&str>) -> StreamEvent {
    StreamEvent::Account(AccountEvent {
        seq: 1,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        active,
        status: status.map(str::to_owned),
    })
}

pub fn identity(did: &str, handle: Option<&str>) -> StreamEvent {
    StreamEvent::Identity(IdentityEvent {
        seq: 1,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        handle: handle.map(str::to_owned),
    })
}

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

/// A TCP proxy to `target` that a test can cut (refusing and dropping every connection) and
/// restore on the same port.
pub struct TcpProxy {
    pub port: u16,
    target: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

struct ProxyState {
    accept: Option<JoinHandle<()>>,
    links: Vec<JoinHandle<()>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let proxy = TcpProxy {
            port,
            target,
            state: Arc::new(Mutex::new(ProxyState {
                accept: None,
                links: Vec::new(),
            })),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let target = self.target;
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .links
                    .push(link);
            }
        });
        self.state.lock().unwrap_or_else(|p| p.into_inner()).accept = Some(accept);
    }

    /// Stops listening and drops every open connection: the port refuses connections.
    pub async fn cut(&self) {
        let (accept, links) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (state.accept.take(), std::mem::take(&mut state.links))
        };
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        for link in links {
            link.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy port");
        self.serve(listener);
    }
}

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
