//! What the indexer writes: real StreamEvent JSON XADDed to a real Redis, indexed into a real
//! PostgreSQL database of the test's own.

use rsky_indexer::metrics::ErrorKind;
use std::time::Duration;

use rsky_testkit::indexer::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn every_collection_lands_in_its_table_and_in_record_and_the_counters_match() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let per_collection = 5u64;
    for (collection, _) in COLLECTIONS {
        for n in 0..per_collection {
            let event = create(
                &did(n),
                collection,
                &rev(n),
                &rev(n),
                record_for(collection, n),
            );
            streams.xadd_live([event]).await;
        }
    }
    // A collection without its own table goes to `record` only.
    streams
        .xadd_live([create(
            &did(1),
            "app.bsky.graph.list",
            &rev(9),
            &rev(9),
            json!({"name": "l"}),
        )])
        .await;
    let total = per_collection * 6 + 1;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "every create indexed", || async {
        m.events_processed.get() == total
    })
    .await;
    let client = db.client().await;
    for (_, table) in COLLECTIONS {
        assert_eq!(
            count(&client, table).await,
            per_collection as i64,
            "{table}"
        );
    }
    assert_eq!(count(&client, "record").await, total as i64);
    assert_eq!(count(&client, "actor_sync").await, per_collection as i64);
    let m = &indexer.metrics;
    assert_eq!(m.create_events.get(), total);
    assert_eq!(m.db_writes.get(), total);
    for counter in [
        &m.post_events,
        &m.like_events,
        &m.repost_events,
        &m.follow_events,
        &m.block_events,
        &m.profile_events,
    ] {
        assert_eq!(counter.get(), per_collection);
    }
    assert_eq!(m.errors.iter().map(|(_, c)| c.get()).sum::<u64>(), 0);
    // One observation per committed transaction: the events of a read batch share one.
    let transactions = m.write_duration_seconds.get_sample_count();
    assert!((1..=total).contains(&transactions), "{transactions}");
    assert!(m.stream_to_commit_seconds.get_sample_count() >= total);
    let profile_avatar: Option<String> = client
        .query_one(r#"SELECT "avatarCid" FROM profile LIMIT 1"#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(profile_avatar.as_deref(), Some(CID));
    indexer.stop().await;
}

#[tokio::test]
async fn acknowledged_entries_are_deleted_from_the_stream_and_none_stay_pending() {
    let (_db, streams, indexer) = start_indexer(&[]).await;
    streams
        .xadd_live((0..20).map(|n| {
            create(
                &did(n),
                "app.bsky.feed.post",
                &rev(n),
                &rev(n),
                record_for("app.bsky.feed.post", n),
            )
        }))
        .await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "20 events indexed", || async {
        m.events_processed.get() == 20
    })
    .await;
    wait_until(WAIT, "the stream emptied by XDEL", || async {
        streams.xlen("firehose_live").await == 0
    })
    .await;
    assert_eq!(streams.pending("firehose_live", "firehose_group").await, 0);
    indexer.stop().await;
}

#[tokio::test]
async fn a_like_whose_subject_no_index_can_hold_is_dead_lettered_at_once_and_the_rest_flows() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    // A legal AT-URI of 7.5 KB (a long fragment): a btree index refuses it (54000).
    let subject = format!(
        "at://{}/app.bsky.feed.post/3k#/{}",
        did(1),
        "a".repeat(7500)
    );
    let like = create(
        &did(2),
        "app.bsky.feed.like",
        "l1",
        &rev(1),
        json!({"subject": {"uri": subject, "cid": CID}, "createdAt": "t"}),
    );
    let mut events = vec![like];
    events.extend((10..30).map(|n| {
        create(
            &did(n),
            "app.bsky.feed.post",
            &rev(n),
            &rev(n),
            record_for("app.bsky.feed.post", n),
        )
    }));
    streams.xadd_live(events).await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "20 posts indexed and one dead letter", || async {
        m.events_processed.get() == 20 && streams.xlen("firehose_live_dlq").await == 1
    })
    .await;
    let letters = streams.entries("firehose_live_dlq").await;
    let fields: std::collections::HashMap<_, _> = letters[0].1.iter().cloned().collect();
    assert_eq!(
        fields["attempts"], "1",
        "dead-lettered on its first delivery"
    );
    assert!(
        fields["reason"].contains("indexed column"),
        "{}",
        fields["reason"]
    );
    assert_eq!(m.unexpected_errors.get(), 0, "no database failure");
    let client = db.client().await;
    assert_eq!(count(&client, "post").await, 20);
    indexer.stop().await;
}

