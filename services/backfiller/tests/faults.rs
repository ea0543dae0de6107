//! The backfiller against a misbehaving PDS or DID host (issue "Faults"): oversized bodies,
//! invalid records, stale DID cache entries.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use rsky_backfiller::metrics::ErrorKind;
use rsky_common::event::StreamEvent;
use rsky_testkit::pds::{Behaviour, TestAccount, TestPds, INVALID_RECORD_RKEY};
use support::{Running, World};

const DRAIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_over_the_size_limit_is_refused_while_streaming_and_dead_lettered() {
    let mut world = World::new("too-large").await;
    // No Content-Length, a body that never ends: only a limit checked while reading stops it.
    let endless = world
        .add(TestAccount::plc("endless", 3).unwrap(), Behaviour::Endless)
        .await;
    // A declared Content-Length above the limit: refused before reading.
    let big = world
        .add(TestAccount::plc("big", 200).unwrap(), Behaviour::Serve)
        .await;
    let small = world
        .add(TestAccount::plc("small", 2).unwrap(), Behaviour::Serve)
        .await;
    let config = world.config(
        "b1",
        &[
            ("BACKFILLER_MAX_REPO_BYTES", "20000"),
            ("BACKFILLER_FETCH_TIMEOUT_MS", "30000"),
        ],
    );
    let running = Running::start(config).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;

    let letters = world.dead_letters().await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    for letter in &letters {
        let event: rsky_common::event::BackfillEvent =
            serde_json::from_str(&letter["repo"]).unwrap();
        assert!(event.did == endless || event.did == big);
        assert!(
            letter["reason"].contains("larger than the limit of 20000 bytes")
                && letter["reason"].contains("BACKFILLER_MAX_REPO_BYTES"),
            "{}",
            letter["reason"]
        );
        assert_eq!(letter["attempts"], "1", "dead-lettered at once");
        assert_eq!(world.pds.get_repo_requests(&event.did), 1);
    }
    assert_eq!(metrics.errors[ErrorKind::TooLarge].get(), 2);
    assert_eq!(metrics.repos_dead_lettered.get(), 2);
    assert_eq!(metrics.repos_processed.get(), 1, "{small} is served");
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_did_document_over_its_size_limit_is_dead_lettered() {
    let mut world = World::new("doc-too-large").await;
    let account = TestAccount::with_did(&world.pds.did_web(), "big-doc", 3).unwrap();
    let did = world.add(account, Behaviour::Serve).await;
    world.pds.pad_web_document(100_000);
    let running = Running::start(world.config("b1", &[])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;
    let letters = world.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0]["reason"].contains(&format!("the DID document of {did}"))
            && letters[0]["reason"].contains("BACKFILLER_MAX_DID_DOCUMENT_BYTES"),
        "{}",
        letters[0]["reason"]
    );
    assert_eq!(letters[0]["attempts"], "1");
    assert_eq!(metrics.errors[ErrorKind::TooLarge].get(), 1);
    assert_eq!(world.pds.get_repo_requests(&did), 0);
    assert!(world.output().await.is_empty());
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_record_is_skipped_and_the_rest_of_the_repository_is_written() {
    let mut world = World::new("invalid-record").await;
    let account = TestAccount::plc("invalid-record", 20).unwrap();
    let expected: Vec<(String, String)> = account
        .forwarded_records()
        .into_iter()
        .map(|r| (r.collection, r.rkey))
        .collect();
    let did = world.add(account, Behaviour::InvalidRecord).await;
    let running = Running::start(world.config("b1", &[])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;

    let events = world.output().await;
    let mut written: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Create(c) => Some((c.collection.clone(), c.rkey.clone())),
            _ => None,
        })
        .collect();
    written.sort();
    assert_eq!(
        written, expected,
        "every valid record, none of the invalid one"
    );
    assert!(!written.iter().any(|(_, rkey)| rkey == INVALID_RECORD_RKEY));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StreamEvent::Repo(r) if r.did == did)),
        "the repo event"
    );
    assert_eq!(metrics.records_invalid.get(), 1);
    assert_eq!(metrics.repos_processed.get(), 1);
    assert_eq!(metrics.repos_failed.get(), 0);
    assert!(world.dead_letters().await.is_empty());
    world.cleanup().await;
}

/// Puts `pds` and `key` in the DID cache of `did`, as an earlier resolution left them.
async fn cache(world: &mut World, did: &str, pds: &str, key: &str) {
    let (pds_key, key_key) = (
        world.stream(&format!("did:pds:{did}")),
        world.stream(&format!("did:key:{did}")),
    );
    let _: () = world.redis.set_ex(pds_key, pds, 86_400).await.unwrap();
    let _: () = world.redis.set_ex(key_key, key, 86_400).await.unwrap();
}

