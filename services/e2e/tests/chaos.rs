//! The chaos run: test relay -> ingester -> Redis -> indexer -> PostgreSQL, each hop through a
//! fault proxy (rsky_testkit::support::TcpProxy), loopback only. During the run:
//!
//! - PostgreSQL refuses one post (a trigger raising P0001, an entry failure): it is retried,
//!   dead-lettered with the database's error as its reason, and counted;
//! - the relay goes silent (the proxy holds every byte both ways, the ingester's pings too) for
//!   longer than the ingester's read-idle timeout: the ingester counts a timeout, dials again
//!   from its cursor, and loses or repeats nothing;
//! - PostgreSQL is cut off for a while, and an indexer process is SIGKILLed during the outage
//!   and started again;
//! - Redis (a server of the test's own, AOF on, fsync always) is killed and restarted.
//!
//! At the end every event the relay emitted is in PostgreSQL exactly once or in the dead-letter
//! stream with its reason; then the trigger is dropped, `indexer replay-dead-letters --dry-run`
//! lists the dead letters and changes nothing, `indexer replay-dead-letters` moves them back, and
//! every event is in PostgreSQL exactly once; the indexer's counters, scraped from `/metrics`
//! and summed over its two process lives, agree with the rows.
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
use rsky_ingester::metrics::ErrorKind;
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

    // The ingester, in the test's runtime, its metrics read directly. Its websocket idle
    // timeout is short, so that the relay's stall below trips it.
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
        (
            "INGESTER_WS_IDLE_TIMEOUT_MS",
            IDLE_TIMEOUT.as_millis().to_string(),
        ),
        (
            "INGESTER_WS_PING_INTERVAL_MS",
            (IDLE_TIMEOUT / 3).as_millis().to_string(),
        ),
        (
            "INGESTER_WS_CONNECT_TIMEOUT_MS",
            IDLE_TIMEOUT.as_millis().to_string(),
        ),
    ])
    .expect("ingester settings");
    let ingester_shutdown = Shutdown::new();
    let ingester = tokio::spawn(rsky_ingester::run(
        ingester_config,
        ingester_metrics.clone(),
        ingester_shutdown.clone(),
    ));
    let client = db.client().await;

    // A poison post: once the indexer has created its tables, a trigger (on the test's own,
    // direct connection) makes PostgreSQL refuse it with P0001, an entry failure: retried,
    // then dead-lettered.
    wait_for_migrations(&client, &mut indexer).await;
    let poison = rkey_of(POISON);
    install_poison(&client, &poison).await;
    let dlq = format!("{PREFIX}firehose_live_dlq");
    let mut conn = redis_conn(&redis_direct).await;

    // Phase 1: a clean run, but for the poison post, which is dead-lettered.
    push_posts(&relay, &mut script, &mut emitted, PHASE);
    wait_for_all_indexed_or_dead_lettered(&mut indexer, &client, &conn, &dlq, &emitted).await;
    let dead = dead_lettered(&mut conn, &dlq).await;
    assert_eq!(
        dead.keys().collect::<Vec<_>>(),
        [&poison],
        "phase 1 dead-letters the poison post only"
    );
    assert!(
        dead[&poison].contains(POISON_MESSAGE),
        "the dead letter's reason names the database's error: {:?}",
        dead[&poison]
    );
    assert!(
        !indexed_rkeys(&client).await.contains(&poison),
        "the poison post is not in PostgreSQL"
    );
    let port = indexer.port;
    wait_for_condition(
        &mut indexer,
        "the indexer counts the dead letter",
        || async move {
            scrape(port)
                .await
                .is_some_and(|m| value(&m, "indexer_dead_lettered_total") >= 1.0)
        },
    )
    .await;
    let before_stall = scrape(port).await.expect("scrape the indexer");
    assert_eq!(
        value(&before_stall, "indexer_dead_lettered_total"),
        1.0,
        "one dead letter, counted once"
    );

    // Phase 2: the relay goes silent (the proxy holds every byte both ways, the ingester's
    // pings too) for longer than the ingester's idle timeout, with events it has not passed
    // on; PostgreSQL goes away meanwhile.
    let timeouts = || ingester_metrics.errors[ErrorKind::Timeout].get();
    let timeouts_before = timeouts();
    let dials_before = relay.repo_cursors().len();
    let cursor_before = script.next_seq() - 1;
    relay_proxy.stall();
    push_posts(&relay, &mut script, &mut emitted, PHASE);
    pg_proxy.cut().await;
    wait_until(WAIT, "the ingester times out on the silent relay", || {
        let timed_out = timeouts() > timeouts_before;
        async move { timed_out }
    })
    .await;
    assert_eq!(
        ingester_metrics.stream_events.get(),
        PHASE as u64,
        "nothing of phase 2 passed the stalled relay"
    );
    relay_proxy.resume().await;
    let metrics = ingester_metrics.clone();
    wait_until(
        WAIT,
        "the ingester reconnected and wrote phase 2 to Redis",
        || {
            let m = metrics.clone();
            async move {
                m.stream_events.get() >= 2 * PHASE as u64 && m.websocket_connections.get() == 1
            }
        },
    )
    .await;
    let dials = relay.repo_cursors();
    assert!(
        dials.len() > dials_before,
        "the ingester dialed the relay again: {dials:?}"
    );
    assert!(
        dials[dials_before..]
            .iter()
            .all(|cursor| *cursor == Some(cursor_before)),
        "every dial after the stall resumes after seq {cursor_before}: {dials:?}"
    );
    assert_eq!(
        ingester_metrics.stream_events.get(),
        2 * PHASE as u64,
        "phase 2 written once: nothing lost or repeated across the reconnect"
    );
    // The outage lasts until the indexer has failed on it and paused (it then only probes the
    // database), is killed with entries pending, and is started again below.
    wait_for_condition(
        &mut indexer,
        "the indexer fails on the database outage",
        || async move {
            scrape(port).await.is_some_and(|m| {
                value(&m, r#"indexer_errors_total{kind="database_unavailable"}"#) > 0.0
            })
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
    wait_for_all_indexed_or_dead_lettered(&mut indexer, &client, &conn, &dlq, &emitted).await;
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
        assert!(!indexed.contains(rkey), "{rkey} indexed and dead-lettered");
    }
    assert!(
        dead.contains_key(&poison),
        "the poison post is still a dead letter"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM post").await,
        count(&client, "SELECT count(DISTINCT uri) FROM post").await,
        "one row per post"
    );
    let dead_letters_written = dead_letter_count(&mut conn, &dlq).await;
    assert_eq!(
        dead_letters_written as usize,
        dead.len(),
        "one dead letter per dead-lettered post"
    );

    // The cause is fixed; the operator lists the dead letters (a dry run changes nothing), then
    // moves them back with the indexer's own command, and they are indexed.
    drop_poison(&client).await;
    let listed = replay_dead_letters(&indexer_bin, &redis_direct, &dlq, true);
    assert!(
        listed.contains(&format!("would move {dead_letters_written} entries"))
            && listed.contains(POISON_MESSAGE)
            && listed.contains(&poison),
        "the dry run lists the poison post's dead letter:\n{listed}"
    );
    assert_eq!(
        dead_lettered(&mut conn, &dlq).await,
        dead,
        "a dry run changes nothing"
    );
    assert!(!indexed_rkeys(&client).await.contains(&poison));
    let moved = replay_dead_letters(&indexer_bin, &redis_direct, &dlq, false);
    assert!(
        moved.contains(&format!("moved {dead_letters_written} entries")),
        "{moved}"
    );
    wait_for_posts(&client, &mut indexer, total as i64).await;
    let indexed = indexed_rkeys(&client).await;
    assert_eq!(
        indexed,
        emitted.iter().cloned().collect::<BTreeSet<_>>(),
        "after the replay every event is in PostgreSQL"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM post").await,
        total as i64,
        "each post exactly once"
    );
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM post WHERE uri LIKE '%/{poison}'")
        )
        .await,
        1,
        "the replayed post exactly once"
    );
    assert_eq!(
        dead_letter_count(&mut conn, &dlq).await,
        0,
        "the dead-letter stream no longer holds it"
    );
    wait_for_condition(&mut indexer, "the replayed entries settled", || {
        let mut conn = conn.clone();
        async move { pending(&mut conn, &format!("{PREFIX}firehose_live")).await == 0 }
    })
    .await;

    // The counters, summed over both lives, agree with the rows: each indexed row was counted
    // once, plus the re-deliveries that the faults explain (an acknowledgement lost with Redis,
    // an event the ingester wrote twice after a reconnect).
    let port = indexer.port;
    let rows = indexed.len() as u64;
    let processed_in_life1 = value(&life1, "indexer_events_processed_total");
    wait_for_condition(
        &mut indexer,
        "the indexer counts every row",
        || async move {
            scrape(port).await.is_some_and(|m| {
                processed_in_life1 + value(&m, "indexer_events_processed_total") >= rows as f64
            })
        },
    )
    .await;
    let life2 = scrape(indexer.port).await.expect("scrape the indexer");
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
        "chaos: {total} events; {} dead-lettered {:?} and replayed; ingester wrote {}, timed out {} time(s), dialed {} time(s)\n  indexer life 1: {}\n  indexer life 2: {}",
        dead.len(),
        dead.values().collect::<BTreeSet<_>>(),
        ingester_metrics.stream_events.get(),
        timeouts(),
        relay.repo_cursors().len(),
        show(&life1),
        show(&life2),
    );
    let sum = |name: &str| value(&life1, name) + value(&life2, name);
    let processed = sum("indexer_events_processed_total") as u64;
    let ack_failures = sum("indexer_ack_failures_total") as u64;
    let written_twice = ingester_metrics
        .stream_events
        .get()
        .saturating_sub(total as u64);
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
    // Dead letters written after the last scrape of life 1 and before its kill are not in its
    // counter; none are (nothing is tried during the outage), so the counter is exact.
    assert_eq!(
        sum("indexer_dead_lettered_total") as u64,
        dead_letters_written,
        "every dead letter counted once"
    );

    ingester_shutdown.cancel();
    let _ = tokio::time::timeout(WAIT, ingester).await;
    indexer.kill();
    drop(conn);
    drop(restarted);
}

