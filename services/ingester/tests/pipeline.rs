//! The ingester end to end: test relay -> ingester -> Redis, on real sockets and a real Redis.
//! Each test has its own metric registry and its own Redis key prefix.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use rsky_atproto::cbor::{encode_block, json_to_ipld};
use rsky_atproto::firehose::{encode_label_frame, ErrorFrame, LabelFrame, OpAction};
use rsky_common::streams::{EVENT_FIELD, LABELS_FIELD, REPO_FIELD};
use rsky_ingester::metrics::ErrorKind;
use rsky_ingester::IngesterMetrics;
use rsky_metrics_runtime::LabelValue;
use rsky_testkit::firehose::{malformed_frames, FirehoseScript, Op, RawOp};
use rsky_testkit::labels::{label, labels_frame};
use rsky_testkit::relay::ListedRepo;
use rsky_testkit::spec::INGESTER_METRICS;
use rsky_testkit::{Item, TestRelay};
use serde_json::json;
use support::*;

fn post(text: &str) -> serde_json::Value {
    json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-01-01T00:00:00Z"})
}

fn cid_of(record: &serde_json::Value) -> String {
    encode_block(&json_to_ipld(record).unwrap())
        .unwrap()
        .0
        .to_string()
}

fn host_name(relay: &TestRelay) -> String {
    relay.addr().to_string()
}

#[test]
fn every_spec_metric_is_on_the_first_scrape_at_zero() {
    let (registry, _metrics) = fresh_metrics();
    let scrape = rsky_metrics_runtime::encode_text(&registry);
    for name in INGESTER_METRICS {
        assert_eq!(
            sample(&scrape, name),
            Some(0.0),
            "{name} at zero before any work"
        );
    }
    let declared: BTreeSet<&str> = IngesterMetrics::METRICS.iter().map(|m| m.name).collect();
    assert!(INGESTER_METRICS.iter().all(|name| declared.contains(name)));
}

#[test]
fn every_error_kind_is_on_the_first_scrape_at_zero() {
    let (registry, _metrics) = fresh_metrics();
    let scrape = rsky_metrics_runtime::encode_text(&registry);
    let kinds = [
        "connection",
        "timeout",
        "error_frame",
        "decode",
        "invalid_input",
        "redis",
        "serialize",
        "list_repos",
        "panic",
    ];
    assert_eq!(ErrorKind::VALUES, kinds);
    for kind in kinds {
        let series = format!("ingester_errors_total{{kind=\"{kind}\"}}");
        assert_eq!(
            sample(&scrape, &series),
            Some(0.0),
            "{series} at zero before any work"
        );
    }
}

