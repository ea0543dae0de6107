//! Failures: the database going away, a poison entry, a lost acknowledgement, shutdown in the
//! middle of a batch, and two indexers sharing one consumer group.

use rsky_indexer::metrics::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use rsky_testkit::indexer::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const POST: &str = "app.bsky.feed.post";

fn post(n: u64, text: &str) -> rsky_common::event::StreamEvent {
    create(
        &did(n),
        POST,
        &rev(n),
        &rev(n),
        json!({"text": text, "createdAt": "t"}),
    )
}

/// Installs a trigger on `post` (after the migrations created it) running `body` for each row.
async fn post_trigger(db: &TestDb, body: &str) {
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "CREATE FUNCTION test_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NEW; END $$;
             CREATE TRIGGER test_trigger BEFORE INSERT ON post FOR EACH ROW EXECUTE FUNCTION test_trigger();"
        ))
        .await
        .expect("install the trigger");
}

/// Makes the indexer's transaction for a post whose text is `slow` wait inside a trigger on an
/// advisory lock that this gate holds, until [`SlowPostGate::open`].
struct SlowPostGate {
    holder: tokio_postgres::Client,
    key: i64,
}

impl SlowPostGate {
    async fn close(db: &TestDb, key: i64) -> SlowPostGate {
        post_trigger(
            db,
            &format!("IF NEW.text = 'slow' THEN PERFORM pg_advisory_xact_lock({key}); END IF;"),
        )
        .await;
        let holder = db.client().await;
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .unwrap();
        SlowPostGate { holder, key }
    }

    /// Returns once the indexer's transaction is waiting on the gate.
    async fn wait_until_blocked(&self) {
        wait_until(WAIT, "the indexer waits on the lock", || async {
            // Only this gate's lock in this test's database: tests run in parallel on one server.
            count_where(
                &self.holder,
                &format!(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {} \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND NOT granted",
                    self.key
                ),
            )
            .await
                == 1
        })
        .await;
    }

