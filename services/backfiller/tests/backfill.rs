//! The backfiller against real Redis, a test PDS and a test PLC on loopback.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use redis::AsyncCommands;
use rsky_backfiller::config::GROUP;
use rsky_backfiller::metrics::ErrorKind;
use rsky_common::event::StreamEvent;
use rsky_testkit::pds::{Behaviour, TestAccount};
use support::{Running, World};

const DRAIN: Duration = Duration::from_secs(60);

fn creates_by_did(
    events: &[StreamEvent],
) -> HashMap<String, Vec<(String, String, String, serde_json::Value)>> {
    let mut out: HashMap<String, Vec<_>> = HashMap::new();
    for event in events {
        if let StreamEvent::Create(e) = event {
            assert_eq!(e.seq, -1, "backfilled events carry seq -1");
            out.entry(e.did.clone()).or_default().push((
                e.collection.clone(),
                e.rkey.clone(),
                e.cid.clone(),
                e.record.clone(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_writes_exactly_each_repos_records_and_one_repo_event() {
    let mut world = World::new("exact").await;
    let mut accounts = Vec::new();
    for (i, n) in [25usize, 40, 1234, 3].into_iter().enumerate() {
        accounts.push(TestAccount::plc(&format!("exact-{i}"), n).unwrap());
    }
    accounts.push(TestAccount::with_did(&world.pds.did_web(), "exact-web", 30).unwrap());
    for account in accounts {
        world.add(account, Behaviour::Serve).await;
    }
    let running = Running::start(world.config("b1", &[])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;

    let events = world.output().await;
    let creates = creates_by_did(&events);
    let mut repo_events: HashMap<String, usize> = HashMap::new();
    for event in &events {
        if let StreamEvent::Repo(e) = event {
            *repo_events.entry(e.did.clone()).or_default() += 1;
            let (_, hosted) = &world.hosted[&e.did];
            assert_eq!((&e.commit, &e.rev), (&hosted.head, &hosted.rev));
            assert_eq!(e.seq, -1);
        }
    }
    let (mut forwarded, mut filtered) = (0, 0);
    for (did, (account, _)) in &world.hosted {
        let expected: Vec<_> = account
            .forwarded_records()
            .into_iter()
            .map(|r| (r.collection, r.rkey, r.cid, r.record))
            .collect();
        let mut got = creates.get(did).cloned().unwrap_or_default();
        got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let per_collection = |records: &[(String, String, String, serde_json::Value)]| {
            let mut counts = BTreeMap::new();
            for r in records {
                *counts.entry(r.0.clone()).or_insert(0) += 1;
            }
            counts
        };
        assert_eq!(
            per_collection(&got),
            per_collection(&expected),
            "{did}: records per collection"
        );
        assert_eq!(got, expected, "{did}: the records, JSON included");
        assert_eq!(repo_events.get(did), Some(&1), "{did}: one repo event");
        forwarded += expected.len() as u64;
        filtered += account.filtered_count() as u64;
    }
    // Each repo event follows that repo's last record.
    let last_repo_event = events
        .iter()
        .rposition(|e| matches!(e, StreamEvent::Repo(_)));
    assert_eq!(last_repo_event, Some(events.len() - 1));

    assert_eq!(world.xlen("repo_backfill").await, 0);
    assert_eq!(world.pending().await, 0);
    assert_eq!(metrics.repos_processed.get(), 5);
    assert_eq!(metrics.records_extracted.get(), forwarded);
    assert_eq!(metrics.records_filtered.get(), filtered);
    assert!(filtered > 0, "the accounts hold records outside app.bsky");
    assert_eq!(metrics.repos_failed.get(), 0);
    assert_eq!(metrics.repo_duration_seconds.get_sample_count(), 5);
    assert_eq!(metrics.repo_attempts.get(), 5);
    assert_eq!(metrics.repos_running.get(), 0);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repos_the_pds_says_are_gone_are_acknowledged_without_retry() {
    let mut world = World::new("skip").await;
    let mut dids = Vec::new();
    for (i, behaviour) in [
        Behaviour::RepoNotFound,
        Behaviour::RepoTakendown,
        Behaviour::RepoDeactivated,
    ]
    .into_iter()
    .enumerate()
    {
        let account = TestAccount::plc(&format!("skip-{i}"), 5).unwrap();
        dids.push(world.add(account, behaviour).await);
    }
    let running = Running::start(world.config("b1", &[("STREAM_MAX_DELIVERIES", "4")])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;

    for did in &dids {
        assert_eq!(
            world.pds.get_repo_requests(did),
            1,
            "{did} was fetched once"
        );
    }
    assert_eq!(metrics.car_fetch_errors.get(), 3);
    assert_eq!(metrics.repos_skipped.get(), 3);
    assert_eq!(metrics.repos_failed.get(), 3);
    assert_eq!(metrics.retries_attempted.get(), 0);
    assert_eq!(metrics.repos_dead_lettered.get(), 0);
    assert!(world.dead_letters().await.is_empty());
    assert!(world.output().await.is_empty());
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_failures_are_retried_then_dead_lettered_with_reason_and_attempts() {
    let mut world = World::new("dlq").await;
    let cases = [
        (Behaviour::ServerError, "HTTP 500"),
        (Behaviour::Timeout, "did not answer"),
        (Behaviour::TruncatedCar, "cannot read the repository"),
        (Behaviour::BadSignature, "does not verify"),
        (Behaviour::DidMismatch, "does not verify"),
    ];
    let mut expected_reason = HashMap::new();
    for (i, (behaviour, reason)) in cases.into_iter().enumerate() {
        let account = TestAccount::plc(&format!("dlq-{i}"), 12).unwrap();
        expected_reason.insert(world.add(account, behaviour).await, reason);
    }
    // A DID that no directory knows.
    let unknown = rsky_testkit::plc::plc_did("dlq-unknown");
    world.enqueue(&unknown).await;
    expected_reason.insert(unknown.clone(), "HTTP 404");

    let config = world.config(
        "b1",
        &[
            ("STREAM_MAX_DELIVERIES", "3"),
            ("BACKFILLER_FETCH_TIMEOUT_MS", "300"),
        ],
    );
    let running = Running::start(config).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;

    let letters = world.dead_letters().await;
    assert_eq!(letters.len(), 6);
    for letter in &letters {
        let event: rsky_common::event::BackfillEvent =
            serde_json::from_str(&letter["repo"]).unwrap();
        let reason = expected_reason[&event.did];
        assert!(
            letter["reason"].contains(reason),
            "{}: {:?} lacks {reason:?}",
            event.did,
            letter["reason"]
        );
        assert_eq!(letter["attempts"], "3", "1 attempt + 2 retries");
        if event.did != unknown {
            assert_eq!(world.pds.get_repo_requests(&event.did), 3);
        }
    }
    assert_eq!(
        metrics.car_fetch_errors.get(),
        6,
        "500 and timeout, 3 attempts each"
    );
    assert_eq!(metrics.car_parse_errors.get(), 3);
    assert_eq!(metrics.verification_errors.get(), 6);
    assert_eq!(metrics.did_resolution_errors.get(), 3);
    assert_eq!(metrics.retries_attempted.get(), 12);
    assert_eq!(metrics.repos_failed.get(), 18);
    let kind = |kind: ErrorKind| metrics.errors[kind].get();
    assert_eq!(kind(ErrorKind::CarFetch), 6);
    assert_eq!(kind(ErrorKind::CarParse), 3);
    assert_eq!(kind(ErrorKind::Verification), 6);
    assert_eq!(kind(ErrorKind::DidResolution), 3);
    assert_eq!(kind(ErrorKind::Redis) + kind(ErrorKind::InvalidInput), 0);
    assert_eq!(metrics.repo_attempts.get(), 18);
    assert_eq!(metrics.repo_duration_seconds.get_sample_count(), 18);
    assert_eq!(metrics.repos_dead_lettered.get(), 6);
    assert_eq!(metrics.repos_processed.get(), 0);
    assert!(world.output().await.is_empty());
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_pds_is_retried_until_it_serves() {
    let mut world = World::new("flaky").await;
    let account = TestAccount::plc("flaky", 10).unwrap();
    let did = world.add(account, Behaviour::FailThenServe(2)).await;
    let running = Running::start(world.config("b1", &[])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;
    assert_eq!(world.pds.get_repo_requests(&did), 3);
    assert_eq!(metrics.retries_attempted.get(), 2);
    assert_eq!(metrics.repos_processed.get(), 1);
    assert_eq!(metrics.repos_dead_lettered.get(), 0);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_entry_is_dead_lettered_at_once() {
    let mut world = World::new("malformed").await;
    world.enqueue_raw("{not json").await;
    let running = Running::start(world.config("b1", &[])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;
    let letters = world.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["repo"], "{not json");
    assert_eq!(letters[0]["attempts"], "1");
    assert_eq!(metrics.repos_dead_lettered.get(), 1);
    assert_eq!(metrics.retries_attempted.get(), 0);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_never_removes_an_entry_that_is_pending_or_undelivered() {
    let mut world = World::new("trim").await;
    let running = Running::start(world.config("b1", &[])).await;
    // Let it create the group, then stop it so that only this test reads.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let metrics = running.stop().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(world.enqueue_raw(&format!("{{\"n\":{i}}}")).await);
    }
    let stream = world.stream("repo_backfill");
    // Another consumer takes three; it finishes the first (without XDEL) and dies with two pending.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("ghost")
        .arg("COUNT")
        .arg(3)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut world.redis)
        .await
        .unwrap();
    let _: () = world.redis.xack(&stream, GROUP, &[&ids[0]]).await.unwrap();

    let config = world.config("b1", &[]);
    let backfiller = rsky_backfiller::Backfiller::connect(config, metrics.clone())
        .await
        .unwrap();
    assert_eq!(backfiller.trim().await.unwrap(), 1);
    let left: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut world.redis)
        .await
        .unwrap();
    let left: Vec<String> = left.into_iter().map(|(id, _)| id).collect();
    assert_eq!(left, ids[1..], "only the acknowledged entry is trimmed");
    assert_eq!(world.pending().await, 2);
    assert_eq!(metrics.entries_trimmed.get(), 1);
    // With nothing newer acknowledged, trimming again removes nothing.
    assert_eq!(backfiller.trim().await.unwrap(), 0);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_idle_in_a_dead_consumer_are_reclaimed_and_processed() {
    let mut world = World::new("reclaim").await;
    world.add_served("reclaim", 4, 8).await;
    let stream = world.stream("repo_backfill");
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut world.redis)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("dead")
        .arg("COUNT")
        .arg(4)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut world.redis)
        .await
        .unwrap();
    assert_eq!(world.pending().await, 4);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let running = Running::start(world.config("b1", &[("STREAM_CLAIM_IDLE_MS", "100")])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;
    assert_eq!(metrics.repos_processed.get(), 4);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_waits_while_the_output_stream_is_at_its_high_water_mark() {
    let mut world = World::new("backpressure").await;
    let output = world.stream("firehose_backfill");
    for _ in 0..5 {
        let _: String = world
            .redis
            .xadd(&output, "*", &[("event", "{}")])
            .await
            .unwrap();
    }
    world
        .add(TestAccount::plc("bp", 4).unwrap(), Behaviour::Serve)
        .await;
    let running = Running::start(world.config("b1", &[("BACKFILLER_HIGH_WATER_MARK", "5")])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(running.metrics.backpressure_active.get(), 1);
    assert_eq!(running.metrics.repos_processed.get(), 0);
    assert_eq!(running.metrics.output_stream_length.get(), 5);
    assert_eq!(
        running.metrics.repos_waiting.get(),
        1,
        "the entry is not delivered yet"
    );
    let _: () = world.redis.del(&output).await.unwrap();
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;
    assert_eq!(metrics.backpressure_active.get(), 0);
    assert_eq!(metrics.repos_processed.get(), 1);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backfillers_in_one_group_share_the_work_without_duplicates() {
    let mut world = World::new("share").await;
    world.add_served("share", 16, 6).await;
    world.pds.set_get_repo_delay(Duration::from_millis(60));
    let overrides = [("BACKFILLER_CONCURRENCY", "2")];
    let a = Running::start(world.config("a", &overrides)).await;
    let b = Running::start(world.config("b", &overrides)).await;
    let mut saw_running = false;
    for _ in 0..20 {
        saw_running |= a.metrics.repos_running.get() > 0;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    world.wait_drained(DRAIN).await;
    let (a, b) = (a.stop().await, b.stop().await);
    assert!(saw_running, "repos_running shows work in flight");
    assert!(
        a.repos_processed.get() > 0 && b.repos_processed.get() > 0,
        "both took a share"
    );
    assert_eq!(a.repos_processed.get() + b.repos_processed.get(), 16);
    let mut repo_events: HashMap<String, usize> = HashMap::new();
    for event in world.output().await {
        if let StreamEvent::Repo(e) = event {
            *repo_events.entry(e.did).or_default() += 1;
        }
    }
    assert_eq!(repo_events.len(), 16);
    assert!(
        repo_events.values().all(|n| *n == 1),
        "no repo processed twice"
    );
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_dids_are_cached_in_redis_for_a_day() {
    let mut world = World::new("cache").await;
    let account = TestAccount::plc("cache", 3).unwrap();
    let did = world.add(account, Behaviour::Serve).await;
    world.enqueue(&did).await;
    let running = Running::start(world.config("b1", &[("BACKFILLER_CONCURRENCY", "1")])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;
    assert_eq!(metrics.repos_processed.get(), 2);
    assert_eq!(
        world.plc.requests(),
        1,
        "the second resolution came from the cache"
    );
    assert_eq!(metrics.did_cache_hits.get(), 1);
    let pds: String = world
        .redis
        .get(world.stream(&format!("did:pds:{did}")))
        .await
        .unwrap();
    assert_eq!(pds, world.pds.url());
    let ttl: i64 = world
        .redis
        .ttl(world.stream(&format!("did:key:{did}")))
        .await
        .unwrap();
    assert!((86_000..=86_400).contains(&ttl), "ttl {ttl}");
    world.cleanup().await;
}
