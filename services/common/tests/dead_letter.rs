//! Dead-letter streams against the tests' Redis: bounded, listed by a dry run, replayed onto
//! their stream without loss or duplicates, even when the replay is cut off mid-way.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use rsky_common::consumer::{ConsumerConfig, GroupConsumer};
use rsky_common::dead_letter::{self, Outcome, ReplayArgs, ReplayError};
use rsky_testkit::support::{redis_addr, unique_prefix, TcpProxy};

/// A stream `s` with group `g` and its dead-letter stream `s_dlq`, under a prefix of its own.
struct Fixture {
    prefix: String,
    stream: String,
    dlq: String,
    consumer: GroupConsumer,
    conn: MultiplexedConnection,
}

impl Fixture {
    async fn new(test: &str) -> Fixture {
        Fixture::with_max_len(test, dead_letter::DEFAULT_MAX_LEN).await
    }

    async fn with_max_len(test: &str, max_len: u64) -> Fixture {
        let prefix = unique_prefix(&format!("dead-letter:{test}"));
        let stream = format!("{prefix}s");
        let dlq = format!("{stream}_dlq");
        let mut consumer = GroupConsumer::connect(
            &rsky_testkit::support::redis_url(),
            rsky_common::store::RedisTimeouts::DEFAULT,
            ConsumerConfig {
                stream: stream.clone(),
                group: "g".into(),
                consumer: "c".into(),
                dead_letter_stream: dlq.clone(),
                dead_letter_max_len: max_len,
                block: Duration::from_millis(50),
                claim_min_idle: Duration::from_secs(60),
            },
        )
        .await
        .unwrap();
        consumer.create_group().await.unwrap();
        let conn = rsky_testkit::support::redis().await;
        Fixture {
            prefix,
            stream,
            dlq,
            consumer,
            conn,
        }
    }

    /// Adds `n` entries `{event: e<i>}`, reads them, fails each twice (3 deliveries) and
    /// dead-letters it with the reason `reason <i % 2>`. Returns the events in order.
    async fn dead_letters(&mut self, n: usize) -> Vec<String> {
        let events: Vec<String> = (0..n).map(|i| format!("e{i}")).collect();
        for event in &events {
            let _: String = redis::cmd("XADD")
                .arg(&self.stream)
                .arg("*")
                .arg("event")
                .arg(event)
                .arg("extra")
                .arg("x")
                .query_async(&mut self.conn)
                .await
                .unwrap();
        }
        let read = self.consumer.read_new(n, None).await.unwrap();
        assert_eq!(read.len(), n);
        for (i, entry) in read.iter().enumerate() {
            let mut entry = entry.clone();
            entry.deliveries = 3;
            self.consumer
                .dead_letter(&entry, &format!("reason {}", i % 2))
                .await
                .unwrap();
        }
        events
    }

    fn args(&self) -> ReplayArgs {
        ReplayArgs {
            stream: self.dlq.clone(),
            to: None,
            count: None,
            reason_contains: None,
            dry_run: false,
            redis_url: rsky_testkit::support::redis_url(),
            timeout_ms: Duration::from_secs(5),
        }
    }

    async fn xlen(&mut self, stream: &str) -> u64 {
        redis::cmd("XLEN")
            .arg(stream)
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }

    /// The `event` field of every entry of `stream`, oldest first, and whether any entry still
    /// holds dead-letter metadata.
    async fn events(&mut self, stream: &str) -> (Vec<String>, bool) {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream)
            .arg("-")
            .arg("+")
            .query_async(&mut self.conn)
            .await
            .unwrap();
        let metadata = reply
            .ids
            .iter()
            .any(|e| e.map.contains_key("reason") || e.map.contains_key("attempts"));
        let events = reply
            .ids
            .iter()
            .map(|e| e.get::<String>("event").unwrap_or_default())
            .collect();
        (events, metadata)
    }

    async fn cleanup(mut self) {
        rsky_testkit::support::delete_prefix(&mut self.conn, &self.prefix).await;
    }
}

#[tokio::test]
async fn a_dead_letter_holds_the_entrys_fields_its_reason_and_its_delivery_count() {
    let mut f = Fixture::new("fields").await;
    f.dead_letters(1).await;
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&f.dlq)
        .arg("-")
        .arg("+")
        .query_async(&mut f.conn)
        .await
        .unwrap();
    let letter = &reply.ids[0];
    assert_eq!(letter.get::<String>("event").as_deref(), Some("e0"));
    assert_eq!(letter.get::<String>("extra").as_deref(), Some("x"));
    assert_eq!(letter.get::<String>("reason").as_deref(), Some("reason 0"));
    assert_eq!(letter.get::<String>("attempts").as_deref(), Some("3"));
    assert_eq!(
        f.xlen(&f.stream.clone()).await,
        0,
        "acknowledged and deleted"
    );
    f.cleanup().await;
}