    async fn open(&self) {
        self.holder
            .execute("SELECT pg_advisory_unlock($1)", &[&self.key])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn while_the_database_is_unreachable_nothing_is_acknowledged_and_afterwards_nothing_is_lost()
{
    let db = test_db().await;
    let streams = TestStreams::new();
    let proxy = TcpProxy::start(pg_addr()).await;
    let indexer = Running::start(config(&db.url_on(proxy.port), &streams, &[])).await;
    let m = indexer.metrics.clone();
    streams.xadd_live((0..10).map(|n| post(n, "before"))).await;
    wait_until(WAIT, "10 events indexed", || async {
        m.events_processed.get() == 10
    })
    .await;

    proxy.cut().await;
    streams.xadd_live((10..30).map(|n| post(n, "during"))).await;
    wait_until(WAIT, "failures counted as unexpected", || async {
        m.unexpected_errors.get() > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        streams.xlen("firehose_live").await,
        20,
        "nothing was acknowledged"
    );
    assert_eq!(m.events_processed.get(), 10);
    assert_eq!(m.expected_errors.get(), 0);
    wait_until(
        WAIT,
        "the pending gauge shows the unacknowledged entries",
        || async { m.pending_messages.get() > 0 },
    )
    .await;

    proxy.restore().await;
    wait_until(WAIT, "every event indexed after the outage", || async {
        m.events_processed.get() == 30
    })
    .await;
    let client = db.client().await;
    assert_eq!(count(&client, "post").await, 30);
    wait_until(WAIT, "the stream emptied", || async {
        streams.xlen("firehose_live").await == 0
    })
    .await;
    assert_eq!(streams.pending("firehose_live", "firehose_group").await, 0);
    assert_eq!(
        m.dead_lettered.get(),
        0,
        "an outage is never the entry's fault"
    );
    wait_until(WAIT, "the pending gauge back at zero", || async {
        m.pending_messages.get() == 0
    })
    .await;
    indexer.stop().await;
}

#[tokio::test]
async fn a_poison_entry_ends_in_the_dead_letter_stream_and_does_not_block_the_rest() {
    let (db, streams, indexer) = start_indexer(&[("STREAM_MAX_DELIVERIES", "3")]).await;
    post_trigger(
        &db,
        "IF NEW.text = 'poison' THEN RAISE EXCEPTION 'this row is poison'; END IF;",
    )
    .await;
    streams.xadd_live([post(0, "poison")]).await;
    streams.xadd_live((1..=10).map(|n| post(n, "fine"))).await;
    let m = indexer.metrics.clone();
    wait_until(
        WAIT,
        "the good events indexed and the poison dead-lettered",
        || async { m.events_processed.get() == 10 && m.dead_lettered.get() == 1 },
    )
    .await;
    assert_eq!(m.unexpected_errors.get(), 3, "one failure per delivery");
    let dead = streams.entries("firehose_live_dlq").await;
    assert_eq!(dead.len(), 1);
    let fields = &dead[0].1;
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    assert_eq!(get("attempts").as_deref(), Some("3"));
    assert!(get("reason")
        .unwrap_or_default()
        .contains("this row is poison"));
    assert!(get("event").unwrap_or_default().contains("\"poison\""));
    assert_eq!(streams.xlen("firehose_live").await, 0);
    assert_eq!(streams.pending("firehose_live", "firehose_group").await, 0);
    indexer.stop().await;
}

#[tokio::test]
async fn every_write_attempt_is_counted_each_failed_one_is_an_error_and_none_stays_active() {
    let (db, streams, indexer) = start_indexer(&[("STREAM_MAX_DELIVERIES", "2")]).await;
    post_trigger(
        &db,
        "IF NEW.text = 'poison' THEN RAISE EXCEPTION 'this row is poison'; END IF;",
    )
    .await;
    streams.xadd_live([post(0, "poison")]).await;
    streams.xadd_live((1..=3).map(|n| post(n, "fine"))).await;
    streams
        .xadd_labels(vec![label("did:plc:l", &did(1), "spam", false)])
        .await;
    let m = indexer.metrics.clone();
    wait_until(
        WAIT,
        "the posts and the label indexed, the poison dead-lettered",
        || async {
            m.events_processed.get() == 3 && m.labels_added.get() == 1 && m.dead_lettered.get() == 1
        },
    )
    .await;
    assert_eq!(
        m.write_attempts.get(),
        3 + 2 + 1,
        "three posts, the poison once per delivery, one label entry"
    );
    let errors = m.errors.iter().map(|(_, c)| c.get()).sum::<u64>();
    assert_eq!(errors, 2, "one per failed delivery of the poison");
    assert_eq!(
        m.errors[ErrorKind::Database].get(),
        2,
        "a RAISE EXCEPTION is a database error"
    );
    assert_eq!(errors, m.expected_errors.get() + m.unexpected_errors.get());
    assert_eq!(m.db_writes.get(), 3 + 1, "committed transactions only");
    assert_eq!(m.active_tasks.get(), 0);
    indexer.stop().await;
}

#[tokio::test]
async fn a_failed_acknowledgement_is_counted_and_the_entry_is_indexed_again() {
    let db = test_db().await;
    let streams = TestStreams::new();
    let redis_proxy = TcpProxy::start(redis_addr()).await;
    let redis_url = format!("redis://127.0.0.1:{}", redis_proxy.port);
    let indexer = Running::start(config(&db.url(), &streams, &[("REDIS_URL", &redis_url)])).await;
    let gate = SlowPostGate::close(&db, 4242).await;
    streams.xadd_live([post(1, "slow")]).await;
    gate.wait_until_blocked().await;
    // Redis goes away while the transaction is in flight; the commit succeeds, the ack cannot.
    redis_proxy.cut().await;
    gate.open().await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "the failed ack counted", || async {
        m.ack_failures.get() >= 1
    })
    .await;
    assert_eq!(m.events_processed.get(), 1);
    redis_proxy.restore().await;
    wait_until(
        WAIT,
        "the entry redelivered, indexed again and acknowledged",
        || async { m.events_processed.get() == 2 && streams.xlen("firehose_live").await == 0 },
    )
    .await;
    assert_eq!(
        count(&db.client().await, "post").await,
        1,
        "indexing twice is harmless"
    );
    indexer.stop().await;
}

#[tokio::test]
async fn shutdown_drains_the_batch_in_hand_before_returning() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let gate = SlowPostGate::close(&db, 4343).await;
    streams.xadd_live([post(1, "slow")]).await;
    gate.wait_until_blocked().await;
    let m = indexer.metrics.clone();
    assert_eq!(m.active_tasks.get(), 1, "one event in flight");
    indexer.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.open().await;
    indexer.stop().await;
    assert_eq!(m.events_processed.get(), 1);
    assert_eq!(m.active_tasks.get(), 0);
    assert_eq!(
        streams.xlen("firehose_live").await,
        0,
        "committed and acknowledged"
    );
    assert_eq!(streams.pending("firehose_live", "firehose_group").await, 0);
}

#[tokio::test]
async fn two_indexers_in_one_group_index_everything_exactly_once() {
    let db = test_db().await;
    let streams = TestStreams::new();
    let a = Running::start(config(
        &db.url(),
        &streams,
        &[("INDEXER_CONSUMER", "a"), ("INDEXER_BATCH_SIZE", "20")],
    ))
    .await;
    let b = Running::start(config(
        &db.url(),
        &streams,
        &[("INDEXER_CONSUMER", "b"), ("INDEXER_BATCH_SIZE", "20")],
    ))
    .await;
    let total = 400u64;
    let mut conn = streams.conn().await;
    let mut pipe = redis::pipe();
    for n in 0..total {
        let json = serde_json::to_string(&post(n, "shared")).unwrap();
        pipe.cmd("XADD")
            .arg(streams.name("firehose_live"))
            .arg("*")
            .arg("event")
            .arg(json)
            .ignore();
    }
    pipe.query_async::<()>(&mut conn).await.unwrap();
    let (ma, mb) = (a.metrics.clone(), b.metrics.clone());
    wait_until(WAIT, "every event indexed by one of them", || async {
        ma.events_processed.get() + mb.events_processed.get() >= total
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ma.events_processed.get() + mb.events_processed.get(),
        total,
        "exactly once"
    );
    assert_eq!(ma.db_writes.get() + mb.db_writes.get(), total);
    assert!(
        ma.events_processed.get() > 0 && mb.events_processed.get() > 0,
        "both took a share"
    );
    assert_eq!(count(&db.client().await, "post").await, total as i64);
    assert_eq!(streams.xlen("firehose_live").await, 0);
    a.stop().await;
    b.stop().await;
}

/// The rows a replay must leave as they were ("indexedAt" aside: a replay stamps it again).
async fn snapshot(client: &tokio_postgres::Client) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT uri || ' ' || cid || ' ' || json::text || ' ' || rev FROM record ORDER BY uri",
        "SELECT uri || ' ' || text FROM post ORDER BY uri",
        r#"SELECT did || ' ' || "repoRev" FROM actor_sync ORDER BY did"#,
    ] {
        for row in client.query(sql, &[]).await.unwrap() {
            rows.push(row.get(0));
        }
    }
    rows
}