#[tokio::test]
async fn an_update_replaces_the_row_and_a_delete_leaves_a_tombstone() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let alice = did(1);
    let post = "app.bsky.feed.post";
    let profile = "app.bsky.actor.profile";
    streams
        .xadd_live([
            create(
                &alice,
                post,
                "p1",
                &rev(1),
                json!({"text": "first", "createdAt": "t"}),
            ),
            create(
                &alice,
                profile,
                "self",
                &rev(2),
                json!({"displayName": "Alice"}),
            ),
            update(
                &alice,
                profile,
                "self",
                &rev(3),
                json!({"displayName": "Alice B"}),
            ),
            delete(&alice, post, "p1", &rev(4)),
        ])
        .await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "4 events indexed", || async {
        m.events_processed.get() == 4
    })
    .await;
    let client = db.client().await;
    let name: Option<String> = client
        .query_one(
            r#"SELECT "displayName" FROM profile WHERE creator = $1"#,
            &[&alice],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name.as_deref(), Some("Alice B"));
    assert_eq!(count(&client, "profile").await, 1);
    assert_eq!(count(&client, "post").await, 0, "the deleted post is gone");
    let row = client
        .query_one(
            "SELECT json, cid, rev FROM record WHERE uri = $1",
            &[&format!("at://{alice}/{post}/p1")],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "{}");
    assert_eq!(row.get::<_, String>(1), "");
    assert_eq!(row.get::<_, String>(2), rev(4));
    let sync_rev: String = client
        .query_one(
            r#"SELECT "repoRev" FROM actor_sync WHERE did = $1"#,
            &[&alice],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sync_rev, rev(4), "actor_sync follows the newest rev");
    assert_eq!(m.update_events.get(), 1);
    assert_eq!(m.delete_events.get(), 1);
    assert_eq!(m.post_events.get(), 2);
    assert_eq!(m.profile_events.get(), 2);
    indexer.stop().await;
}

#[tokio::test]
async fn an_older_rev_never_overwrites_a_newer_one_nor_resurrects_a_tombstone() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let alice = did(2);
    let post = "app.bsky.feed.post";
    // Newer first, then older: the older ones arrive late (e.g. a backfill behind the live stream).
    streams
        .xadd_live([
            update(
                &alice,
                post,
                "p1",
                &rev(10),
                json!({"text": "new", "createdAt": "t"}),
            ),
            create(
                &alice,
                post,
                "p1",
                &rev(5),
                json!({"text": "old", "createdAt": "t"}),
            ),
            delete(&alice, post, "p2", &rev(20)),
            create(
                &alice,
                post,
                "p2",
                &rev(15),
                json!({"text": "zombie", "createdAt": "t"}),
            ),
        ])
        .await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "4 events indexed", || async {
        m.events_processed.get() == 4
    })
    .await;
    let client = db.client().await;
    let json: String = client
        .query_one(
            "SELECT json FROM record WHERE uri = $1",
            &[&format!("at://{alice}/{post}/p1")],
        )
        .await
        .unwrap()
        .get(0);
    assert!(json.contains("\"new\""), "{json}");
    let texts: Vec<String> = client
        .query("SELECT text FROM post ORDER BY text", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        texts,
        ["new"],
        "the stale create of p1 and the zombie p2 were not inserted"
    );
    let tomb: String = client
        .query_one(
            "SELECT json FROM record WHERE uri = $1",
            &[&format!("at://{alice}/{post}/p2")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tomb, "{}");
    let sync_rev: String = client
        .query_one(
            r#"SELECT "repoRev" FROM actor_sync WHERE did = $1"#,
            &[&alice],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sync_rev, rev(20));
    indexer.stop().await;
}