#[tokio::test]
async fn dead_letter_streams_are_trimmed_to_about_their_bound() {
    // The bound is the consumer's own: no other test of this binary sees it.
    let mut f = Fixture::with_max_len("bounded", 10).await;
    f.dead_letters(300).await;
    let len = f.xlen(&f.dlq.clone()).await;
    // `MAXLEN ~` removes whole internal nodes (100 entries by default), never below the bound.
    assert!((10..=110).contains(&len), "{len} dead letters kept");
    let (events, _) = f.events(&f.dlq.clone()).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("e299"),
        "the newest kept"
    );
    f.cleanup().await;
}

#[tokio::test]
async fn a_dry_run_lists_each_dead_letter_and_changes_nothing() {
    let mut f = Fixture::new("dry-run").await;
    f.dead_letters(3).await;
    let before = f.events(&f.dlq.clone()).await;
    let mut listed = Vec::new();
    let args = ReplayArgs {
        dry_run: true,
        ..f.args()
    };
    let summary = dead_letter::replay_at(&args, |letter, outcome| {
        assert_eq!(outcome, &Outcome::WouldMove);
        listed.push((
            letter.reason.clone().unwrap_or_default(),
            letter.attempts,
            dead_letter::report_line(letter, outcome),
        ));
    })
    .await
    .unwrap();
    assert_eq!(summary.moved, 3);
    assert_eq!(summary.target, f.stream);
    assert_eq!(listed[0].0, "reason 0");
    assert_eq!(listed[1].0, "reason 1");
    assert_eq!(listed[0].1, Some(3));
    assert!(
        listed[0].2.contains("attempts=3") && listed[0].2.contains("reason=\"reason 0\""),
        "{}",
        listed[0].2
    );
    assert_eq!(
        f.events(&f.dlq.clone()).await,
        before,
        "the dead letters stay"
    );
    assert_eq!(f.xlen(&f.stream.clone()).await, 0, "nothing added");
    f.cleanup().await;
}

#[tokio::test]
async fn a_replay_moves_entries_back_with_their_own_fields_and_they_are_consumed_again() {
    let mut f = Fixture::new("replay").await;
    let events = f.dead_letters(5).await;
    let args = ReplayArgs {
        count: Some(3),
        ..f.args()
    };
    let mut moved = Vec::new();
    let summary = dead_letter::replay_at(&args, |letter, outcome| {
        if let Outcome::Moved(id) = outcome {
            moved.push((letter.id.clone(), id.clone()));
        }
    })
    .await
    .unwrap();
    assert_eq!(summary.moved, 3, "--count 3");
    assert_eq!(moved.len(), 3);
    let (on_stream, metadata) = f.events(&f.stream.clone()).await;
    assert_eq!(on_stream, events[..3], "oldest first, in order");
    assert!(!metadata, "no reason or attempts on the replayed entries");
    let (left, _) = f.events(&f.dlq.clone()).await;
    assert_eq!(left, events[3..]);
    // The group delivers them as new entries, with their original fields.
    let again = f.consumer.read_new(10, None).await.unwrap();
    let got: Vec<_> = again
        .iter()
        .map(|e| (e.field("event").unwrap_or_default(), e.field("extra")))
        .collect();
    assert_eq!(
        got,
        [("e0", Some("x")), ("e1", Some("x")), ("e2", Some("x"))]
    );
    assert!(again.iter().all(|e| e.fields.len() == 2));
    // The rest.
    let summary = dead_letter::replay_at(&f.args(), |_, _| {}).await.unwrap();
    assert_eq!(summary.moved, 2);
    assert_eq!(f.xlen(&f.dlq.clone()).await, 0);
    assert_eq!(f.events(&f.stream.clone()).await.0, events);
    f.cleanup().await;
}

#[tokio::test]
async fn a_replay_can_take_only_the_entries_of_one_reason() {
    let mut f = Fixture::new("reason").await;
    let events = f.dead_letters(4).await;
    let args = ReplayArgs {
        reason_contains: Some("reason 1".into()),
        ..f.args()
    };
    let summary = dead_letter::replay_at(&args, |_, _| {}).await.unwrap();
    assert_eq!(summary.moved, 2);
    assert_eq!(
        f.events(&f.stream.clone()).await.0,
        [events[1].clone(), events[3].clone()]
    );
    assert_eq!(
        f.events(&f.dlq.clone()).await.0,
        [events[0].clone(), events[2].clone()]
    );
    f.cleanup().await;
}

