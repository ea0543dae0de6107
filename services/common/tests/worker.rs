//! The shared stream worker against a real Redis (`TEST_REDIS_URL`): each decision of a
//! processor settles its entry as documented, and the retry policy dead-letters on the
//! `max_deliveries`-th delivery with the reason and the delivery count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsky_common::consumer::{ConsumerConfig, GroupConsumer, StreamEntry};
use rsky_common::shutdown::Shutdown;
use rsky_common::worker::{Housekeeping, Processor, RetryPolicy, Settle, Worker};
use rsky_testkit::support::{wait_until, TestStreams};

/// Decides by the entry's `value` field; remembers every batch it saw and what it was told.
#[derive(Clone, Default)]
struct Scripted {
    seen: Arc<Mutex<Vec<(String, u64)>>>,
    dead: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
    probes: Arc<AtomicU64>,
    /// How many more times a `flaky` entry is paused before it succeeds.
    pauses_left: Arc<AtomicU64>,
    recreated: Arc<AtomicU64>,
}

impl Processor for Scripted {
    async fn process(&self, entries: &[StreamEntry]) -> Vec<Settle> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|entry| {
                let value = entry.field("value").unwrap_or_default().to_owned();
                seen.push((value.clone(), entry.deliveries));
                match value.as_str() {
                    "ok" => Settle::Ack,
                    "bad" => Settle::Retry {
                        reason: "bad input".into(),
                    },
                    "poison" => Settle::DeadLetter {
                        reason: "never".into(),
                    },
                    "outage" if self.down.load(Ordering::SeqCst) => Settle::Pause {
                        reason: "down".into(),
                    },
                    "outage" => Settle::Ack,
                    "flaky" => {
                        let left = self.pauses_left.load(Ordering::SeqCst);
                        if left > 0 {
                            self.pauses_left.store(left - 1, Ordering::SeqCst);
                            Settle::Pause {
                                reason: "down".into(),
                            }
                        } else {
                            Settle::Ack
                        }
                    }
                    _ => Settle::Defer,
                }
            })
            .collect()
    }

    async fn recovered(&self) -> bool {
        self.probes.fetch_add(1, Ordering::SeqCst);
        !self.down.load(Ordering::SeqCst)
    }

    fn dead_lettered(&self, _entry: &StreamEntry, _reason: &str) {
        self.dead.fetch_add(1, Ordering::SeqCst);
    }

    fn group_recreated(&self) {
        self.recreated.fetch_add(1, Ordering::SeqCst);
    }
}

async fn start(
    streams: &TestStreams,
    processor: Scripted,
) -> (Shutdown, tokio::task::JoinHandle<()>) {
    let policy = RetryPolicy {
        max_deliveries: 3,
        backoff: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
    };
    start_with(streams, processor, policy, 10).await
}