#[tokio::test]
async fn account_identity_and_repo_events_update_actor_and_actor_sync() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let alice = did(3);
    let bob = did(4);
    streams
        .xadd_live([
            identity(&alice, Some("Alice.Example.com")),
            account(&alice, false, Some("takendown")),
            account(&bob, true, None),
            repo(&bob, &rev(7), 12),
        ])
        .await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "4 events indexed", || async {
        m.events_processed.get() == 4
    })
    .await;
    let client = db.client().await;
    let row = client
        .query_one(
            r#"SELECT handle, "upstreamStatus" FROM actor WHERE did = $1"#,
            &[&alice],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0).as_deref(),
        Some("alice.example.com")
    );
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("takendown")
    );
    let status: Option<String> = client
        .query_one(
            r#"SELECT "upstreamStatus" FROM actor WHERE did = $1"#,
            &[&bob],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, None, "an active account has no upstream status");
    let row = client
        .query_one(
            r#"SELECT "commitCid", "repoRev" FROM actor_sync WHERE did = $1"#,
            &[&bob],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), CID);
    assert_eq!(row.get::<_, String>(1), rev(7));
    assert_eq!(m.identity_events.get(), 1);
    assert_eq!(m.account_events.get(), 2);
    assert_eq!(m.repo_events.get(), 1);
    indexer.stop().await;
}

#[tokio::test]
async fn the_backfill_stream_indexes_the_same_way() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let carol = did(5);
    // What the backfiller writes: the repo's records as creates with seq -1, then one repo event.
    for (i, (collection, _)) in COLLECTIONS.iter().enumerate() {
        let mut event = rsky_testkit::indexer::record_event(
            &carol,
            collection,
            &format!("r{i}"),
            &rev(30),
            record_for(collection, i as u64),
        );
        event.seq = -1;
        streams
            .xadd_event(
                "firehose_backfill",
                &rsky_common::event::StreamEvent::Create(event),
            )
            .await;
    }
    streams
        .xadd_event("firehose_backfill", &repo(&carol, &rev(30), -1))
        .await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "7 backfill events indexed", || async {
        m.events_processed.get() == 7
    })
    .await;
    let client = db.client().await;
    for (_, table) in COLLECTIONS {
        assert_eq!(count(&client, table).await, 1, "{table}");
    }
    assert_eq!(count(&client, "record").await, 6);
    assert_eq!(
        count_where(
            &client,
            &format!(
                r#"SELECT count(*) FROM actor_sync WHERE did = '{carol}' AND "repoRev" = '{}'"#,
                rev(30)
            )
        )
        .await,
        1
    );
    assert_eq!(m.repo_events.get(), 1);
    assert_eq!(streams.xlen("firehose_backfill").await, 0);
    indexer.stop().await;
}

#[tokio::test]
async fn labels_are_added_and_a_negation_removes_its_label() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let labeler = "did:plc:labeler";
    let uri = format!("at://{}/app.bsky.feed.post/p1", did(1));
    streams
        .xadd_labels(vec![
            label(labeler, &uri, "spam", false),
            label(labeler, &uri, "nsfw", false),
            label(labeler, &did(1), "impersonation", false),
        ])
        .await;
    streams
        .xadd_labels(vec![label(labeler, &uri, "spam", true)])
        .await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "4 labels processed", || async {
        m.labels_processed.get() == 4
    })
    .await;
    let client = db.client().await;
    let vals: Vec<String> = client
        .query("SELECT val FROM label ORDER BY val", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(vals, ["impersonation", "nsfw"]);
    assert_eq!(m.labels_added.get(), 3);
    assert_eq!(m.labels_removed.get(), 1);
    assert_eq!(m.db_writes.get(), 2);
    assert_eq!(streams.xlen("label_live").await, 0);
    indexer.stop().await;
}