async fn cached_pds(world: &mut World, did: &str) -> Option<String> {
    world
        .redis
        .get(world.stream(&format!("did:pds:{did}")))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_migrated_is_fetched_from_its_new_pds_despite_the_cache() {
    let mut world = World::new("migrated").await;
    let account = TestAccount::plc("migrated", 6).unwrap();
    let key = account.key.public_key().to_did_key();
    // The old PDS deactivated the account after its migration to the world's PDS.
    let old = TestPds::start().await.unwrap();
    old.host(&account, Behaviour::RepoDeactivated, &world.plc)
        .unwrap();
    let did = world.add(account, Behaviour::Serve).await;
    cache(&mut world, &did, &old.url(), &key).await;
    let running = Running::start(world.config("b1", &[])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;

    assert_eq!(old.get_repo_requests(&did), 1);
    assert_eq!(world.pds.get_repo_requests(&did), 1);
    assert_eq!(world.plc.requests(), 1, "resolved again once");
    assert_eq!(metrics.repos_processed.get(), 1);
    assert_eq!(metrics.repos_skipped.get(), 0);
    assert_eq!(metrics.repos_failed.get(), 0);
    assert_eq!(cached_pds(&mut world, &did).await, Some(world.pds.url()));
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_resolved_again_instead_of_failing_verification() {
    let mut world = World::new("rotated").await;
    let account = TestAccount::plc("rotated", 6).unwrap();
    let did = world.add(account, Behaviour::Serve).await;
    let old_key = TestAccount::plc("rotated-old-key", 1)
        .unwrap()
        .key
        .public_key()
        .to_did_key();
    let pds = world.pds.url();
    cache(&mut world, &did, &pds, &old_key).await;
    let running = Running::start(world.config("b1", &[])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;

    assert_eq!(metrics.repos_processed.get(), 1);
    assert_eq!(metrics.verification_errors.get(), 0);
    assert_eq!(metrics.repos_failed.get(), 0);
    assert!(world.dead_letters().await.is_empty());
    assert_eq!(world.plc.requests(), 1);
    assert_eq!(
        world.pds.get_repo_requests(&did),
        2,
        "with the old key, then the new"
    );
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_still_gone_after_resolving_again_is_skipped_without_a_second_fetch() {
    let mut world = World::new("still-gone").await;
    let account = TestAccount::plc("still-gone", 3).unwrap();
    let key = account.key.public_key().to_did_key();
    let did = world.add(account, Behaviour::RepoNotFound).await;
    let pds = world.pds.url();
    cache(&mut world, &did, &pds, &key).await;
    let running = Running::start(world.config("b1", &[])).await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;

    assert_eq!(world.plc.requests(), 1, "resolved again once");
    assert_eq!(
        world.pds.get_repo_requests(&did),
        1,
        "the same PDS: not asked twice"
    );
    assert_eq!(metrics.repos_skipped.get(), 1);
    assert_eq!(metrics.car_fetch_errors.get(), 1);
    assert_eq!(metrics.errors[ErrorKind::CarFetch].get(), 1);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_while_writing_pauses_and_dead_letters_nothing() {
    use rsky_testkit::support::{redis_addr, wait_until, TcpProxy};
    let mut world = World::new("redis-down").await;
    let did = world
        .add(TestAccount::plc("redis-down", 5).unwrap(), Behaviour::Serve)
        .await;
    world.pds.set_get_repo_delay(Duration::from_millis(400));
    let proxy = TcpProxy::start(redis_addr()).await;
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    // One delivery in all: a failure that spent it would dead-letter the repository.
    let config = world.config("b1", &[("REDIS_URL", &url), ("STREAM_MAX_DELIVERIES", "1")]);
    let running = Running::start(config).await;
    let pds = &world.pds;
    wait_until(Duration::from_secs(10), "getRepo asked", || async {
        pds.get_repo_requests(&did) == 1
    })
    .await;
    // Redis goes away while the repository downloads: its write fails.
    proxy.cut().await;
    let metrics = running.metrics.clone();
    wait_until(Duration::from_secs(10), "the failed write", || async {
        metrics.errors[ErrorKind::Redis].get() >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore().await;
    world.wait_drained(DRAIN).await;
    let metrics = running.stop().await;

    assert!(
        world.dead_letters().await.is_empty(),
        "nothing dead-lettered"
    );
    assert_eq!(metrics.repos_processed.get(), 1);
    assert_eq!(metrics.repos_dead_lettered.get(), 0);
    assert!(
        world
            .output()
            .await
            .iter()
            .any(|e| matches!(e, StreamEvent::Repo(r) if r.did == did)),
        "written after Redis came back"
    );
    world.cleanup().await;
}

/// Redis lost the consumer group under a running backfiller (a restart without persistence, or
/// a deleted group): the backfiller creates it again, counts it, and backfills what comes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_consumer_group_is_created_again_counted_and_backfilling_goes_on() {
    let mut world = World::new("lost-group").await;
    world.add_served("lost-group-before", 1, 3).await;
    let running = Running::start(world.config("b1", &[])).await;
    world.wait_drained(DRAIN).await;
    let m = running.metrics.clone();
    assert_eq!(m.repos_processed.get(), 1);
    assert_eq!(m.consumer_groups_recreated.get(), 0);

    let destroyed: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(world.stream("repo_backfill"))
        .arg(rsky_backfiller::config::GROUP)
        .query_async(&mut world.redis)
        .await
        .expect("XGROUP DESTROY");
    assert_eq!(destroyed, 1, "the group existed");
    world.add_served("lost-group-after", 1, 3).await;
    rsky_testkit::support::wait_until(
        DRAIN,
        "the group created again and the repository backfilled",
        || async { m.consumer_groups_recreated.get() >= 1 && m.repos_processed.get() == 2 },
    )
    .await;
    running.stop().await;
    world.wait_drained(DRAIN).await;
    world.cleanup().await;
}