#[tokio::test]
async fn end_to_end_the_stream_holds_exactly_what_the_relay_sent() {
    let relay = TestRelay::start().await.unwrap();
    let mut script = FirehoseScript::new(101);
    let (alice, bob) = ("did:plc:alice", "did:plc:bob");
    let profile = json!({
        "$type": "app.bsky.actor.profile",
        "displayName": "Alice",
        "avatar": {"$type": "blob", "ref": {"$link": "bafkreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"}, "mimeType": "image/jpeg", "size": 1234},
        "nonce": {"$bytes": "aGVsbG8"}
    });
    let follow = json!({"$type": "app.bsky.graph.follow", "subject": alice, "createdAt": "2024-01-01T00:00:00Z"});
    script
        .commit(
            alice,
            &[
                Op::create("app.bsky.feed.post", "3kpost0000001", post("first")),
                Op::create(
                    "com.example.blog.entry",
                    "3kblog0000001",
                    json!({"body": "elsewhere"}),
                ),
            ],
        )
        .unwrap(); // 101
    script
        .commit(
            bob,
            &[Op::create(
                "app.bsky.graph.follow",
                "3kfollow00001",
                follow.clone(),
            )],
        )
        .unwrap(); // 102
    script
        .commit(
            alice,
            &[Op::update(
                "app.bsky.feed.post",
                "3kpost0000001",
                post("edited"),
            )],
        )
        .unwrap(); // 103
    script
        .commit(
            alice,
            &[Op::create(
                "app.bsky.actor.profile",
                "self",
                profile.clone(),
            )],
        )
        .unwrap(); // 104
    script.identity(alice, Some("alice.test")).unwrap(); // 105
    script
        .account_status(bob, false, Some("deactivated"))
        .unwrap(); // 106
    script.sync(alice).unwrap(); // 107: skipped, but the cursor passes it
    script.info("OutdatedCursor", Some("scripted")).unwrap();
    script
        .error_frame("ConsumerTooSlow", Some("scripted"))
        .unwrap();
    script
        .commit(alice, &[Op::delete("app.bsky.feed.post", "3kpost0000001")])
        .unwrap(); // 108
    let frames = script.items().len();
    relay.push(script.take_items());

    let prefix = unique_prefix("e2e");
    let ingester = Running::start(config(
        &prefix,
        &[("INGESTER_RELAY_HOSTS", &relay.ws_url())],
    ))
    .await;
    let live = ingester.streams.firehose_live.clone();
    wait_until(
        Duration::from_secs(15),
        "7 events in firehose_live",
        || async { ingester.len(&live).await >= 7 },
    )
    .await;
    wait_until(Duration::from_secs(5), "the cursor at 108", || async {
        ingester
            .get(&ingester.streams.cursor_key(&live, &host_name(&relay)))
            .await
            .as_deref()
            == Some("108")
    })
    .await;

    let events = ingester.entries(&live, EVENT_FIELD).await;
    let summary: Vec<(String, i64, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["seq"].as_i64().unwrap(),
                e["did"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |t: &str, seq: i64, did: &str| (t.to_owned(), seq, did.to_owned());
    assert_eq!(
        summary,
        [
            expect("create", 101, alice),
            expect("create", 102, bob),
            expect("update", 103, alice),
            expect("create", 104, alice),
            expect("identity", 105, alice),
            expect("account", 106, bob),
            expect("delete", 108, alice),
        ]
    );
    assert_eq!(events[0]["collection"], "app.bsky.feed.post");
    assert_eq!(events[0]["rkey"], "3kpost0000001");
    assert_eq!(events[0]["cid"], cid_of(&post("first")));
    assert_eq!(events[0]["record"], post("first"));
    assert_eq!(events[1]["record"], follow);
    assert_eq!(events[2]["record"]["text"], "edited");
    // Links and bytes in their AT Protocol JSON form.
    assert_eq!(events[3]["record"], profile);
    assert_eq!(events[4]["handle"], "alice.test");
    assert_eq!(
        (events[5]["active"].clone(), events[5]["status"].clone()),
        (json!(false), json!("deactivated"))
    );
    assert!(events[6].get("record").is_none() && events[6]["rkey"] == "3kpost0000001");
    for event in &events {
        assert!(
            event["time"].as_str().unwrap().ends_with('Z'),
            "ingest time in RFC 3339"
        );
    }
    for event in events.iter().filter(|e| e.get("commit").is_some()) {
        assert!(event["commit"].as_str().unwrap().starts_with("bafyrei"));
        assert_eq!(event["rev"].as_str().unwrap().len(), 13);
    }

    wait_until(
        Duration::from_secs(5),
        "the firehose_live length sampled",
        || async { ingester.value("ingester_firehose_live_length") == 7.0 },
    )
    .await;
    assert_eq!(
        ingester.value("ingester_firehose_events_total"),
        frames as f64
    );
    assert_eq!(ingester.value("ingester_firehose_create_events_total"), 3.0);
    assert_eq!(ingester.value("ingester_firehose_update_events_total"), 1.0);
    assert_eq!(ingester.value("ingester_firehose_delete_events_total"), 1.0);
    assert_eq!(
        ingester.value("ingester_firehose_filtered_operations_total"),
        1.0
    );
    assert_eq!(ingester.value("ingester_stream_events_total"), 7.0);
    assert_eq!(
        ingester.value("ingester_errors_total"),
        1.0,
        "the error frame"
    );
    assert_eq!(ingester.value("ingester_websocket_connections"), 1.0);
    assert_eq!(ingester.value("ingester_events_in_memory"), 0.0);
    let writes = ingester.value("ingester_batch_writes_total");
    assert!(writes >= 1.0);
    assert_eq!(ingester.value("ingester_batch_write_seconds_count"), writes);
    ingester.finish().await;
}

#[tokio::test]
async fn backpressure_pauses_writing_and_loses_nothing() {
    let relay = relay_with_identities(60).await;
    let prefix = unique_prefix("backpressure");
    let ingester = Running::start(config(
        &prefix,
        &[
            ("INGESTER_RELAY_HOSTS", &relay.ws_url()),
            ("INGESTER_HIGH_WATER_MARK", "5"),
            ("INGESTER_BATCH_SIZE", "2"),
            ("INGESTER_CHANNEL_CAPACITY", "4"),
        ],
    ))
    .await;
    let live = ingester.streams.firehose_live.clone();
    wait_until(
        Duration::from_secs(10),
        "the backpressure gauge at 1",
        || async { ingester.value("ingester_backpressure_active") == 1.0 },
    )
    .await;
    // Paused: the stream stays at the mark while events wait in memory and on the socket.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ingester.len(&live).await,
        6,
        "writing stopped after the batch that reached the mark"
    );
    assert!(ingester.value("ingester_events_in_memory") > 0.0);
    // The socket reader stopped too: written (6) + the batch in hand (2) + the channel (4) + the
    // frame waiting to be sent into it (1); the rest waits in the socket.
    let read = ingester.value("ingester_firehose_events_total");
    assert!(read <= 13.0, "the reader went on reading: {read} frames");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ingester.value("ingester_firehose_events_total"), read);

    // A consumer drains the stream; every event must arrive exactly once.
    let mut conn = ingester.conn.clone();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 60 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "drained only {} of 60 events",
            seen.len()
        );
        let reply: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&live)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        for (id, fields) in reply {
            let event: serde_json::Value = serde_json::from_str(&fields[0].1).unwrap();
            seen.push(event["seq"].as_i64().unwrap());
            let _: i64 = redis::cmd("XDEL")
                .arg(&live)
                .arg(&id)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen,
        (1..=60).collect::<Vec<_>>(),
        "none lost, none duplicated, in order"
    );
    wait_until(
        Duration::from_secs(5),
        "the backpressure gauge back at 0",
        || async { ingester.value("ingester_backpressure_active") == 0.0 },
    )
    .await;
    let _: () = redis::cmd("DEL")
        .arg(&live)
        .query_async(&mut conn)
        .await
        .unwrap();
    ingester.finish().await;
}

