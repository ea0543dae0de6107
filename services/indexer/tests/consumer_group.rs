//! The consumer-group machinery of `rsky_common::consumer` against a real Redis: safe trimming,
//! pending-first reads with delivery counts, claiming a dead consumer's entries.

use std::time::Duration;

use rsky_common::consumer::{ConsumerConfig, GroupConsumer};
use rsky_testkit::indexer::TestStreams;

async fn consumer(
    streams: &TestStreams,
    group: &str,
    name: &str,
    claim_idle_ms: u64,
) -> GroupConsumer {
    let mut consumer = GroupConsumer::connect(
        &rsky_testkit::support::redis_url(),
        rsky_common::store::RedisTimeouts::DEFAULT,
        ConsumerConfig {
            stream: streams.name("s"),
            group: group.into(),
            consumer: name.into(),
            dead_letter_stream: streams.name("s_dlq"),
            dead_letter_max_len: rsky_common::dead_letter::DEFAULT_MAX_LEN,
            block: Duration::from_millis(50),
            claim_min_idle: Duration::from_millis(claim_idle_ms),
        },
    )
    .await
    .unwrap();
    consumer.create_group().await.unwrap();
    consumer
}

#[tokio::test]
async fn safe_trim_removes_only_entries_no_group_still_needs() {
    let streams = TestStreams::new();
    let mut c = consumer(&streams, "g", "c1", 60_000).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(streams.xadd_raw("s", "event", &n.to_string()).await);
    }
    let read = c.read_new(2, None).await.unwrap();
    assert_eq!(read.len(), 2);
    // The first is acknowledged but left in the stream (as another tool might); the second is
    // pending; the last three are undelivered.
    let mut conn = streams.conn().await;
    let _: i64 = redis::cmd("XACK")
        .arg(streams.name("s"))
        .arg("g")
        .arg(&ids[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(c.trim_safe().await.unwrap(), 1);
    assert_eq!(streams.xlen("s").await, 4);
    assert_eq!(c.pending_count().await.unwrap(), 1);
    // Acknowledge the pending one without deleting it: now everything below the undelivered
    // entries may go, but not the undelivered ones.
    let _: i64 = redis::cmd("XACK")
        .arg(streams.name("s"))
        .arg("g")
        .arg(&ids[1])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(c.trim_safe().await.unwrap(), 1);
    assert_eq!(streams.xlen("s").await, 3);
    // A second group that has read nothing needs everything.
    let _late = consumer(&streams, "late", "x", 60_000).await;
    assert_eq!(c.trim_safe().await.unwrap(), 0);
    assert_eq!(streams.xlen("s").await, 3);
}

#[tokio::test]
async fn pending_entries_come_first_with_their_delivery_count() {
    let streams = TestStreams::new();
    let mut c = consumer(&streams, "g", "c1", 60_000).await;
    let first = streams.xadd_raw("s", "event", "a").await;
    let batch = c.read(10).await.unwrap();
    assert_eq!(batch.new.len(), 1);
    assert_eq!(batch.new[0].deliveries, 1);
    let second = streams.xadd_raw("s", "event", "b").await;
    let batch = c.read(10).await.unwrap();
    assert_eq!(
        batch
            .pending
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&first)
    );
    assert_eq!(batch.pending[0].deliveries, 2);
    assert_eq!(
        batch.new.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        [second]
    );
    c.ack(&[first]).await.unwrap();
    assert_eq!(c.pending_count().await.unwrap(), 1);
    assert_eq!(
        streams.xlen("s").await,
        1,
        "acknowledged entries are deleted"
    );
}

#[tokio::test]
async fn a_dead_consumers_entries_are_claimed_and_dead_letters_keep_the_fields() {
    let streams = TestStreams::new();
    let mut dead = consumer(&streams, "g", "dead", 60_000).await;
    let mut alive = consumer(&streams, "g", "alive", 20).await;
    let id = streams.xadd_raw("s", "event", "orphan").await;
    assert_eq!(dead.read_new(10, None).await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(alive.claim_stale(10).await.unwrap(), 1);
    let pending = alive.read_pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(
        pending[0].deliveries, 2,
        "the first read and the re-read (a JUSTID claim is not a delivery)"
    );
    alive.dead_letter(&pending[0], "gave up").await.unwrap();
    let dlq = streams.entries("s_dlq").await;
    assert_eq!(
        dlq[0].1,
        [
            ("attempts".to_owned(), "2".to_owned()),
            ("event".to_owned(), "orphan".to_owned()),
            ("reason".to_owned(), "gave up".to_owned())
        ]
    );
    assert_eq!(streams.xlen("s").await, 0);
    assert_eq!(alive.pending_count().await.unwrap(), 0);
}
