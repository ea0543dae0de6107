//! Faults a real deployment meets: a relay that stalls (before or after the websocket upgrade),
//! a relay answering `FutureCursor`, a Redis that refuses writes at shutdown, a write repeated
//! after a lost reply, and a backfiller that drains `repo_backfill` slower than listRepos fills
//! it. Each test runs on loopback against a real Redis, with short timeouts.

mod support;

use std::time::Duration;

use rsky_common::event::{IdentityEvent, StreamEvent};
use rsky_common::shutdown::Shutdown;
use rsky_common::store;
use rsky_common::streams::{Streams, EVENT_FIELD, LABELS_FIELD, REPO_FIELD};
use rsky_ingester::batch::Batch;
use rsky_ingester::sink::FirehoseSink;
use rsky_testkit::labels::{label, labels_frame};
use rsky_testkit::relay::{ListedRepo, Stall};
use rsky_testkit::support::{redis_addr, TcpProxy};
use rsky_testkit::TestRelay;
use support::*;

const WAIT: Duration = Duration::from_secs(10);

/// Websocket timeouts short enough for a test: connect 300 ms, idle 1 s, ping every 100 ms (ten
/// pings per idle timeout, so a loaded machine does not time out a live connection).
const WS_TIMEOUTS: [(&str, &str); 3] = [
    ("INGESTER_WS_CONNECT_TIMEOUT_MS", "300"),
    ("INGESTER_WS_IDLE_TIMEOUT_MS", "1000"),
    ("INGESTER_WS_PING_INTERVAL_MS", "100"),
];

/// `ingester_errors_total{kind}`; 0 when the kind is not in the scrape.
fn errors(ingester: &Running, kind: &str) -> f64 {
    sample(
        &ingester.scrape(),
        &format!("ingester_errors_total{{kind=\"{kind}\"}}"),
    )
    .unwrap_or(0.0)
}