#[tokio::test]
async fn a_disconnect_resumes_from_the_cursor_with_no_gap_and_no_duplicate() {
    let relay = TestRelay::start().await.unwrap();
    let mut script = FirehoseScript::new(1);
    for i in 0..20 {
        script.identity(&format!("did:plc:user{i}"), None).unwrap();
    }
    relay.push(script.take_items());
    relay.disconnect_after(7);
    let prefix = unique_prefix("disconnect");
    let config = config(&prefix, &[("INGESTER_RELAY_HOSTS", &relay.ws_url())]);
    let mut ingester = Running::start(config.clone()).await;
    let live = ingester.streams.firehose_live.clone();
    wait_until(Duration::from_secs(15), "20 events", || async {
        ingester.len(&live).await >= 20
    })
    .await;
    assert_eq!(
        relay.repo_cursors(),
        [None, Some(7)],
        "reconnected after seq 7"
    );
    let seqs: Vec<i64> = ingester
        .entries(&live, EVENT_FIELD)
        .await
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    assert!(
        ingester.value("ingester_errors_total") >= 1.0,
        "the cut is counted"
    );
    wait_until(
        Duration::from_secs(5),
        "one open connection again",
        || async { ingester.value("ingester_websocket_connections") == 1.0 },
    )
    .await;

    // A restart resumes from the stored cursor.
    ingester.stop().await;
    let cursor_key = ingester.streams.cursor_key(&live, &host_name(&relay));
    assert_eq!(ingester.get(&cursor_key).await.as_deref(), Some("20"));
    for i in 20..25 {
        script.identity(&format!("did:plc:user{i}"), None).unwrap();
    }
    relay.push(script.take_items());
    let ingester = Running::start(config).await;
    wait_until(Duration::from_secs(15), "25 events", || async {
        ingester.len(&live).await >= 25
    })
    .await;
    assert_eq!(relay.repo_cursors().last(), Some(&Some(20)));
    let seqs: Vec<i64> = ingester
        .entries(&live, EVENT_FIELD)
        .await
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=25).collect::<Vec<_>>());
    ingester.finish().await;
}

