//! The chaos run: test relay -> ingester -> Redis -> indexer -> PostgreSQL, each hop through a
//! fault proxy (rsky_testkit::support::TcpProxy), loopback only. During the run the relay
//! stalls, PostgreSQL is cut off for a while, an indexer process is SIGKILLed and started
//! again, and Redis (a server of the test's own, AOF on, fsync always) is killed and restarted.
//! At the end every event the relay emitted is in PostgreSQL exactly once or in the dead-letter
//! stream with its reason; then the dead letters are replayed with the indexer's own
//! `replay-dead-letters` and every event is in PostgreSQL; the indexer's counters, scraped from
//! `/metrics` and summed over its two process lives, agree with the rows.
//!
//! Every wait is for a condition, with a timeout; nothing sleeps to synchronise.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rsky_common::config::Settings;
use rsky_common::shutdown::Shutdown;
use rsky_ingester::IngesterMetrics;
use rsky_metrics_runtime::Registry;
use rsky_testkit::binary::free_port;
use rsky_testkit::support::{pg_addr, unique_name, wait_until, TcpProxy, TestDb};
use rsky_testkit::{FirehoseScript, Op, TestRelay};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DIDS: [&str; 4] = [
    "did:plc:chaosalice",
    "did:plc:chaosbob",
    "did:plc:chaoscarol",
    "did:plc:chaosdave",
];
/// Events per phase (one post create each).
const PHASE: usize = 60;
const PREFIX: &str = "chaos:";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_survives_stalls_cuts_kills_and_restarts_exactly_once_or_dead_lettered() {
    let indexer_bin = build_indexer().await;
    let dir = Scratch::new();

    // Redis of the test's own, AOF on, behind a proxy; PostgreSQL and the relay behind proxies.
    let mut redis = RedisServer::start(free_port(), dir.path()).await;
    let redis_proxy = TcpProxy::start(redis.addr()).await;
    let redis_url = format!("redis://127.0.0.1:{}", redis_proxy.port);
    let redis_direct = redis.url();
    let db = TestDb::create("chaos").await;
    let pg_proxy = TcpProxy::start(pg_addr()).await;
    let relay = TestRelay::start().await.expect("test relay");
    let relay_proxy = TcpProxy::start(relay.addr()).await;

    let mut script = FirehoseScript::new(1);
    let mut emitted = Vec::new();

    // The indexer, life 1 (a process: it is SIGKILLed later).
    let indexer_env = IndexerEnv {
        bin: indexer_bin.clone(),
        redis_url: redis_url.clone(),
        database_url: db.url_on(pg_proxy.port),
        logs: dir.path().to_owned(),
    };
    let mut indexer = indexer_env.start(1);

    // The ingester, in the test's runtime, its metrics read directly.
    let ingester_registry = Registry::new();
    let ingester_metrics = Arc::new(IngesterMetrics::register(&ingester_registry).unwrap());
    let ingester_config = rsky_ingester::Config::from_pairs([
        ("REDIS_URL", redis_url.clone()),
        ("REDIS_KEY_PREFIX", PREFIX.to_owned()),
        ("INGESTER_MODE", "firehose".to_owned()),
        (
            "INGESTER_RELAY_HOSTS",
            format!("ws://127.0.0.1:{}", relay_proxy.port),
        ),
        ("INGESTER_BATCH_TIMEOUT_MS", "50".to_owned()),
        ("INGESTER_RECONNECT_MIN_MS", "100".to_owned()),
        ("INGESTER_RECONNECT_MAX_MS", "1000".to_owned()),
    ])
    .expect("ingester settings");
    let ingester_shutdown = Shutdown::new();
    let ingester = tokio::spawn(rsky_ingester::run(
        ingester_config,
        ingester_metrics.clone(),
        ingester_shutdown.clone(),
    ));
    let client = db.client().await;

    // Phase 1: a clean run.
    push_posts(&relay, &mut script, &mut emitted, PHASE);
    wait_for_posts(&client, &mut indexer, PHASE as i64).await;

    // Phase 2: the relay stalls mid-stream; PostgreSQL goes away while the events it held
    // arrive; the indexer is SIGKILLed during the outage, with entries pending.
    relay_proxy.stall();
    push_posts(&relay, &mut script, &mut emitted, PHASE);
    pg_proxy.cut().await;
    relay_proxy.resume().await;
    let metrics = ingester_metrics.clone();
    wait_until(WAIT, "phase 2 written to Redis by the ingester", || {
        let m = metrics.clone();
        async move { m.stream_events.get() >= 2 * PHASE as u64 }
    })
    .await;
    let port = indexer.port;
    // The outage lasts until the indexer has failed on it and paused (it then only probes the
    // database), is killed, and is started again below.
    wait_until(
        WAIT,
        "the indexer fails on the database outage",
        || async move {
            scrape(port)
                .await
                .is_some_and(|m| value(&m, "indexer_unexpected_errors_total") > 0.0)
        },
    )
    .await;
    // Nothing commits while PostgreSQL is cut, so this scrape holds every commit of life 1.
    let life1 = scrape(port)
        .await
        .expect("scrape the indexer before the kill");
    indexer.kill();

    // Phase 3: the database is back; the indexer starts again; Redis is killed and restarted
    // while the ingester writes a third phase.
    pg_proxy.resume().await;
    let mut indexer = indexer_env.start(2);
    push_posts(&relay, &mut script, &mut emitted, PHASE);
    // Redis dies once part of the phase is in the stream, with the indexer at work on it.
    let metrics = ingester_metrics.clone();
    wait_until(WAIT, "phase 3 reaching Redis", || {
        let m = metrics.clone();
        async move { m.stream_events.get() > 2 * PHASE as u64 }
    })
    .await;
    redis.kill();
    let restarted = RedisServer::start(redis.port, dir.path()).await;

    // Every event in PostgreSQL or dead-lettered.
    let total = emitted.len();
    let dlq = format!("{PREFIX}firehose_live_dlq");
    let mut conn = redis_conn(&redis_direct).await;
    wait_for_condition(&mut indexer, "every event indexed or dead-lettered", || {
        let (client, mut conn, dlq, emitted) = (&client, conn.clone(), dlq.clone(), &emitted);
        async move {
            let indexed = indexed_rkeys(client).await;
            let dead = dead_lettered(&mut conn, &dlq).await;
            emitted
                .iter()
                .all(|rkey| indexed.contains(rkey) || dead.contains_key(rkey))
        }
    })
    .await;
    wait_for_condition(&mut indexer, "the stream drained", || {
        let mut conn = conn.clone();
        async move {
            xlen(&mut conn, &format!("{PREFIX}firehose_live")).await == 0
                && pending(&mut conn, &format!("{PREFIX}firehose_live")).await == 0
        }
    })
    .await;
    let indexed = indexed_rkeys(&client).await;
    let dead = dead_lettered(&mut conn, &dlq).await;
    for rkey in &emitted {
        assert!(
            indexed.contains(rkey) || dead.contains_key(rkey),
            "{rkey} is neither in PostgreSQL nor dead-lettered"
        );
    }
    for (rkey, reason) in &dead {
        assert!(
            !reason.is_empty(),
            "the dead letter of {rkey} has no reason"
        );
    }
    assert_eq!(
        count(&client, "SELECT count(*) FROM post").await,
        count(&client, "SELECT count(DISTINCT uri) FROM post").await,
        "one row per post"
    );
    let life2 = scrape(indexer.port).await.expect("scrape the indexer");
    let dead_letters_written = dead_letter_count(&mut conn, &dlq).await;
    let show = |m: &BTreeMap<String, f64>| {
        m.iter()
            .filter(|(k, v)| {
                **v != 0.0
                    && (k.contains("_total") && !k.contains("_bucket"))
                    && !k.starts_with("process_")
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    eprintln!(
        "chaos: {total} events; {} indexed, {} dead-lettered {:?}; ingester wrote {}\n  indexer life 1: {}\n  indexer life 2: {}",
        indexed.len(),
        dead.len(),
        dead.values().collect::<BTreeSet<_>>(),
        ingester_metrics.stream_events.get(),
        show(&life1),
        show(&life2),
    );

    // The counters, summed over both lives, agree with the rows: each indexed row was counted
    // once, plus the re-deliveries that the faults explain (an acknowledgement lost with Redis,
    // an event the ingester wrote twice after a reconnect).
    let sum = |name: &str| value(&life1, name) + value(&life2, name);
    let processed = sum("indexer_events_processed_total") as u64;
    let ack_failures = sum("indexer_ack_failures_total") as u64;
    let written_twice = ingester_metrics
        .stream_events
        .get()
        .saturating_sub(total as u64);
    let rows = indexed.len() as u64;
    assert!(
        processed >= rows,
        "{processed} events counted as processed for {rows} rows"
    );
    assert!(
        processed <= rows + ack_failures + written_twice,
        "{processed} processed > {rows} rows + {ack_failures} lost acks + {written_twice} written twice"
    );
    assert_eq!(
        sum("indexer_create_events_total") as u64,
        processed,
        "every event is a create"
    );
    // Dead letters written after the last scrape of life 1 are not in its counter.
    let counted_dead = sum("indexer_dead_lettered_total") as u64;
    assert!(
        counted_dead <= dead_letters_written && dead_letters_written as usize >= dead.len(),
        "{counted_dead} counted, {dead_letters_written} in the stream"
    );

    // The dead letters go back with the indexer's own replay command, and are indexed.
    if !dead.is_empty() {
        let replay = Command::new(&indexer_bin)
            .args(["replay-dead-letters", "--stream", &dlq])
            .env("REDIS_URL", &redis_direct)
            .output()
            .expect("run indexer replay-dead-letters");
        assert_eq!(
            replay.status.code(),
            Some(0),
            "replay: {}",
            String::from_utf8_lossy(&replay.stderr)
        );
        let out = String::from_utf8_lossy(&replay.stdout);
        assert!(
            out.contains(&format!("moved {dead_letters_written} entries")),
            "{out}"
        );
    }
    wait_for_posts(&client, &mut indexer, total as i64).await;
    let indexed = indexed_rkeys(&client).await;
    assert_eq!(
        indexed,
        emitted.iter().cloned().collect::<BTreeSet<_>>(),
        "after the replay every event is in PostgreSQL"
    );
    assert_eq!(dead_letter_count(&mut conn, &dlq).await, 0);

    ingester_shutdown.cancel();
    let _ = tokio::time::timeout(WAIT, ingester).await;
    indexer.kill();
    drop(conn);
    drop(restarted);
}

/// Adds `n` commits, one post create each, round-robin over [`DIDS`]; records their rkeys.
fn push_posts(relay: &TestRelay, script: &mut FirehoseScript, emitted: &mut Vec<String>, n: usize) {
    for _ in 0..n {
        let i = emitted.len();
        let rkey = format!("3kchaos{i:07}");
        let record = json!({"$type": "app.bsky.feed.post", "text": format!("chaos {i}"),
            "createdAt": "2024-01-01T00:00:00.000Z"});
        script
            .commit(
                DIDS[i % DIDS.len()],
                &[Op::create("app.bsky.feed.post", &rkey, record)],
            )
            .expect("a commit");
        emitted.push(rkey);
    }
    relay.push(script.take_items());
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    match client.query_one(sql, &[]).await {
        Ok(row) => row.get(0),
        Err(err) => panic!("{sql}: {err}"),
    }
}

/// The rkeys of the posts in PostgreSQL.
async fn indexed_rkeys(client: &tokio_postgres::Client) -> BTreeSet<String> {
    let Ok(rows) = client.query("SELECT uri FROM post", &[]).await else {
        // Not migrated yet.
        return BTreeSet::new();
    };
    rows.iter()
        .filter_map(|row| {
            let uri: String = row.get(0);
            uri.rsplit('/').next().map(str::to_owned)
        })
        .collect()
}

async fn wait_for_posts(client: &tokio_postgres::Client, indexer: &mut Indexer, n: i64) {
    // Until the indexer has migrated, there is no table to count.
    wait_for_condition(
        indexer,
        &format!("{n} posts in PostgreSQL"),
        || async move {
            client
                .query_one("SELECT count(*) FROM post", &[])
                .await
                .is_ok_and(|row| row.get::<_, i64>(0) >= n)
        },
    )
    .await;
}

/// [`wait_until`], failing at once (with the indexer's log) if the indexer process exits.
async fn wait_for_condition<F, Fut>(indexer: &mut Indexer, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if check().await {
            return;
        }
        if let Some(status) = indexer.exited() {
            panic!(
                "the indexer exited ({status}) while waiting for {what}; its log:\n{}",
                indexer.log_tail()
            );
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "timed out after {WAIT:?} waiting for: {what}; the indexer's log:\n{}",
                indexer.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- Redis ----

/// A `redis-server` of the test's own on a loopback port, AOF on with fsync on every write, so
/// a SIGKILL loses nothing Redis acknowledged.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    async fn start(port: u16, dir: &Path) -> RedisServer {
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join("redis.log"))
            .expect("the redis log file");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", "", "--protected-mode", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("the chaos test needs redis-server on PATH: {err}"));
        let server = RedisServer {
            port,
            child: Some(child),
        };
        let url = server.url();
        wait_until(WAIT, "redis-server answers PING", || {
            let url = url.clone();
            async move {
                let Ok(client) = redis::Client::open(url.as_str()) else {
                    return false;
                };
                let Ok(Ok(mut conn)) = tokio::time::timeout(
                    Duration::from_secs(1),
                    client.get_multiplexed_async_connection(),
                )
                .await
                else {
                    return false;
                };
                // LOADING (replaying the AOF) is an error: wait for PONG.
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            }
        })
        .await;
        server
    }

    fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait for the exit.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn redis_conn(url: &str) -> redis::aio::ConnectionManager {
    let client = redis::Client::open(url).unwrap_or_else(|err| panic!("{url}: {err}"));
    client
        .get_connection_manager()
        .await
        .unwrap_or_else(|err| panic!("connect to {url}: {err}"))
}

async fn xlen(conn: &mut redis::aio::ConnectionManager, stream: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(conn)
        .await
        .unwrap_or(u64::MAX)
}

async fn pending(conn: &mut redis::aio::ConnectionManager, stream: &str) -> u64 {
    let reply: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg("firehose_group")
        .query_async(conn)
        .await;
    match reply {
        Ok(redis::Value::Array(parts)) => match parts.first() {
            Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => u64::MAX,
        },
        _ => u64::MAX,
    }
}

async fn dead_letter_count(conn: &mut redis::aio::ConnectionManager, dlq: &str) -> u64 {
    xlen(conn, dlq).await
}

/// The rkey and reason of each dead letter.
async fn dead_lettered(
    conn: &mut redis::aio::ConnectionManager,
    dlq: &str,
) -> BTreeMap<String, String> {
    let Ok(reply) = redis::cmd("XRANGE")
        .arg(dlq)
        .arg("-")
        .arg("+")
        .query_async::<redis::streams::StreamRangeReply>(conn)
        .await
    else {
        return BTreeMap::new();
    };
    reply
        .ids
        .iter()
        .filter_map(|entry| {
            let event: Value = serde_json::from_str(&entry.get::<String>("event")?).ok()?;
            let rkey = find_rkey(&event)?;
            Some((rkey, entry.get::<String>("reason").unwrap_or_default()))
        })
        .collect()
}

fn find_rkey(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map
            .get("rkey")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| map.values().find_map(find_rkey)),
        Value::Array(items) => items.iter().find_map(find_rkey),
        _ => None,
    }
}

// ---- The indexer process ----

struct IndexerEnv {
    bin: PathBuf,
    redis_url: String,
    database_url: String,
    logs: PathBuf,
}

impl IndexerEnv {
    /// Starts an indexer process (`life` names its log file).
    fn start(&self, life: u32) -> Indexer {
        let port = free_port();
        let log_path = self.logs.join(format!("indexer-{life}.log"));
        let log = File::create(&log_path).expect("the indexer log file");
        let child = Command::new(&self.bin)
            .env("REDIS_URL", &self.redis_url)
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_KEY_PREFIX", PREFIX)
            .env("INDEXER_MODE", "stream")
            .env("INDEXER_CONSUMER", "chaos-indexer")
            .env("INDEXER_BLOCK_MS", "100")
            .env("INDEXER_SAMPLE_INTERVAL_MS", "100")
            .env("INDEXER_RETRY_BACKOFF_MS", "50")
            .env("INDEXER_BATCH_SIZE", "50")
            .env("INDEXER_CONCURRENCY", "8")
            .env("DB_POOL_MAX_SIZE", "4")
            .env("METRICS_ADDR", "127.0.0.1")
            .env("METRICS_PORT", port.to_string())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", self.bin.display()));
        Indexer {
            port,
            child: Some(child),
            log_path,
        }
    }
}

struct Indexer {
    port: u16,
    child: Option<Child>,
    log_path: PathBuf,
}

impl Indexer {
    /// SIGKILL, and wait for the exit.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Builds the `indexer` binary into this test's target directory (a no-op when it is up to
/// date: the e2e tests depend on the indexer's library, and Cargo builds a dependency's binaries
/// only for its own tests) and returns its path.
async fn build_indexer() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/chaos-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_owned();
    let target_dir = profile_dir
        .parent()
        .expect("target/<profile> has a parent")
        .to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let built = tokio::task::spawn_blocking(move || {
        Command::new(cargo)
            .args([
                "build",
                "-p",
                "rsky-indexer",
                "--bin",
                "indexer",
                "--target-dir",
            ])
            .arg(&target_dir)
            .output()
    })
    .await
    .expect("the build task")
    .expect("run cargo build");
    assert!(
        built.status.success(),
        "cargo build -p rsky-indexer --bin indexer:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let bin = profile_dir
        .parent()
        .expect("the target directory")
        .join("debug")
        .join("indexer");
    assert!(bin.exists(), "no indexer binary at {}", bin.display());
    bin
}

// ---- /metrics ----

/// `GET /metrics` on the loopback `port`, parsed into series name (with labels) -> value; `None`
/// when it cannot be read within 2 s.
async fn scrape(port: u16) -> Option<BTreeMap<String, f64>> {
    let body = tokio::time::timeout(Duration::from_secs(2), async move {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        String::from_utf8(response).ok()
    })
    .await
    .ok()??;
    let (head, body) = body.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(
        body.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect(),
    )
}

/// The sum of every series of `family` (one series for a counter without labels).
fn value(metrics: &BTreeMap<String, f64>, family: &str) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| {
            series.as_str() == family || series.starts_with(&format!("{family}{{"))
        })
        .map(|(_, v)| v)
        .sum()
}

/// A scratch directory, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let path = std::env::temp_dir().join(unique_name("rsky_chaos"));
        std::fs::create_dir_all(&path).expect("a scratch directory");
        Scratch(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