/// The index (in emission order) of the post that the trigger refuses.
const POISON: usize = 7;
/// The message the trigger raises with.
const POISON_MESSAGE: &str = "chaos: poison post refused";
/// The ingester's websocket read-idle timeout in this run (pings every third of it).
const IDLE_TIMEOUT: Duration = Duration::from_millis(1500);

fn rkey_of(i: usize) -> String {
    format!("3kchaos{i:07}")
}

/// A trigger that makes PostgreSQL refuse the post `rkey` (SQLSTATE P0001, raise_exception).
async fn install_poison(client: &tokio_postgres::Client, rkey: &str) {
    let sql = format!(
        r#"CREATE FUNCTION chaos_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.uri LIKE '%/{rkey}' THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = '{POISON_MESSAGE}: ' || NEW.uri;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER chaos_poison BEFORE INSERT OR UPDATE ON post
  FOR EACH ROW EXECUTE FUNCTION chaos_poison();"#
    );
    client
        .batch_execute(&sql)
        .await
        .unwrap_or_else(|err| panic!("install the poison trigger: {err}"));
}

async fn drop_poison(client: &tokio_postgres::Client) {
    client
        .batch_execute("DROP TRIGGER chaos_poison ON post; DROP FUNCTION chaos_poison();")
        .await
        .unwrap_or_else(|err| panic!("drop the poison trigger: {err}"));
}