#[tokio::test]
async fn a_kill_between_commit_and_ack_replays_the_batch_with_the_same_rows() {
    let db = test_db().await;
    let streams = TestStreams::new();
    let redis_proxy = TcpProxy::start(redis_addr()).await;
    let redis_url = format!("redis://127.0.0.1:{}", redis_proxy.port);
    let settings = [("REDIS_URL", redis_url.as_str()), ("INDEXER_CONSUMER", "k")];
    // One batch: posts, an update, a create and delete of one record, and a post that waits
    // inside the batch's transaction until the gate opens.
    let mut events: Vec<_> = (1..=10).map(|n| post(n, "fine")).collect();
    events.push(update(
        &did(2),
        POST,
        &rev(2),
        &rev(200),
        json!({"text": "edited", "createdAt": "t"}),
    ));
    events.push(delete(&did(3), POST, &rev(3), &rev(300)));
    events.push(post(11, "slow"));
    let total = events.len() as u64;
    let first = Running::start(config(&db.url(), &streams, &settings)).await;
    let gate = SlowPostGate::close(&db, 4545).await;
    streams.xadd_live(events).await;
    gate.wait_until_blocked().await;
    // Redis goes away, the transaction commits, the acknowledgement cannot be sent: then the
    // process dies.
    redis_proxy.cut().await;
    gate.open().await;
    let m = first.metrics.clone();
    wait_until(WAIT, "the commit done and the ack failed", || async {
        m.ack_failures.get() >= 1
    })
    .await;
    assert_eq!(m.events_processed.get(), total);
    first.kill().await;
    // Killed means no worker of it goes on (each holds the metrics): none may acknowledge the
    // batch once Redis is back.
    wait_until(WAIT, "the killed indexer's workers are gone", || async {
        Arc::strong_count(&m) == 1
    })
    .await;
    let client = db.client().await;
    let committed = snapshot(&client).await;
    assert_eq!(count(&client, "post").await, 10, "11 posts, one deleted");
    redis_proxy.restore().await;
    // The batch in hand at the kill (the first read may have taken fewer entries).
    let unacknowledged = streams.pending("firehose_live", "firehose_group").await;
    assert!(unacknowledged >= 1);
    // The restarted process (same consumer name) replays its pending entries first.
    let second = Running::start(config(&db.url(), &streams, &settings)).await;
    let m = second.metrics.clone();
    wait_until(WAIT, "the batch replayed and acknowledged", || async {
        streams.xlen("firehose_live").await == 0
            && streams.pending("firehose_live", "firehose_group").await == 0
    })
    .await;
    assert_eq!(
        m.events_processed.get(),
        unacknowledged as u64,
        "each unacknowledged entry once more"
    );
    assert_eq!(
        snapshot(&client).await,
        committed,
        "the replay changed no row"
    );
    assert_eq!(count(&client, "post").await, 10);
    second.stop().await;
}

/// Redis lost the consumer group under a running indexer (a restart without persistence, or a
/// deleted group): the indexer creates it again, counts it, and indexes what comes next.
#[tokio::test]
async fn a_lost_consumer_group_is_created_again_counted_and_indexing_goes_on() {
    let (db, streams, indexer) = start_indexer(&[]).await;
    let m = indexer.metrics.clone();
    streams.xadd_live((0..5).map(|n| post(n, "before"))).await;
    wait_until(WAIT, "5 events indexed", || async {
        m.events_processed.get() == 5
    })
    .await;
    assert_eq!(m.consumer_groups_recreated.get(), 0);

    let mut conn = streams.conn().await;
    let destroyed: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(streams.name("firehose_live"))
        .arg("firehose_group")
        .query_async(&mut conn)
        .await
        .expect("XGROUP DESTROY");
    assert_eq!(destroyed, 1, "the group existed");
    streams.xadd_live((5..10).map(|n| post(n, "after"))).await;
    wait_until(
        WAIT,
        "the group created again and 10 events indexed",
        || async { m.consumer_groups_recreated.get() >= 1 && m.events_processed.get() == 10 },
    )
    .await;
    assert_eq!(count(&db.client().await, "post").await, 10);
    indexer.stop().await;
}