#[tokio::test]
async fn a_replay_cut_off_mid_way_loses_nothing_and_duplicates_nothing() {
    let mut f = Fixture::new("interrupted").await;
    let events = f.dead_letters(8).await;
    let proxy = TcpProxy::start(redis_addr()).await;
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let args = ReplayArgs {
        redis_url: url,
        timeout_ms: Duration::from_millis(300),
        ..f.args()
    };
    // After the third move, the link hangs: the fourth move is sent and held, its answer never
    // comes, and the replay gives up on it, not knowing whether it ran.
    let mut moves = 0;
    let stopped = dead_letter::replay_at(&args, |_, outcome| {
        if matches!(outcome, Outcome::Moved(_)) {
            moves += 1;
            if moves == 3 {
                proxy.stall();
            }
        }
    })
    .await;
    assert!(
        matches!(stopped, Err(ReplayError::Redis { .. })),
        "{stopped:?}"
    );
    assert_eq!(moves, 3);
    // The held move reaches Redis late, after the replay gave up on it.
    proxy.resume().await;
    let conn = f.conn.clone();
    let (stream, dlq) = (f.stream.clone(), f.dlq.clone());
    rsky_testkit::support::wait_until(Duration::from_secs(5), "the held move ran", || {
        let (mut conn, stream) = (conn.clone(), stream.clone());
        async move {
            let len: u64 = redis::cmd("XLEN")
                .arg(&stream)
                .query_async(&mut conn)
                .await
                .unwrap_or(0);
            len == 4
        }
    })
    .await;
    let total: u64 = f.xlen(&stream).await + f.xlen(&dlq).await;
    assert_eq!(total, 8, "every entry is in exactly one of the two streams");
    // Running it again moves the rest; the entry moved late is not moved twice.
    let summary = dead_letter::replay_at(&f.args(), |_, _| {}).await.unwrap();
    assert_eq!(summary.moved, 4);
    assert_eq!(f.events(&stream).await.0, events, "each once, in order");
    assert_eq!(f.xlen(&dlq).await, 0);
    f.cleanup().await;
}

#[tokio::test]
async fn a_replay_refuses_a_target_that_is_not_a_stream() {
    let mut f = Fixture::new("bad-target").await;
    f.dead_letters(2).await;
    let missing = ReplayArgs {
        to: Some(format!("{}typo", f.prefix)),
        ..f.args()
    };
    let err = dead_letter::replay_at(&missing, |_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let string_key = format!("{}string", f.prefix);
    let _: () = redis::cmd("SET")
        .arg(&string_key)
        .arg("v")
        .query_async(&mut f.conn)
        .await
        .unwrap();
    let wrong = ReplayArgs {
        to: Some(string_key),
        ..f.args()
    };
    let err = dead_letter::replay_at(&wrong, |_, _| {}).await.unwrap_err();
    assert!(
        err.to_string().contains("is a string, not a stream"),
        "{err}"
    );
    assert_eq!(f.xlen(&f.dlq.clone()).await, 2, "nothing deleted");
    f.cleanup().await;
}

#[tokio::test]
async fn a_dead_letter_stream_without_the_suffix_needs_to() {
    let args = ReplayArgs {
        stream: "elsewhere".into(),
        to: None,
        count: None,
        reason_contains: None,
        dry_run: true,
        redis_url: rsky_testkit::support::redis_url(),
        timeout_ms: Duration::from_secs(5),
    };
    let err = dead_letter::replay_at(&args, |_, _| {}).await.unwrap_err();
    assert!(err.to_string().contains("--to"), "{err}");
    let same = ReplayArgs {
        to: Some("elsewhere".into()),
        ..args
    };
    let err = dead_letter::replay_at(&same, |_, _| {}).await.unwrap_err();
    assert!(matches!(err, ReplayError::SameStream(_)), "{err}");
}

#[tokio::test]
async fn a_replay_stops_at_the_last_entry_present_when_it_started_even_when_entries_come_back() {
    let mut f = Fixture::new("comes-back").await;
    f.dead_letters(150).await; // more than one XRANGE page
    let dlq = f.dlq.clone();
    // Each moved entry is dead-lettered again at once, as a cause nobody fixed would do.
    let client = redis::Client::open(rsky_testkit::support::redis_url()).unwrap();
    let mut again = client.get_connection().unwrap();
    let report = |letter: &dead_letter::DeadLetter, outcome: &Outcome| {
        if matches!(outcome, Outcome::Moved(_) | Outcome::WouldMove) {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&dlq).arg("*").arg("reason").arg("again");
            for (name, value) in &letter.fields {
                cmd.arg(name).arg(value);
            }
            let _: String = cmd.query(&mut again).unwrap();
        }
    };
    let replayed = tokio::time::timeout(
        Duration::from_secs(20),
        dead_letter::replay_at(&f.args(), report),
    )
    .await
    .expect("the replay ends");
    assert_eq!(replayed.unwrap().moved, 150);
    assert_eq!(f.xlen(&dlq).await, 150, "the ones that came back wait");

    let mut again = client.get_connection().unwrap();
    let listed = tokio::time::timeout(
        Duration::from_secs(20),
        dead_letter::replay_at(
            &ReplayArgs {
                dry_run: true,
                ..f.args()
            },
            |letter: &dead_letter::DeadLetter, _: &Outcome| {
                let _: String = redis::cmd("XADD")
                    .arg(&dlq)
                    .arg("*")
                    .arg("event")
                    .arg(&letter.id)
                    .query(&mut again)
                    .unwrap();
            },
        ),
    )
    .await
    .expect("the dry run ends");
    assert_eq!(listed.unwrap().moved, 150);
    f.cleanup().await;
}