/// `indexer replay-dead-letters --stream <dlq> [--dry-run]` against Redis at `redis_url`; its
/// standard output, once it exited 0.
fn replay_dead_letters(bin: &Path, redis_url: &str, dlq: &str, dry_run: bool) -> String {
    let mut command = Command::new(bin);
    command
        .args(["replay-dead-letters", "--stream", dlq])
        .env("REDIS_URL", redis_url);
    if dry_run {
        command.arg("--dry-run");
    }
    let replay = command.output().expect("run indexer replay-dead-letters");
    assert_eq!(
        replay.status.code(),
        Some(0),
        "replay-dead-letters (dry run: {dry_run}): {}",
        String::from_utf8_lossy(&replay.stderr)
    );
    String::from_utf8_lossy(&replay.stdout).into_owned()
}

async fn wait_for_migrations(client: &tokio_postgres::Client, indexer: &mut Indexer) {
    let all = rsky_indexer::schema::MIGRATIONS.len() as i64;
    wait_for_condition(indexer, "the indexer's migrations", || async move {
        client
            .query_one("SELECT count(*) FROM indexer_migration", &[])
            .await
            .is_ok_and(|row| row.get::<_, i64>(0) == all)
    })
    .await;
}

async fn wait_for_all_indexed_or_dead_lettered(
    indexer: &mut Indexer,
    client: &tokio_postgres::Client,
    conn: &redis::aio::ConnectionManager,
    dlq: &str,
    emitted: &[String],
) {
    wait_for_condition(indexer, "every event indexed or dead-lettered", || {
        let mut conn = conn.clone();
        async move {
            let indexed = indexed_rkeys(client).await;
            let dead = dead_lettered(&mut conn, dlq).await;
            emitted
                .iter()
                .all(|rkey| indexed.contains(rkey) || dead.contains_key(rkey))
        }
    })
    .await;
}

/// Adds `n` commits, one post create each, round-robin over [`DIDS`]; records their rkeys.
fn push_posts(relay: &TestRelay, script: &mut FirehoseScript, emitted: &mut Vec<String>, n: usize) {
    for _ in 0..n {
        let i = emitted.len();
        let rkey = rkey_of(i);
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
            .env("STREAM_BLOCK_MS", "100")
            .env("STREAM_SAMPLE_INTERVAL_MS", "100")
            .env("STREAM_RETRY_BACKOFF_MS", "50")
            // The poison post is dead-lettered on its third failed delivery.
            .env("STREAM_MAX_DELIVERIES", "3")
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