async fn start_with(
    streams: &TestStreams,
    processor: Scripted,
    policy: RetryPolicy,
    batch_size: usize,
) -> (Shutdown, tokio::task::JoinHandle<()>) {
    let mut consumer = GroupConsumer::connect(
        &rsky_testkit::support::redis_url(),
        rsky_common::store::RedisTimeouts::DEFAULT,
        ConsumerConfig {
            stream: streams.name("s"),
            group: "g".into(),
            consumer: "c".into(),
            dead_letter_stream: streams.name("s_dlq"),
            dead_letter_max_len: rsky_common::dead_letter::DEFAULT_MAX_LEN,
            block: Duration::from_millis(50),
            claim_min_idle: Duration::from_secs(60),
        },
    )
    .await
    .unwrap();
    consumer.create_group().await.unwrap();
    let housekeeping = Housekeeping::new(
        Duration::from_secs(60),
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    let shutdown = Shutdown::new();
    let worker = Worker::new(consumer, processor, policy, housekeeping, batch_size);
    let task = tokio::spawn(worker.run(shutdown.clone()));
    (shutdown, task)
}

async fn stop(shutdown: Shutdown, task: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the worker stops within 10 s")
        .expect("the worker did not panic");
}

fn fields(entry: &(String, Vec<(String, String)>)) -> HashMap<String, String> {
    entry.1.iter().cloned().collect()
}

#[tokio::test]
async fn acked_entries_leave_a_failing_one_is_dead_lettered_on_its_max_deliveries_th_delivery() {
    let streams = TestStreams::new();
    for value in ["ok", "bad", "poison", "ok"] {
        streams.xadd_raw("s", "value", value).await;
    }
    let processor = Scripted::default();
    let (shutdown, task) = start(&streams, processor.clone()).await;
    wait_until(Duration::from_secs(10), "two dead letters", || async {
        streams.xlen("s_dlq").await == 2
    })
    .await;
    wait_until(Duration::from_secs(10), "the stream empty", || async {
        streams.xlen("s").await == 0 && streams.pending("s", "g").await == 0
    })
    .await;
    stop(shutdown, task).await;

    let dead: Vec<_> = streams.entries("s_dlq").await.iter().map(fields).collect();
    let poison = dead.iter().find(|f| f["value"] == "poison").unwrap();
    assert_eq!(poison["reason"], "never");
    assert_eq!(
        poison["attempts"], "1",
        "dead-lettered on its first delivery"
    );
    let bad = dead.iter().find(|f| f["value"] == "bad").unwrap();
    assert_eq!(bad["reason"], "bad input");
    assert_eq!(
        bad["attempts"], "3",
        "dead-lettered on delivery max_deliveries"
    );
    let seen = processor.seen.lock().unwrap().clone();
    let bad_deliveries: Vec<u64> = seen
        .iter()
        .filter(|(v, _)| v == "bad")
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(bad_deliveries, [1, 2, 3]);
    assert_eq!(
        seen.iter().filter(|(v, _)| v == "ok").count(),
        2,
        "acked once each"
    );
    assert_eq!(processor.dead.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_paused_entry_costs_no_delivery_beyond_the_probe_and_is_processed_after_recovery() {
    let streams = TestStreams::new();
    streams.xadd_raw("s", "value", "outage").await;
    let processor = Scripted::default();
    processor.down.store(true, Ordering::SeqCst);
    let (shutdown, task) = start(&streams, processor.clone()).await;
    wait_until(
        Duration::from_secs(10),
        "the dependency probed twice",
        || async { processor.probes.load(Ordering::SeqCst) >= 2 },
    )
    .await;
    // While paused, nothing is read again: the entry was seen once.
    assert_eq!(processor.seen.lock().unwrap().len(), 1);
    assert_eq!(streams.pending("s", "g").await, 1);
    processor.down.store(false, Ordering::SeqCst);
    wait_until(
        Duration::from_secs(10),
        "the entry acknowledged",
        || async { streams.xlen("s").await == 0 },
    )
    .await;
    stop(shutdown, task).await;
    assert_eq!(
        streams.xlen("s_dlq").await,
        0,
        "an outage dead-letters nothing"
    );
}

#[tokio::test]
async fn a_deferred_entry_stays_pending_and_shutdown_returns() {
    let streams = TestStreams::new();
    streams.xadd_raw("s", "value", "wait").await;
    let processor = Scripted::default();
    let (shutdown, task) = start(&streams, processor.clone()).await;
    wait_until(Duration::from_secs(10), "the entry seen", || async {
        !processor.seen.lock().unwrap().is_empty()
    })
    .await;
    stop(shutdown, task).await;
    assert_eq!(streams.pending("s", "g").await, 1);
    assert_eq!(streams.xlen("s_dlq").await, 0);
}

/// Delivers `id` of `s` to consumer `c` of group `g` so that its count is `deliveries`, as if
/// each delivery had ended in a crash of the process.
async fn deliver_and_crash(streams: &TestStreams, deliveries: u64) {
    let mut conn = streams.conn().await;
    let stream = streams.name("s");
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    for from in std::iter::once(">").chain(std::iter::repeat_n("0", deliveries as usize - 1)) {
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("STREAMS")
            .arg(&stream)
            .arg(from)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_entry_delivered_more_often_than_allowed_is_dead_lettered_before_it_is_tried() {
    let streams = TestStreams::new();
    streams.xadd_raw("s", "value", "ok").await;
    // max_deliveries is 3: three deliveries that each killed the process.
    deliver_and_crash(&streams, 3).await;
    let processor = Scripted::default();
    let (shutdown, task) = start(&streams, processor.clone()).await;
    wait_until(Duration::from_secs(10), "one dead letter", || async {
        streams.xlen("s_dlq").await == 1
    })
    .await;
    stop(shutdown, task).await;
    assert!(
        processor.seen.lock().unwrap().is_empty(),
        "the processor is not called again"
    );
    let dead: Vec<_> = streams.entries("s_dlq").await.iter().map(fields).collect();
    assert_eq!(dead[0]["reason"], "delivered 4 times without being settled");
    assert_eq!(dead[0]["attempts"], "4");
    assert_eq!(streams.xlen("s").await, 0);
    assert_eq!(processor.dead.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_entry_on_its_last_allowed_delivery_is_still_tried() {
    let streams = TestStreams::new();
    streams.xadd_raw("s", "value", "ok").await;
    deliver_and_crash(&streams, 2).await;
    let processor = Scripted::default();
    let (shutdown, task) = start(&streams, processor.clone()).await;
    wait_until(
        Duration::from_secs(10),
        "the entry acknowledged",
        || async { streams.xlen("s").await == 0 },
    )
    .await;
    stop(shutdown, task).await;
    assert_eq!(*processor.seen.lock().unwrap(), [("ok".to_owned(), 3)]);
    assert_eq!(streams.xlen("s_dlq").await, 0);
}

#[tokio::test]
async fn pauses_spend_no_deliveries_however_many_there_are() {
    let streams = TestStreams::new();
    streams.xadd_raw("s", "value", "flaky").await;
    let processor = Scripted::default();
    // Twice max_deliveries (3) pause cycles, then the dependency answers for good.
    processor.pauses_left.store(6, Ordering::SeqCst);
    let (shutdown, task) = start(&streams, processor.clone()).await;
    wait_until(
        Duration::from_secs(10),
        "the entry acknowledged",
        || async { streams.xlen("s").await == 0 },
    )
    .await;
    stop(shutdown, task).await;
    assert_eq!(streams.xlen("s_dlq").await, 0, "nothing dead-lettered");
    let seen = processor.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 7, "six pauses and the success");
    assert!(
        seen.iter().all(|(_, deliveries)| *deliveries == 1),
        "each read is its first delivery: {seen:?}"
    );
}

#[tokio::test]
async fn a_deferred_entry_spends_no_delivery_while_it_waits() {
    let streams = TestStreams::new();
    streams.xadd_raw("s", "value", "wait").await;
    let processor = Scripted::default();
    let (shutdown, task) = start(&streams, processor.clone()).await;
    wait_until(
        Duration::from_secs(10),
        "the entry seen 5 times",
        || async { processor.seen.lock().unwrap().len() >= 5 },
    )
    .await;
    stop(shutdown, task).await;
    let seen = processor.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|(_, d)| *d == 1), "{seen:?}");
    assert_eq!(streams.xlen("s_dlq").await, 0);
}

/// Runs a worker, processes one entry, lets `lose` remove the group under it, adds two entries
/// and waits (bounded) until the worker processed them.
async fn lose_the_group_under_a_running_worker(lose: &[&str]) -> (TestStreams, Scripted) {
    let streams = TestStreams::new();
    let processor = Scripted::default();
    let (shutdown, task) = start(&streams, processor.clone()).await;
    streams.xadd_raw("s", "value", "ok").await;
    wait_until(
        Duration::from_secs(10),
        "the first entry acknowledged",
        || async { processor.seen.lock().unwrap().len() == 1 && streams.xlen("s").await == 0 },
    )
    .await;
    let mut conn = streams.conn().await;
    let mut cmd = redis::cmd(lose[0]);
    for arg in &lose[1..] {
        cmd.arg(arg.replace("{s}", &streams.name("s")));
    }
    let _: redis::Value = cmd.query_async(&mut conn).await.unwrap();
    streams.xadd_raw("s", "value", "ok").await;
    streams.xadd_raw("s", "value", "ok").await;
    wait_until(
        Duration::from_secs(10),
        "the entries added after the group was lost acknowledged",
        || async { processor.seen.lock().unwrap().len() == 3 && streams.xlen("s").await == 0 },
    )
    .await;
    stop(shutdown, task).await;
    (streams, processor)
}

#[tokio::test]
async fn a_worker_whose_group_was_destroyed_creates_it_again_and_goes_on() {
    let (streams, processor) =
        lose_the_group_under_a_running_worker(&["XGROUP", "DESTROY", "{s}", "g"]).await;
    assert!(processor.recreated.load(Ordering::SeqCst) >= 1);
    assert_eq!(streams.pending("s", "g").await, 0);
    assert_eq!(streams.xlen("s_dlq").await, 0);
}

#[tokio::test]
async fn a_worker_whose_stream_was_deleted_creates_the_group_again_and_goes_on() {
    let (streams, processor) = lose_the_group_under_a_running_worker(&["DEL", "{s}"]).await;
    assert!(processor.recreated.load(Ordering::SeqCst) >= 1);
    assert_eq!(streams.pending("s", "g").await, 0);
    assert_eq!(streams.xlen("s_dlq").await, 0);
}

#[tokio::test]
async fn a_failing_entry_does_not_slow_the_good_entries_read_with_it() {
    let streams = TestStreams::new();
    streams.xadd_raw("s", "value", "bad").await;
    for _ in 0..8 {
        streams.xadd_raw("s", "value", "ok").await;
    }
    // A pause of 3 s per failed batch: three batches with the failing entry would take 9 s.
    let policy = RetryPolicy {
        max_deliveries: 3,
        backoff: Duration::from_secs(3),
        backoff_max: Duration::from_secs(3),
    };
    let started = std::time::Instant::now();
    let (shutdown, task) = start_with(&streams, Scripted::default(), policy, 2).await;
    wait_until(Duration::from_secs(20), "the stream empty", || async {
        streams.xlen("s").await == 0 && streams.pending("s", "g").await == 0
    })
    .await;
    let took = started.elapsed();
    stop(shutdown, task).await;
    assert_eq!(
        streams.xlen("s_dlq").await,
        1,
        "the failing entry dead-lettered"
    );
    assert!(
        took < Duration::from_secs(2),
        "batches that made progress do not back off: took {took:?}"
    );
}