#[tokio::test]
async fn invalid_dids_uris_and_records_from_the_interop_fixtures_are_expected_errors() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let lines = |text: &'static str| -> Vec<&'static str> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    };
    let bad_dids = lines(include_str!(
        "../../atproto/tests/fixtures/syntax/did_syntax_invalid.txt"
    ));
    let bad_uris = lines(include_str!(
        "../../atproto/tests/fixtures/syntax/aturi_syntax_invalid.txt"
    ));
    let mut sent = 0u64;
    for bad in &bad_dids {
        streams
            .xadd_live([create(
                bad,
                "app.bsky.feed.post",
                "p1",
                &rev(1),
                record_for("app.bsky.feed.post", 1),
            )])
            .await;
        sent += 1;
    }
    for bad in &bad_uris {
        let like = json!({"subject": {"uri": bad, "cid": CID}, "createdAt": "t"});
        streams
            .xadd_live([create(&did(1), "app.bsky.feed.like", "l1", &rev(1), like)])
            .await;
        sent += 1;
    }
    // Records and payloads that are wrong in other ways.
    streams
        .xadd_live([
            create(
                &did(1),
                "app.bsky.feed.post",
                "p2",
                &rev(1),
                json!({"createdAt": "t"}),
            ),
            create(
                &did(1),
                "app.bsky.graph.follow",
                "f1",
                &rev(1),
                json!({"subject": "not-a-did", "createdAt": "t"}),
            ),
            create(
                &did(1),
                "app.bsky.feed.post",
                "p3",
                &rev(1),
                json!("a string"),
            ),
            create(
                &did(1),
                "app.bsky.feed.post",
                "p4",
                "not-a-tid",
                json!({"text": "x", "createdAt": "t"}),
            ),
        ])
        .await;
    streams
        .xadd_raw("firehose_live", "event", "{not json")
        .await;
    streams
        .xadd_raw("firehose_live", "event", r#"{"type":"rebase","seq":1}"#)
        .await;
    streams.xadd_raw("firehose_live", "other", "{}").await;
    // U+0000 is legal in atproto text: stored (mapped to U+FFFD in `post.text`), not an error.
    streams
        .xadd_live([create(
            &did(1),
            "app.bsky.feed.post",
            "p5",
            &rev(1),
            json!({"text": "nul\u{0}byte", "createdAt": "t"}),
        )])
        .await;
    sent += 7;
    // And one good event after all of them.
    streams
        .xadd_live([create(
            &did(1),
            "app.bsky.feed.post",
            "ok",
            &rev(2),
            record_for("app.bsky.feed.post", 1),
        )])
        .await;
    let m = indexer.metrics.clone();
    wait_until(
        WAIT,
        "every bad entry counted and the good ones indexed",
        || async { m.expected_errors.get() == sent && m.events_processed.get() == 2 },
    )
    .await;
    assert_eq!(m.errors.iter().map(|(_, c)| c.get()).sum::<u64>(), sent);
    assert_eq!(
        m.errors[ErrorKind::InvalidInput].get(),
        sent,
        "every bad entry counts as invalid input"
    );
    assert_eq!(m.unexpected_errors.get(), 0);
    wait_until(WAIT, "every entry acknowledged", || async {
        streams.xlen("firehose_live").await == 0
    })
    .await;
    assert_eq!(streams.pending("firehose_live", "firehose_group").await, 0);
    let client = db.client().await;
    assert_eq!(count(&client, "post").await, 2);
    assert_eq!(count(&client, "like").await, 0);
    indexer.stop().await;
}

#[tokio::test]
async fn invalid_labels_are_expected_errors_and_the_valid_ones_are_written() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let uri = format!("at://{}/app.bsky.feed.post/p1", did(1));
    streams
        .xadd_labels(vec![
            label("did:plc:labeler", &uri, "spam", false),
            label("not a did", &uri, "spam", false),
            label(
                "did:plc:labeler",
                "at://did:plc:x/app.bsky.feed.post/a/b",
                "spam",
                false,
            ),
        ])
        .await;
    streams.xadd_raw("label_live", "labels", "[1, 2").await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "labels settled", || async {
        m.labels_processed.get() == 3 && m.expected_errors.get() == 3
    })
    .await;
    assert_eq!(m.labels_added.get(), 1);
    let client = db.client().await;
    assert_eq!(count(&client, "label").await, 1);
    indexer.stop().await;
}

#[tokio::test]
async fn migrations_are_recorded_and_run_once() {
    let db = test_db().await;
    let streams = TestStreams::new();
    let first = Running::start(config(&db.url(), &streams, &[])).await;
    first.stop().await;
    let second = Running::start(config(&db.url(), &streams, &[])).await;
    second.stop().await;
    let client = db.client().await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM indexer_migration ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = rsky_indexer::schema::MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, expected);
}