#[tokio::test]
async fn bad_input_is_counted_or_filtered_and_the_stream_goes_on() {
    let relay = TestRelay::start().await.unwrap();
    let mut script = FirehoseScript::new(1);
    let malformed = malformed_frames();
    for (_, bytes) in &malformed {
        script.raw_frame(bytes.clone());
    }
    script.unknown_type("#rebase").unwrap();
    script.error_frame("FutureCursor", None).unwrap();
    let record = post("in a bad place");
    let bad_paths: Vec<String> = fixture_lines("nsid_syntax_invalid.txt")
        .into_iter()
        .map(|nsid| format!("{nsid}/3kbad00000001"))
        .chain(fixture_lines("aturi_syntax_invalid.txt"))
        .collect();
    let ops: Vec<RawOp> = bad_paths
        .iter()
        .map(|path| RawOp {
            action: OpAction::Create,
            path: path.clone(),
            record: Some(record.clone()),
        })
        .collect();
    script.raw_commit("did:plc:mallory", &ops).unwrap();
    let bad_dids = fixture_lines("did_syntax_invalid.txt");
    for did in &bad_dids {
        script
            .raw_commit(
                did,
                &[RawOp {
                    action: OpAction::Create,
                    path: "app.bsky.feed.post/3kok000000001".into(),
                    record: Some(record.clone()),
                }],
            )
            .unwrap();
        script.identity(did, None).unwrap();
    }
    let last = script
        .commit(
            "did:plc:alice",
            &[Op::create(
                "app.bsky.feed.post",
                "3kgood0000001",
                post("still here"),
            )],
        )
        .unwrap();
    relay.push(script.take_items());

    let prefix = unique_prefix("bad-input");
    let ingester = Running::start(config(
        &prefix,
        &[("INGESTER_RELAY_HOSTS", &relay.ws_url())],
    ))
    .await;
    let live = ingester.streams.firehose_live.clone();
    let cursor_key = ingester.streams.cursor_key(&live, &host_name(&relay));
    wait_until(
        Duration::from_secs(20),
        "the good commit after the bad input",
        || async { ingester.get(&cursor_key).await == Some(last.to_string()) },
    )
    .await;
    let events = ingester.entries(&live, EVENT_FIELD).await;
    assert_eq!(events.len(), 1, "only the valid event: {events:?}");
    assert_eq!(events[0]["rkey"], "3kgood0000001");
    assert!(ingester.is_running(), "the service goes on");
    assert_eq!(relay.repo_cursors().len(), 1, "the connection goes on too");
    let errors = ingester.value("ingester_errors_total");
    let filtered = ingester.value("ingester_firehose_filtered_operations_total");
    let frame_errors = malformed.len() + 1;
    let did_errors = 2 * bad_dids.len();
    assert_eq!(
        errors + filtered,
        (frame_errors + did_errors + bad_paths.len()) as f64,
        "each malformed frame, error frame, invalid DID and invalid path counted once"
    );
    assert!(errors >= (frame_errors + did_errors) as f64);
    let kind = |kind: &str| ingester.value(&format!("ingester_errors_total{{kind=\"{kind}\"}}"));
    assert_eq!(kind("error_frame"), 1.0, "the #error frame");
    assert!(
        kind("decode") >= 1.0,
        "malformed frames count as decode errors"
    );
    assert!(
        kind("invalid_input") >= did_errors as f64,
        "invalid DIDs count as invalid input"
    );
    assert_eq!(
        kind("decode") + kind("error_frame") + kind("invalid_input"),
        errors,
        "bad input moves no other kind"
    );
    assert_eq!(ingester.value("ingester_firehose_create_events_total"), 1.0);
    ingester.finish().await;
}

