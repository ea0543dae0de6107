//! The whole pipeline on real sockets: test relay (real signed commits with CAR blocks) ->
//! ingester -> Redis -> indexer -> PostgreSQL. What lands in the tables is what the relay sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rsky_common::config::Settings;
use rsky_common::shutdown::Shutdown;
use rsky_ingester::IngesterMetrics;
use rsky_metrics_runtime::Registry;
use rsky_testkit::indexer::*;
use rsky_testkit::{FirehoseScript, Op, TestRelay};
use serde_json::json;

fn created_at() -> &'static str {
    "2024-01-01T00:00:00.000Z"
}

#[tokio::test]
async fn rows_per_table_equal_what_the_relay_sent_and_the_counters_agree() {
    let relay = TestRelay::start().await.expect("test relay");
    let mut script = FirehoseScript::new(1);
    let dids = ["did:plc:alice", "did:plc:bob", "did:plc:carol"];
    // What the relay sends, and what each table should hold afterwards.
    let mut expected: BTreeMap<&str, i64> = BTreeMap::new();
    let post_rkey = |d: usize, i: usize| format!("3kpost{d}{i:07}");
    for (d, did) in dids.iter().enumerate() {
        for i in 0..4 {
            let record = json!({"$type": "app.bsky.feed.post", "text": format!("post {i} by {did}"), "createdAt": created_at()});
            script
                .commit(
                    did,
                    &[Op::create("app.bsky.feed.post", &post_rkey(d, i), record)],
                )
                .unwrap();
        }
        let profile = json!({"$type": "app.bsky.actor.profile", "displayName": did,
            "avatar": {"$type": "blob", "ref": {"$link": "bafkreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"}, "mimeType": "image/jpeg", "size": 1}});
        script
            .commit(
                did,
                &[Op::create("app.bsky.actor.profile", "self", profile)],
            )
            .unwrap();
    }
    *expected.entry("post").or_default() += 12;
    *expected.entry("profile").or_default() += 3;
    // Alice likes and reposts Bob's first post, follows Bob and Carol, blocks nobody yet.
    let bob_post = format!("at://did:plc:bob/app.bsky.feed.post/{}", post_rkey(1, 0));
    let subject = json!({"uri": bob_post, "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"});
    script
        .commit("did:plc:alice", &[
            Op::create("app.bsky.feed.like", "3klike0000001", json!({"$type": "app.bsky.feed.like", "subject": subject, "createdAt": created_at()})),
            Op::create("app.bsky.feed.repost", "3krepost00001", json!({"$type": "app.bsky.feed.repost", "subject": subject, "createdAt": created_at()})),
            Op::create("app.bsky.graph.follow", "3kfollow00001", json!({"$type": "app.bsky.graph.follow", "subject": "did:plc:bob", "createdAt": created_at()})),
            Op::create("app.bsky.graph.follow", "3kfollow00002", json!({"$type": "app.bsky.graph.follow", "subject": "did:plc:carol", "createdAt": created_at()})),
        ])
        .unwrap();
    script
        .commit("did:plc:carol", &[
            Op::create("app.bsky.graph.block", "3kblock000001", json!({"$type": "app.bsky.graph.block", "subject": "did:plc:alice", "createdAt": created_at()})),
            // Not an app.bsky collection: the ingester filters it out.
            Op::create("com.example.blog.entry", "3kblog0000001", json!({"body": "elsewhere"})),
        ])
        .unwrap();
    expected.insert("like", 1);
    expected.insert("repost", 1);
    expected.insert("follow", 2);
    expected.insert("actor_block", 1);
    // Bob edits a post; Alice unfollows Carol and deletes a post.
    script
        .commit(
            "did:plc:bob",
            &[Op::update(
                "app.bsky.feed.post",
                &post_rkey(1, 1),
                json!({"$type": "app.bsky.feed.post", "text": "edited", "createdAt": created_at()}),
            )],
        )
        .unwrap();
    script
        .commit(
            "did:plc:alice",
            &[
                Op::delete("app.bsky.graph.follow", "3kfollow00002"),
                Op::delete("app.bsky.feed.post", &post_rkey(0, 3)),
            ],
        )
        .unwrap();
    *expected.get_mut("follow").unwrap() -= 1;
    *expected.get_mut("post").unwrap() -= 1;
    script
        .identity("did:plc:alice", Some("alice.test"))
        .unwrap();
    script
        .account_status("did:plc:bob", false, Some("deactivated"))
        .unwrap();
    relay.push(script.take_items());
    // creates 12 + 3 + 4 + 1, updates 1, deletes 2, identity 1, account 1
    let (creates, updates, deletes) = (20u64, 1u64, 2u64);
    let total = creates + updates + deletes + 2;

    let db = test_db().await;
    let streams = TestStreams::new();
    let indexer = Running::start(config(&db.url(), &streams, &[("INDEXER_MODE", "stream")])).await;
    let ingester_registry = Registry::new();
    let ingester_metrics = Arc::new(IngesterMetrics::register(&ingester_registry).unwrap());
    let ingester_config = rsky_ingester::Config::from_pairs([
        ("REDIS_URL", redis_url()),
        ("REDIS_KEY_PREFIX", streams.prefix.clone()),
        ("INGESTER_MODE", "firehose".to_owned()),
        ("INGESTER_RELAY_HOSTS", relay.ws_url()),
        ("INGESTER_BATCH_TIMEOUT_MS", "50".to_owned()),
    ])
    .unwrap();
    let ingester_shutdown = Shutdown::new();
    let ingester = tokio::spawn(rsky_ingester::run(
        ingester_config,
        ingester_metrics.clone(),
        ingester_shutdown.clone(),
    ));

    let m = indexer.metrics.clone();
    wait_until(
        Duration::from_secs(30),
        "every forwarded event indexed",
        || async { m.events_processed.get() >= total },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = db.client().await;
    for (table, rows) in &expected {
        assert_eq!(count(&client, table).await, *rows, "{table}");
    }
    assert_eq!(
        count(&client, "record").await,
        creates as i64,
        "one row per created record"
    );
    assert_eq!(
        count_where(
            &client,
            "SELECT count(*) FROM record WHERE json = '{}' AND cid = ''"
        )
        .await,
        2,
        "two tombstones"
    );
    let edited: String = client
        .query_one(
            "SELECT text FROM post WHERE uri = $1",
            &[&format!(
                "at://did:plc:bob/app.bsky.feed.post/{}",
                post_rkey(1, 1)
            )],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(edited, "edited");
    let handle: Option<String> = client
        .query_one("SELECT handle FROM actor WHERE did = 'did:plc:alice'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(handle.as_deref(), Some("alice.test"));
    assert_eq!(count(&client, "actor_sync").await, 3);

    // The counters equal the truth, and the two services agree.
    assert_eq!(m.events_processed.get(), total);
    assert_eq!(m.create_events.get(), creates);
    assert_eq!(m.update_events.get(), updates);
    assert_eq!(m.delete_events.get(), deletes);
    assert_eq!(m.identity_events.get(), 1);
    assert_eq!(m.account_events.get(), 1);
    assert_eq!(m.post_events.get(), 12 + 1 + 1);
    assert_eq!(m.follow_events.get(), 2 + 1);
    assert_eq!(m.errors.iter().map(|(_, c)| c.get()).sum::<u64>(), 0);
    assert_eq!(ingester_metrics.firehose_create_events.get(), creates);
    assert_eq!(ingester_metrics.firehose_update_events.get(), updates);
    assert_eq!(ingester_metrics.firehose_delete_events.get(), deletes);
    assert_eq!(ingester_metrics.stream_events.get(), total);
    assert_eq!(
        streams.xlen("firehose_live").await,
        0,
        "everything acknowledged"
    );

    ingester_shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), ingester).await;
    indexer.stop().await;
}