fn seqs(events: &[serde_json::Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

fn with(relay: &TestRelay, vars: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = WS_TIMEOUTS
        .iter()
        .chain(vars)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.push(("INGESTER_RELAY_HOSTS".into(), relay.ws_url()));
    all
}

fn pairs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn a_relay_that_never_answers_the_upgrade_is_a_counted_timeout_and_a_reconnect() {
    let relay = relay_with_identities(3).await;
    relay.set_stall(Some(Stall::Upgrade));
    let prefix = unique_prefix("stall-upgrade");
    let vars = with(&relay, &[]);
    let ingester = Running::start(config(&prefix, &pairs(&vars))).await;
    wait_until(WAIT, "two connect timeouts and a third try", || async {
        assert_eq!(
            ingester.value("ingester_websocket_connections"),
            0.0,
            "never connected"
        );
        errors(&ingester, "timeout") >= 2.0 && relay.repo_cursors().len() >= 3
    })
    .await;
    assert_eq!(errors(&ingester, "connection"), 0.0, "counted as timeouts");

    relay.set_stall(None);
    let live = ingester.streams.firehose_live.clone();
    wait_until(WAIT, "the events once the relay answers", || async {
        ingester.len(&live).await == 3
    })
    .await;
    assert_eq!(ingester.value("ingester_websocket_connections"), 1.0);
    ingester.finish().await;
}

#[tokio::test]
async fn a_relay_silent_after_the_upgrade_is_a_counted_timeout_and_a_reconnect() {
    let relay = relay_with_identities(3).await;
    relay.set_stall(Some(Stall::AfterUpgrade));
    let prefix = unique_prefix("stall-silent");
    // A long backoff, to see the gauge at 0 between the timeout and the next dial.
    let vars = with(
        &relay,
        &[
            ("INGESTER_RECONNECT_MIN_MS", "1500"),
            ("INGESTER_RECONNECT_MAX_MS", "1500"),
        ],
    );
    let ingester = Running::start(config(&prefix, &pairs(&vars))).await;
    wait_until(WAIT, "connected to the silent relay", || async {
        ingester.value("ingester_websocket_connections") == 1.0
    })
    .await;
    wait_until(WAIT, "an idle timeout", || async {
        errors(&ingester, "timeout") >= 1.0
    })
    .await;
    wait_until(WAIT, "the gauge at 0 once dropped", || async {
        ingester.value("ingester_websocket_connections") == 0.0
    })
    .await;
    assert_eq!(relay.repo_cursors().len(), 1, "still waiting to redial");

    relay.set_stall(None);
    let live = ingester.streams.firehose_live.clone();
    wait_until(WAIT, "the events after the redial", || async {
        ingester.len(&live).await == 3
    })
    .await;
    assert_eq!(relay.repo_cursors().len(), 2);
    assert_eq!(ingester.value("ingester_websocket_connections"), 1.0);
    ingester.finish().await;
}

#[tokio::test]
async fn a_quiet_relay_that_answers_pings_stays_connected() {
    let relay = TestRelay::start().await.unwrap();
    let prefix = unique_prefix("quiet");
    let vars = with(&relay, &[]);
    let ingester = Running::start(config(&prefix, &pairs(&vars))).await;
    wait_until(WAIT, "connected", || async {
        ingester.value("ingester_websocket_connections") == 1.0
    })
    .await;
    // Two and a half idle timeouts: only the pongs keep it open.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(errors(&ingester, "timeout"), 0.0);
    assert_eq!(relay.repo_cursors().len(), 1, "never redialed");
    assert_eq!(ingester.value("ingester_websocket_connections"), 1.0);
    ingester.finish().await;
}

#[tokio::test]
async fn future_cursor_drops_the_stored_cursor_and_resumes_without_one() {
    let relay = relay_with_identities(5).await;
    relay.reject_future_cursors(true);
    let prefix = unique_prefix("future-cursor");
    let streams = Streams::new(&prefix);
    let cursor_key = streams.cursor_key(&streams.firehose_live, &relay.addr().to_string());
    let mut conn = redis().await;
    let _: () = redis::cmd("SET")
        .arg(&cursor_key)
        .arg("100")
        .query_async(&mut conn)
        .await
        .unwrap();
    let vars = with(&relay, &[]);
    let ingester = Running::start(config(&prefix, &pairs(&vars))).await;
    let live = ingester.streams.firehose_live.clone();
    wait_until(WAIT, "the relay's 5 events", || async {
        ingester.len(&live).await == 5
    })
    .await;
    wait_until(WAIT, "the cursor in the relay's sequence", || async {
        ingester.get(&cursor_key).await.as_deref() == Some("5")
    })
    .await;
    assert_eq!(
        seqs(&ingester.entries(&live, EVENT_FIELD).await),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        relay.repo_cursors()[..2],
        [Some(100), None],
        "asked once with the future cursor, then without one"
    );
    assert_eq!(
        errors(&ingester, "error_frame"),
        1.0,
        "the FutureCursor frame"
    );
    ingester.finish().await;
}

#[tokio::test]
async fn future_cursor_on_a_labeler_drops_its_cursor_too() {
    let relay = TestRelay::start().await.unwrap();
    let src = "did:plc:labeler";
    relay.push_labels([
        labels_frame(1, vec![label(src, "did:plc:a", "spam", false)]).unwrap(),
        labels_frame(2, vec![label(src, "did:plc:b", "spam", false)]).unwrap(),
    ]);
    relay.reject_future_cursors(true);
    let prefix = unique_prefix("future-cursor-labels");
    let streams = Streams::new(&prefix);
    let cursor_key = streams.cursor_key(&streams.label_live, &relay.addr().to_string());
    let mut conn = redis().await;
    let _: () = redis::cmd("SET")
        .arg(&cursor_key)
        .arg("50")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut vars = with(&relay, &[("INGESTER_MODE", "labeler")]);
    vars.push(("INGESTER_LABELER_HOSTS".into(), relay.ws_url()));
    let ingester = Running::start(config(&prefix, &pairs(&vars))).await;
    wait_until(WAIT, "the labeler's cursor at 2", || async {
        ingester.get(&cursor_key).await.as_deref() == Some("2")
    })
    .await;
    assert_eq!(
        seqs(&ingester.entries(&streams.label_live, LABELS_FIELD).await),
        [1, 2]
    );
    assert_eq!(relay.label_cursors()[..2], [Some(50), None]);
    ingester.finish().await;
}

fn identity(seq: i64) -> StreamEvent {
    StreamEvent::Identity(IdentityEvent {
        seq,
        time: "2024-01-01T00:00:00Z".into(),
        did: format!("did:plc:user{seq}"),
        handle: None,
    })
}

#[tokio::test]
async fn the_same_batch_written_twice_leaves_each_event_once() {
    let prefix = unique_prefix("write-twice");
    let streams = Streams::new(&prefix);
    let (registry, metrics) = fresh_metrics();
    let conn = store::connect(&redis_url(), store::RedisTimeouts::DEFAULT)
        .await
        .unwrap();
    let mut sink = FirehoseSink {
        conn: conn.clone(),
        streams: &streams,
        metrics: &metrics,
        high_water_mark: 1000,
        poll: Duration::from_millis(20),
    };
    let cursor_key = streams.cursor_key(&streams.firehose_live, "relay.test");
    let shutdown = Shutdown::new();
    // Two events of one frame (seq 1), then seq 2: as a commit with two ops would give.
    let batch = Batch {
        events: vec![identity(1), identity(1), identity(2)],
        cursor: Some(2),
        ..Batch::default()
    };
    // The second write is what a retry after a lost reply sends.
    assert!(sink.write(&batch, &cursor_key, &shutdown).await);
    assert!(sink.write(&batch, &cursor_key, &shutdown).await);
    let mut conn = conn;
    let written = entries(&mut conn, &streams.firehose_live, EVENT_FIELD).await;
    assert_eq!(seqs(&written), [1, 1, 2], "each event once");
    assert_eq!(
        store::read_cursor(&mut conn, &cursor_key).await.unwrap(),
        Some("2".into())
    );
    let scrape = rsky_metrics_runtime::encode_text(&registry);
    assert_eq!(sample(&scrape, "ingester_stream_events_total"), Some(3.0));

    // An older batch (a replay from before the cursor) neither adds nor moves the cursor back.
    let older = Batch {
        events: vec![identity(1)],
        cursor: Some(1),
        ..Batch::default()
    };
    assert!(sink.write(&older, &cursor_key, &shutdown).await);
    assert_eq!(
        store::stream_len(&mut conn, &streams.firehose_live)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store::read_cursor(&mut conn, &cursor_key).await.unwrap(),
        Some("2".into())
    );
    delete_prefix(&mut conn, &prefix).await;
}

#[tokio::test]
async fn the_same_list_repos_page_written_twice_leaves_each_repo_once() {
    use rsky_ingester::backfill::{write_page, PageWrite};
    let prefix = unique_prefix("page-twice");
    let streams = Streams::new(&prefix);
    let key = streams.cursor_key(&streams.repo_backfill, "relay.test");
    let mut conn = store::connect(&redis_url(), store::RedisTimeouts::DEFAULT)
        .await
        .unwrap();
    let page: Vec<String> = ["did:plc:a", "did:plc:b"]
        .iter()
        .map(|did| format!(r#"{{"did":"{did}","host":"relay.test","active":true}}"#))
        .collect();
    let stream = &streams.repo_backfill;
    let first = write_page(&mut conn, stream, &key, None, "did:plc:b", &page).await;
    assert_eq!(first.unwrap(), PageWrite::Written(2));
    // What a retry after a lost reply sends.
    let again = write_page(&mut conn, stream, &key, None, "did:plc:b", &page).await;
    assert_eq!(again.unwrap(), PageWrite::AlreadyWritten);
    assert_eq!(store::stream_len(&mut conn, stream).await.unwrap(), 2);
    assert_eq!(
        store::read_cursor(&mut conn, &key)
            .await
            .unwrap()
            .as_deref(),
        Some("did:plc:b")
    );
    // The next page, listed from that cursor, goes on.
    let next = write_page(
        &mut conn,
        stream,
        &key,
        Some("did:plc:b"),
        "!ingester-done",
        &page[..1],
    )
    .await;
    assert_eq!(next.unwrap(), PageWrite::Written(1));
    assert_eq!(store::stream_len(&mut conn, stream).await.unwrap(), 3);
    delete_prefix(&mut conn, &prefix).await;
}

/// The tests' Redis URL with its host and port replaced by the proxy's.
fn through(proxy: &TcpProxy) -> String {
    let url = redis_url();
    let rest = url.strip_prefix("redis://").unwrap_or(&url);
    let (userinfo, hostpath) = match rest.rsplit_once('@') {
        Some((userinfo, hostpath)) => (format!("{userinfo}@"), hostpath),
        None => (String::new(), rest),
    };
    let path = hostpath.find('/').map_or("", |i| &hostpath[i..]);
    format!("redis://{userinfo}127.0.0.1:{}{path}", proxy.port)
}

#[tokio::test]
async fn a_batch_abandoned_at_shutdown_stops_the_writer_so_the_cursor_passes_no_unwritten_event() {
    let relay = TestRelay::start().await.unwrap();
    let proxy = TcpProxy::start(redis_addr()).await;
    let prefix = unique_prefix("abandoned");
    let url = through(&proxy);
    let vars = with(&relay, &[("INGESTER_BATCH_SIZE", "2")]);
    let mut vars = pairs(&vars);
    vars.extend([
        ("REDIS_URL", url.as_str()),
        ("INGESTER_BATCH_TIMEOUT_MS", "600000"),
        // Sampled once at start: the writer's are then the only Redis commands.
        ("INGESTER_SAMPLE_INTERVAL_MS", "600000"),
    ]);
    let mut ingester = Running::start(config(&prefix, &vars)).await;
    wait_until(WAIT, "connected to the relay", || async {
        ingester.value("ingester_websocket_connections") == 1.0
    })
    .await;

    // Redis goes away; three batches' worth of events arrive and wait in memory.
    proxy.cut().await;
    let mut script = rsky_testkit::FirehoseScript::new(1);
    for i in 0..6 {
        script.identity(&format!("did:plc:user{i}"), None).unwrap();
    }
    relay.push(script.take_items());
    wait_until(WAIT, "6 events in memory", || async {
        ingester.value("ingester_events_in_memory") == 6.0
    })
    .await;

    // Shutdown: the first batch is tried 5 times and abandoned; then Redis comes back.
    ingester.cancel();
    wait_until(WAIT, "the first batch tried 5 times", || async {
        ingester.value("ingester_batch_writes_total") >= 5.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.restore().await;
    ingester.stop().await;

    let mut conn = redis().await;
    let streams = Streams::new(&prefix);
    let written = seqs(&entries(&mut conn, &streams.firehose_live, EVENT_FIELD).await);
    let cursor = store::read_cursor(
        &mut store::connect(&redis_url(), store::RedisTimeouts::DEFAULT)
            .await
            .unwrap(),
        &streams.cursor_key(&streams.firehose_live, &relay.addr().to_string()),
    )
    .await
    .unwrap()
    .map(|c| c.parse::<i64>().unwrap());
    // Every seq the cursor covers was written: a restart resumes with no gap.
    let covered: Vec<i64> = (1..=cursor.unwrap_or(0)).collect();
    assert!(
        covered.iter().all(|seq| written.contains(seq)),
        "the cursor {cursor:?} passes unwritten events; written: {written:?}"
    );
    assert_eq!(
        ingester.value("ingester_batch_writes_total"),
        5.0,
        "nothing tried after the abandoned batch"
    );
    delete_prefix(&mut conn, &prefix).await;
}

#[tokio::test]
async fn backfill_pauses_listing_while_repo_backfill_is_at_its_high_water_mark() {
    let relay = TestRelay::start().await.unwrap();
    relay.set_listed_repos(
        (0..7)
            .map(|i| ListedRepo {
                did: format!("did:plc:repo{i}"),
                head: "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454".into(),
                rev: "3kabcabcabcab".into(),
                active: true,
                status: None,
            })
            .collect(),
    );
    let prefix = unique_prefix("backfill-hwm");
    let vars = with(
        &relay,
        &[
            ("INGESTER_MODE", "backfill"),
            ("INGESTER_LIST_REPOS_LIMIT", "2"),
            ("INGESTER_BACKFILL_HIGH_WATER_MARK", "3"),
        ],
    );
    let ingester = Running::start(config(&prefix, &pairs(&vars))).await;
    let stream = ingester.streams.repo_backfill.clone();
    wait_until(WAIT, "two pages listed", || async {
        ingester.len(&stream).await >= 4
    })
    .await;
    // Paused: 4 entries (at or over the mark of 3), no third page asked for.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ingester.len(&stream).await, 4);
    assert_eq!(relay.list_requests(), 2);
    assert_eq!(ingester.value("ingester_backfill_complete"), 0.0);
    assert_eq!(
        sample(&ingester.scrape(), "ingester_backfill_backpressure_active"),
        Some(1.0)
    );

    // The backfiller drains the stream; listing goes on to the end.
    let mut conn = ingester.conn.clone();
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    wait_until(WAIT, "backfill complete", || async {
        ingester.value("ingester_backfill_complete") == 1.0
    })
    .await;
    let rest: Vec<String> = ingester
        .entries(&stream, REPO_FIELD)
        .await
        .iter()
        .map(|r| r["did"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rest, ["did:plc:repo4", "did:plc:repo5", "did:plc:repo6"]);
    assert_eq!(ingester.value("ingester_backfill_repos_written_total"), 7.0);
    assert_eq!(ingester.value("ingester_backfill_backpressure_active"), 0.0);
    ingester.finish().await;
}
