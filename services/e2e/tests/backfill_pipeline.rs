//! The backfill path end to end on real sockets: test PLC + test PDS (signed repositories as
//! CAR files) -> the real backfiller -> `firehose_backfill` -> the indexer -> PostgreSQL.
//! What lands in the tables is exactly each repository's forwarded records, and the counters
//! say so too.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use std::sync::Arc;

use rsky_backfiller::{Backfiller, BackfillerMetrics};
use rsky_common::config::Settings;
use rsky_common::event::BackfillEvent;
use rsky_metrics_runtime::Registry;
use rsky_testkit::indexer::*;
use rsky_testkit::pds::{Behaviour, HostedRepo, TestAccount, TestPds};
use rsky_testkit::plc::TestPlc;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const DRAIN: Duration = Duration::from_secs(60);

/// The indexer's consumer group on the firehose streams (its default).
const INDEXER_GROUP: &str = "firehose_group";

/// A backfiller configuration on the test's PLC and key prefix, with quick timings.
fn backfiller_config(plc: &TestPlc, prefix: &str) -> rsky_backfiller::Config {
    let env: HashMap<&str, String> = [
        ("REDIS_URL", redis_url()),
        ("REDIS_KEY_PREFIX", prefix.to_owned()),
        ("BACKFILLER_PLC_URL", plc.url()),
        ("BACKFILLER_DID_WEB_INSECURE", "true".to_owned()),
        ("BACKFILLER_CONSUMER", "bf-test".to_owned()),
        ("STREAM_RETRY_BACKOFF_MS", "20".to_owned()),
        ("STREAM_BLOCK_MS", "100".to_owned()),
        ("BACKFILLER_FETCH_TIMEOUT_MS", "5000".to_owned()),
        ("BACKFILLER_RESOLVE_TIMEOUT_MS", "5000".to_owned()),
        ("BACKPRESSURE_POLL_MS", "50".to_owned()),
        ("STREAM_TRIM_INTERVAL_MS", "200".to_owned()),
        ("STREAM_SAMPLE_INTERVAL_MS", "100".to_owned()),
    ]
    .into_iter()
    .collect();
    rsky_backfiller::Config::from_pairs(env).expect("backfiller test configuration")
}