#[tokio::test]
async fn shutdown_flushes_the_batch_in_hand_with_its_cursor() {
    let relay = relay_with_identities(5).await;
    let prefix = unique_prefix("flush");
    let mut ingester = Running::start(config(
        &prefix,
        &[
            ("INGESTER_RELAY_HOSTS", &relay.ws_url()),
            ("INGESTER_BATCH_TIMEOUT_MS", "600000"),
        ],
    ))
    .await;
    wait_until(Duration::from_secs(10), "5 events in memory", || async {
        ingester.value("ingester_events_in_memory") == 5.0
    })
    .await;
    let live = ingester.streams.firehose_live.clone();
    assert_eq!(ingester.len(&live).await, 0, "the batch is still open");
    ingester.stop().await;
    assert_eq!(ingester.len(&live).await, 5);
    let cursor_key = ingester.streams.cursor_key(&live, &host_name(&relay));
    assert_eq!(ingester.get(&cursor_key).await.as_deref(), Some("5"));
    assert_eq!(ingester.value("ingester_events_in_memory"), 0.0);
    ingester.finish().await;
}

#[tokio::test]
async fn backfill_lists_every_repo_into_repo_backfill_then_skips_a_finished_host() {
    let relay = TestRelay::start().await.unwrap();
    let dids: Vec<String> = (0..7).map(|i| format!("did:plc:repo{i}")).collect();
    relay.set_listed_repos(
        dids.iter()
            .map(|did| ListedRepo {
                did: did.clone(),
                head: "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454".into(),
                rev: "3kabcabcabcab".into(),
                active: did != "did:plc:repo3",
                status: (did == "did:plc:repo3").then(|| "takendown".into()),
            })
            .collect(),
    );
    relay.fail_list_repos(1);
    let prefix = unique_prefix("backfill");
    let vars = [
        ("INGESTER_MODE", "backfill".to_owned()),
        ("INGESTER_RELAY_HOSTS", relay.ws_url()),
        ("INGESTER_LIST_REPOS_LIMIT", "3".to_owned()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut ingester = Running::start(config(&prefix, &vars)).await;
    wait_until(Duration::from_secs(15), "backfill complete", || async {
        ingester.value("ingester_backfill_complete") == 1.0
    })
    .await;
    let stream = ingester.streams.repo_backfill.clone();
    let repos = ingester.entries(&stream, REPO_FIELD).await;
    assert_eq!(
        repos
            .iter()
            .map(|r| r["did"].as_str().unwrap())
            .collect::<Vec<_>>(),
        dids
    );
    assert_eq!(repos[0]["host"], host_name(&relay));
    assert_eq!(
        (repos[3]["active"].clone(), repos[3]["status"].clone()),
        (json!(false), json!("takendown"))
    );
    let cursor_key = ingester.streams.cursor_key(&stream, &host_name(&relay));
    assert_eq!(
        ingester.get(&cursor_key).await.as_deref(),
        Some("!ingester-done")
    );
    assert_eq!(ingester.value("ingester_backfill_repos_fetched_total"), 7.0);
    assert_eq!(ingester.value("ingester_backfill_repos_written_total"), 7.0);
    assert_eq!(ingester.value("ingester_backfill_fetch_errors_total"), 1.0);
    assert_eq!(ingester.value("ingester_backfill_cursor_skips_total"), 0.0);
    // One refused request, then pages of 3, 3 and 1.
    assert_eq!(ingester.value("ingester_list_repos_requests_total"), 4.0);
    assert_eq!(ingester.value("ingester_list_repos_seconds_count"), 4.0);
    wait_until(
        Duration::from_secs(5),
        "repo_backfill length sampled",
        || async { ingester.value("ingester_repo_backfill_length") == 7.0 },
    )
    .await;
    ingester.stop().await;

    let requests = relay.list_requests();
    let again = Running::start(config(&prefix, &vars)).await;
    wait_until(
        Duration::from_secs(10),
        "backfill complete again",
        || async { again.value("ingester_backfill_complete") == 1.0 },
    )
    .await;
    assert_eq!(again.value("ingester_backfill_cursor_skips_total"), 1.0);
    assert_eq!(
        relay.list_requests(),
        requests,
        "a finished host is not listed again"
    );
    assert_eq!(again.len(&stream).await, 7);
    again.finish().await;
}

#[tokio::test]
async fn labeler_writes_each_labels_frame_with_its_cursor() {
    let relay = TestRelay::start().await.unwrap();
    let src = "did:plc:labeler";
    let error = encode_label_frame(&LabelFrame::Error(ErrorFrame {
        error: "FutureCursor".into(),
        message: None,
    }))
    .unwrap();
    relay.push_labels([
        labels_frame(
            1,
            vec![
                label(src, "at://did:plc:a/app.bsky.feed.post/1", "spam", false),
                label(src, "did:plc:b", "!hide", false),
            ],
        )
        .unwrap(),
        Item::unsequenced(error),
        labels_frame(
            2,
            vec![label(
                src,
                "at://did:plc:a/app.bsky.feed.post/1",
                "spam",
                true,
            )],
        )
        .unwrap(),
    ]);
    let prefix = unique_prefix("labeler");
    let ingester = Running::start(config(
        &prefix,
        &[
            ("INGESTER_MODE", "labeler"),
            ("INGESTER_LABELER_HOSTS", &relay.ws_url()),
        ],
    ))
    .await;
    let stream = ingester.streams.label_live.clone();
    let cursor_key = ingester.streams.cursor_key(&stream, &host_name(&relay));
    wait_until(Duration::from_secs(10), "the label cursor at 2", || async {
        ingester.get(&cursor_key).await.as_deref() == Some("2")
    })
    .await;
    let entries = ingester.entries(&stream, LABELS_FIELD).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["labels"][1]["val"], "!hide");
    assert_eq!(entries[1]["labels"][0]["neg"], true);
    assert!(entries[0]["labels"][0].get("neg").is_none());
    assert_eq!(ingester.value("ingester_labeler_events_total"), 3.0);
    assert_eq!(ingester.value("ingester_labels_written_total"), 3.0);
    assert_eq!(ingester.value("ingester_errors_total"), 1.0);
    wait_until(
        Duration::from_secs(5),
        "label_live length sampled",
        || async { ingester.value("ingester_label_live_length") == 2.0 },
    )
    .await;
    ingester.finish().await;
}

#[tokio::test]
async fn the_firehose_backfill_length_is_sampled_too() {
    let prefix = unique_prefix("sample");
    // Nothing to connect to: only the sampler matters here.
    let ingester = Running::start(config(
        &prefix,
        &[("INGESTER_RELAY_HOSTS", "ws://127.0.0.1:9")],
    ))
    .await;
    let mut conn = ingester.conn.clone();
    for i in 0..3 {
        let _: String = redis::cmd("XADD")
            .arg(&ingester.streams.firehose_backfill)
            .arg("*")
            .arg(EVENT_FIELD)
            .arg(format!(
                r#"{{"type":"identity","seq":-1,"time":"t","did":"did:plc:{i}"}}"#
            ))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    wait_until(
        Duration::from_secs(5),
        "firehose_backfill length sampled",
        || async { ingester.value("ingester_firehose_backfill_length") == 3.0 },
    )
    .await;
    assert!(
        ingester.value("ingester_errors_total") >= 1.0,
        "the refused connection is counted"
    );
    let _: () = redis::cmd("DEL")
        .arg(&ingester.streams.firehose_backfill)
        .query_async(&mut conn)
        .await
        .unwrap();
    ingester.finish().await;
}

#[tokio::test]
async fn a_wss_host_is_reached_through_tls_and_a_failed_handshake_is_counted() {
    // A TCP server that is not a TLS server: the handshake fails, the service goes on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move {
        let mut count = 0;
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
            count += 1;
            if count == 2 {
                break;
            }
        }
        count
    });
    let prefix = unique_prefix("wss");
    let host = format!("wss://{addr}");
    let ingester = Running::start(config(&prefix, &[("INGESTER_RELAY_HOSTS", &host)])).await;
    let accepted = tokio::time::timeout(Duration::from_secs(10), accepted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(accepted, 2, "it connected, failed, and retried");
    wait_until(
        Duration::from_secs(5),
        "the failed handshakes counted",
        || async { ingester.value("ingester_errors_total") >= 2.0 },
    )
    .await;
    assert!(ingester.is_running());
    ingester.finish().await;
}