/// The table a collection's rows go to, if it has one.
fn table_of(collection: &str) -> Option<&'static str> {
    COLLECTIONS
        .iter()
        .find(|(nsid, _)| *nsid == collection)
        .map(|(_, table)| *table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfilled_repo_lands_in_postgres_as_exactly_its_forwarded_records() {
    let plc = TestPlc::start().await.expect("test PLC");
    let pds = TestPds::start().await.expect("test PDS");
    let db = test_db().await;
    // One prefix for both services: the indexer reads the stream the backfiller writes.
    let streams = TestStreams::new();

    let mut accounts: Vec<TestAccount> =
        [("bfpipe-0", 60usize), ("bfpipe-1", 7), ("bfpipe-2", 150)]
            .into_iter()
            .map(|(seed, n)| TestAccount::plc(seed, n).expect("a test account"))
            .collect();
    accounts
        .push(TestAccount::with_did(&pds.did_web(), "bfpipe-web", 33).expect("a did:web account"));
    let mut hosted: Vec<(TestAccount, HostedRepo)> = Vec::new();
    for account in accounts {
        let repo = pds
            .host(&account, Behaviour::Serve, &plc)
            .expect("host the repo");
        hosted.push((account, repo));
    }

    let indexer = Running::start(config(&db.url(), &streams, &[("INDEXER_MODE", "stream")])).await;
    let registry = Registry::new();
    let backfiller_metrics =
        Arc::new(BackfillerMetrics::register(&registry).expect("register backfiller metrics"));
    let backfiller = Backfiller::connect(
        backfiller_config(&plc, &streams.prefix),
        backfiller_metrics.clone(),
    )
    .await
    .expect("the backfiller connects");
    let stop = CancellationToken::new();
    let backfilling = tokio::spawn({
        let stop = stop.clone();
        async move { backfiller.run(stop).await }
    });
    for (account, _) in &hosted {
        let event = BackfillEvent {
            did: account.did.clone(),
            host: pds.url(),
            rev: None,
            status: None,
            active: true,
        };
        let payload = serde_json::to_string(&event).expect("serialize");
        streams.xadd_raw("repo_backfill", "repo", &payload).await;
    }

    // The truth: per repo, its forwarded records; per collection, how many.
    let mut per_collection: BTreeMap<String, u64> = BTreeMap::new();
    let mut creates = 0u64;
    for (account, _) in &hosted {
        for record in account.forwarded_records() {
            *per_collection.entry(record.collection).or_default() += 1;
            creates += 1;
        }
    }
    let repos = hosted.len() as u64;
    let total = creates + repos;
    assert!(
        per_collection.contains_key("chat.bsky.actor.declaration"),
        "a forwarded collection without a table of its own is part of the truth"
    );

    wait_until(DRAIN, "repo_backfill drained by the backfiller", || async {
        streams.xlen("repo_backfill").await == 0
            && streams
                .pending("repo_backfill", rsky_backfiller::config::GROUP)
                .await
                == 0
    })
    .await;
    let m = indexer.metrics.clone();
    wait_until(DRAIN, "every backfilled event indexed", || async {
        m.events_processed.get() >= total
    })
    .await;
    wait_until(
        DRAIN,
        "firehose_backfill empty, nothing pending",
        || async {
            streams.xlen("firehose_backfill").await == 0
                && streams.pending("firehose_backfill", INDEXER_GROUP).await == 0
        },
    )
    .await;

    let client = db.client().await;
    for (account, repo) in &hosted {
        let did = &account.did;
        let forwarded = account.forwarded_records();
        // Rows per table.
        for (collection, table) in COLLECTIONS {
            let expected = forwarded
                .iter()
                .filter(|r| r.collection == collection)
                .count() as i64;
            let rows: i64 = client
                .query_one(
                    &format!(r#"SELECT count(*) FROM "{table}" WHERE creator = $1"#),
                    &[did],
                )
                .await
                .expect("count a table's rows")
                .get(0);
            assert_eq!(rows, expected, "{did}: rows in {table}");
        }
        // `record`: one row per forwarded record, tables or not, with its CID and JSON.
        let expected: BTreeMap<String, (String, Value)> = forwarded
            .iter()
            .map(|r| {
                (
                    format!("at://{did}/{}/{}", r.collection, r.rkey),
                    (r.cid.clone(), r.record.clone()),
                )
            })
            .collect();
        let got: BTreeMap<String, (String, Value)> = client
            .query("SELECT uri, cid, json FROM record WHERE did = $1", &[did])
            .await
            .expect("read the record table")
            .into_iter()
            .map(|row| {
                let json: String = row.get(2);
                let value = serde_json::from_str(&json).expect("record.json is JSON");
                (row.get(0), (row.get(1), value))
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "{did}: rows in record");
        assert_eq!(got, expected, "{did}: record rows, CIDs and JSON");
        assert!(
            forwarded.iter().any(|r| table_of(&r.collection).is_none()),
            "{did}: holds a forwarded record without a table of its own"
        );
        // actor_sync: the commit and rev of its repo event.
        let row = client
            .query_one(
                r#"SELECT "commitCid", "repoRev" FROM actor_sync WHERE did = $1"#,
                &[did],
            )
            .await
            .expect("one actor_sync row");
        assert_eq!(
            (row.get::<_, String>(0), row.get::<_, String>(1)),
            (repo.head.clone(), repo.rev.clone()),
            "{did}: actor_sync"
        );
    }
    assert_eq!(count(&client, "record").await, creates as i64);
    assert_eq!(count(&client, "actor_sync").await, repos as i64);

    // The indexer's counters equal the truth.
    let collection_count = |nsid: &str| per_collection.get(nsid).copied().unwrap_or(0);
    assert_eq!(m.events_processed.get(), total);
    assert_eq!(m.create_events.get(), creates);
    assert_eq!(m.repo_events.get(), repos);
    assert_eq!(m.update_events.get(), 0);
    assert_eq!(m.delete_events.get(), 0);
    assert_eq!(m.post_events.get(), collection_count("app.bsky.feed.post"));
    assert_eq!(m.like_events.get(), collection_count("app.bsky.feed.like"));
    assert_eq!(
        m.repost_events.get(),
        collection_count("app.bsky.feed.repost")
    );
    assert_eq!(
        m.follow_events.get(),
        collection_count("app.bsky.graph.follow")
    );
    assert_eq!(
        m.block_events.get(),
        collection_count("app.bsky.graph.block")
    );
    assert_eq!(
        m.profile_events.get(),
        collection_count("app.bsky.actor.profile")
    );
    assert_eq!(m.errors.iter().map(|(_, c)| c.get()).sum::<u64>(), 0);
    // And the two services agree.
    assert_eq!(backfiller_metrics.records_extracted.get(), creates);
    assert_eq!(backfiller_metrics.repos_processed.get(), repos);
    assert_eq!(backfiller_metrics.repos_failed.get(), 0);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), backfilling)
        .await
        .expect("the backfiller stops within 30 s")
        .expect("the backfiller task ends cleanly")
        .expect("the backfiller runs without error");
    indexer.stop().await;
}
