//! The batched write path against the per-event path: the same events give the same rows and
//! outcomes; a poison entry fails alone; replays are idempotent; per-DID order holds. Real
//! PostgreSQL, a database of its own per test (two where the paths are compared).

use rsky_common::event::{Label, StreamEvent};
use rsky_indexer::batch::{write_events, write_label_entries, Outcome, WritePath};
use rsky_indexer::db::FailureClass;
use rsky_indexer::index::{Indexed, Prepared};
use rsky_testkit::indexer::*;
use serde_json::json;

const NOW: &str = "2024-06-01T00:00:00.000Z";
const POST: &str = "app.bsky.feed.post";
const PER_EVENT: WritePath = WritePath::PerEvent { concurrency: 4 };

/// Writes `events` in batches of `sizes` (cycled) along `path`; the outcomes of all of them.
async fn write_in_batches(
    pool: &deadpool_postgres::Pool,
    path: WritePath,
    events: &[Prepared],
    sizes: &[usize],
) -> Vec<Outcome<Indexed>> {
    let mut outcomes = Vec::new();
    let mut start = 0;
    for size in sizes.iter().cycle() {
        if start >= events.len() {
            break;
        }
        let end = (start + size.max(&1)).min(events.len());
        let report = write_events(pool, path, &events[start..end], NOW).await;
        outcomes.extend(report.outcomes);
        start = end;
    }
    outcomes
}

/// Two databases, one per path.
struct Pair {
    _dbs: (TestDb, TestDb),
    per_event: (deadpool_postgres::Pool, tokio_postgres::Client),
    batched: (deadpool_postgres::Pool, tokio_postgres::Client),
}

impl Pair {
    async fn new() -> Pair {
        let (a, b) = (test_db().await, test_db().await);
        let per_event = (migrated_pool(&a).await, a.client().await);
        let batched = (migrated_pool(&b).await, b.client().await);
        Pair {
            _dbs: (a, b),
            per_event,
            batched,
        }
    }

    /// Writes `events` both ways (batched in batches of `sizes`) and asserts equal outcomes and
    /// equal rows.
    async fn assert_same(&self, events: &[StreamEvent], sizes: &[usize], what: &str) {
        let prepared = prepare(events);
        let expected = write_in_batches(&self.per_event.0, PER_EVENT, &prepared, &[1]).await;
        let got = write_in_batches(&self.batched.0, WritePath::Batched, &prepared, sizes).await;
        assert_eq!(got, expected, "{what}: outcomes");
        assert!(
            expected.iter().all(|o| matches!(o, Outcome::Committed(_))),
            "{what}: every event commits: {expected:?}"
        );
        assert_eq!(
            snapshot(&self.batched.1).await,
            snapshot(&self.per_event.1).await,
            "{what}: rows"
        );
    }

    async fn truncate(&self) {
        for client in [&self.per_event.1, &self.batched.1] {
            client
                .batch_execute(
                    r#"TRUNCATE record, actor, actor_sync, post, "like", repost, follow,
                       actor_block, profile, label"#,
                )
                .await
                .expect("truncate");
        }
    }
}

fn text_post(text: &str) -> serde_json::Value {
    json!({"$type": POST, "text": text, "createdAt": "2024-01-01T00:00:00.000Z"})
}

#[tokio::test]
async fn creates_updates_deletes_and_late_older_revs_give_the_per_event_rows() {
    let pair = Pair::new().await;
    let (alice, bob) = (did(1), did(2));
    let mut events = Vec::new();
    for (i, (collection, _)) in COLLECTIONS.iter().enumerate() {
        let rkey = if *collection == "app.bsky.actor.profile" {
            "self".to_owned()
        } else {
            format!("r{i}")
        };
        events.push(create(
            &alice,
            collection,
            &rkey,
            &rev(10 + i as u64),
            record_for(collection, i as u64),
        ));
        events.push(update(
            &bob,
            collection,
            &rkey,
            &rev(30),
            record_for(collection, 40 + i as u64),
        ));
    }
    events.extend([
        // A collection without a table of its own.
        create(
            &alice,
            "app.bsky.graph.list",
            "l1",
            &rev(5),
            json!({"name": "l"}),
        ),
        // Update, delete, a stale create of the deleted record, then a newer re-create.
        update(&alice, POST, "r0", &rev(20), text_post("edited")),
        delete(&alice, POST, "r0", &rev(21)),
        create(&alice, POST, "r0", &rev(19), text_post("zombie")),
        create(&alice, POST, "r0", &rev(22), text_post("again")),
        // Newer first, older after: the older changes nothing.
        update(&bob, POST, "p9", &rev(50), text_post("new")),
        create(&bob, POST, "p9", &rev(40), text_post("old")),
        // A tombstone, then a late create of an older rev.
        delete(&bob, POST, "p8", &rev(60)),
        create(&bob, POST, "p8", &rev(55), text_post("late")),
        repo(&bob, &rev(70), 9),
        repo(&alice, &rev(1), 9),
        identity(&alice, Some("Alice.Example.com")),
        account(&alice, false, Some("takendown")),
        identity(&alice, Some("alice2.example.com")),
        account(&bob, true, None),
        account(&bob, false, None),
        identity(&bob, None),
    ]);
    pair.assert_same(&events, &[500], "one batch").await;
    pair.truncate().await;
    pair.assert_same(&events, &[3, 7, 1], "several batches")
        .await;
    let client = &pair.batched.1;
    let texts: Vec<String> = client
        .query("SELECT text FROM post ORDER BY text", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(texts.contains(&"again".to_owned()) && texts.contains(&"new".to_owned()));
    assert!(!texts
        .iter()
        .any(|t| t == "zombie" || t == "old" || t == "late"));
}

#[tokio::test]
async fn the_interop_fixtures_valid_identifiers_give_the_per_event_rows() {
    let pair = Pair::new().await;
    let lines = |text: &'static str| -> Vec<&'static str> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    };
    let dids = lines(include_str!(
        "../../atproto/tests/fixtures/syntax/did_syntax_valid.txt"
    ));
    let handles = lines(include_str!(
        "../../atproto/tests/fixtures/syntax/handle_syntax_valid.txt"
    ));
    let rkeys = lines(include_str!(
        "../../atproto/tests/fixtures/syntax/recordkey_syntax_valid.txt"
    ));
    let tids = lines(include_str!(
        "../../atproto/tests/fixtures/syntax/tid_syntax_valid.txt"
    ));
    let mut events = Vec::new();
    for (i, d) in dids.iter().enumerate() {
        let tid = tids[i % tids.len()];
        events.push(create(
            d,
            POST,
            rkeys[i % rkeys.len()],
            tid,
            record_for(POST, i as u64),
        ));
        events.push(identity(d, Some(handles[i % handles.len()])));
        events.push(account(d, i % 2 == 0, None));
        events.push(repo(d, tids[(i + 1) % tids.len()], i as i64));
    }
    for (i, rkey) in rkeys.iter().enumerate() {
        for tid in &tids {
            events.push(create(&did(7), POST, rkey, tid, record_for(POST, i as u64)));
            events.push(delete(&did(7), POST, rkey, tid));
        }
    }
    pair.assert_same(&events, &[100], "fixtures").await;
}

/// A small xorshift generator: the same seed, the same events.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Events on a few records with revs in a small range: ties, older after newer, repeats.
fn generated(seed: u64, len: usize) -> Vec<StreamEvent> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let collections = [
        POST,
        "app.bsky.feed.like",
        "app.bsky.actor.profile",
        "app.bsky.graph.list",
    ];
    let mut events: Vec<StreamEvent> = Vec::new();
    for _ in 0..len {
        if !events.is_empty() && rng.next(10) == 0 {
            let again = events[rng.next(events.len() as u64) as usize].clone();
            events.push(again);
            continue;
        }
        let d = did(rng.next(2));
        let collection = collections[rng.next(4) as usize];
        let rkey = if collection == "app.bsky.actor.profile" {
            "self".to_owned()
        } else {
            format!("k{}", rng.next(2))
        };
        let r = rev(rng.next(6));
        let n = rng.next(3);
        let record = match collection {
            POST => json!({"text": format!("text {n}"), "createdAt": "t"}),
            "app.bsky.actor.profile" => json!({"displayName": format!("name {n}")}),
            _ => record_for(collection, n),
        };
        events.push(match rng.next(10) {
            0..=3 => create(&d, collection, &rkey, &r, record),
            4..=5 => update(&d, collection, &rkey, &r, record),
            6..=7 => delete(&d, collection, &rkey, &r),
            8 => repo(&d, &r, 1),
            _ => {
                if n == 0 {
                    account(&d, false, Some("suspended"))
                } else {
                    identity(&d, Some(&format!("h{n}.example.com")))
                }
            }
        });
    }
    events
}

#[tokio::test]
async fn generated_event_sequences_give_the_per_event_rows_and_outcomes() {
    let pair = Pair::new().await;
    for seed in 1..=25u64 {
        let events = generated(seed, 40);
        let sizes = [1 + (seed as usize % 13), 40, 3];
        pair.assert_same(&events, &sizes, &format!("seed {seed}"))
            .await;
        pair.truncate().await;
    }
}

#[tokio::test]
async fn the_same_event_twice_in_a_batch_and_across_batches_gives_the_same_rows() {
    let pair = Pair::new().await;
    let alice = did(1);
    let post = create(&alice, POST, "p1", &rev(1), record_for(POST, 1));
    let like = create(
        &alice,
        "app.bsky.feed.like",
        "l1",
        &rev(2),
        record_for("app.bsky.feed.like", 1),
    );
    let gone = delete(&alice, "app.bsky.feed.like", "l1", &rev(3));
    let once = [post.clone(), like.clone(), gone.clone()];
    pair.assert_same(&once, &[10], "once").await;
    let rows = snapshot(&pair.batched.1).await;
    let twice = [
        post.clone(),
        post.clone(),
        like.clone(),
        like,
        gone.clone(),
        gone,
    ];
    pair.assert_same(&twice, &[10], "twice in one batch").await;
    assert_eq!(
        snapshot(&pair.batched.1).await,
        rows,
        "a replay changes nothing"
    );
    pair.assert_same(&once, &[1], "again, across batches").await;
    assert_eq!(snapshot(&pair.batched.1).await, rows);
}

#[tokio::test]
async fn per_did_order_holds_within_and_across_batches() {
    let db = test_db().await;
    let pool = migrated_pool(&db).await;
    let client = db.client().await;
    let alice = did(1);
    let events = [
        identity(&alice, Some("first.example.com")),
        create(&alice, POST, "p1", &rev(1), record_for(POST, 1)),
        update(
            &alice,
            POST,
            "p1",
            &rev(2),
            json!({"text": "second", "createdAt": "t"}),
        ),
        identity(&alice, Some("second.example.com")),
        delete(&alice, POST, "p1", &rev(3)),
        create(
            &alice,
            POST,
            "p1",
            &rev(4),
            json!({"text": "third", "createdAt": "t"}),
        ),
        account(&alice, false, Some("suspended")),
        account(&alice, true, None),
    ];
    let prepared = prepare(&events);
    let report = write_events(&pool, WritePath::Batched, &prepared, NOW).await;
    assert_eq!(report.transactions.len(), 1, "one transaction");
    assert!(report.transactions[0].committed);
    let row = client
        .query_one(r#"SELECT handle, "upstreamStatus" FROM actor"#, &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0).as_deref(),
        Some("second.example.com")
    );
    assert_eq!(row.get::<_, Option<String>>(1), None);
    let text: String = client
        .query_one("SELECT text FROM post", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(text, "third");
    // The next batch carries an older identity first: the stream order wins, as one by one.
    let later = prepare(&[
        identity(&alice, Some("third.example.com")),
        update(
            &alice,
            POST,
            "p1",
            &rev(5),
            json!({"text": "fourth", "createdAt": "t"}),
        ),
    ]);
    write_events(&pool, WritePath::Batched, &later, NOW).await;
    let handle: Option<String> = client
        .query_one("SELECT handle FROM actor", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(handle.as_deref(), Some("third.example.com"));
    let text: String = client
        .query_one("SELECT text FROM post", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(text, "fourth");
}

/// The post `n` of `did(n)` with `text`.
fn post(n: u64, text: &str) -> StreamEvent {
    create(
        &did(n),
        POST,
        &rev(n),
        &rev(n),
        json!({"text": text, "createdAt": "t"}),
    )
}

/// Makes every insert of a post whose text is `poison` fail (SQLSTATE P0001: unexpected).
async fn poison_trigger(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               IF NEW.text = 'poison' THEN RAISE EXCEPTION 'this row is poison'; END IF;
               RETURN NEW; END $$;
             CREATE TRIGGER poison BEFORE INSERT ON post FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .await
        .expect("install the trigger");
}

#[tokio::test]
async fn a_poison_entry_fails_alone_and_the_rest_of_the_batch_commits() {
    let db = test_db().await;
    let pool = migrated_pool(&db).await;
    let client = db.client().await;
    poison_trigger(&client).await;
    let mut events: Vec<StreamEvent> = (0..100).map(|n| post(n, "fine")).collect();
    events[37] = post(37, "poison");
    // A later event of the poison's DID waits for it; a NUL byte is legal and stored.
    events.push(create(
        &did(37),
        POST,
        "after",
        &rev(90),
        record_for(POST, 1),
    ));
    events.push(post(200, "nul\u{0}byte"));
    let report = write_events(&pool, WritePath::Batched, &prepare(&events), NOW).await;
    for (i, outcome) in report.outcomes.iter().enumerate() {
        match i {
            37 => match outcome {
                Outcome::Failed { class, reason } => {
                    assert_eq!(*class, FailureClass::Unexpected);
                    assert!(reason.contains("this row is poison"), "{reason}");
                }
                other => panic!("the poison entry: {other:?}"),
            },
            100 => assert_eq!(*outcome, Outcome::Deferred, "after the poison, same DID"),
            _ => assert!(matches!(outcome, Outcome::Committed(_)), "{i}: {outcome:?}"),
        }
    }
    assert_eq!(count(&client, "post").await, 100);
    assert_eq!(count(&client, "record").await, 100);
    let committed = report.transactions.iter().filter(|t| t.committed).count();
    assert!(
        committed >= 2 && report.transactions.len() < 40,
        "{:?}",
        report.transactions
    );
    // Delivered again once the poison is gone (dead-lettered): the deferred one commits.
    let again = write_events(&pool, WritePath::Batched, &prepare(&events[100..101]), NOW).await;
    assert!(matches!(again.outcomes[0], Outcome::Committed(_)));
    assert_eq!(count(&client, "post").await, 101);
}

#[tokio::test]
async fn a_nul_character_is_stored_raw_without_loss_and_mapped_in_derived_text() {
    let db = test_db().await;
    let pool = migrated_pool(&db).await;
    let client = db.client().await;
    let text = "before\u{0}after";
    let record = json!({"text": text, "createdAt": "t"});
    let events: Vec<StreamEvent> = (0..20)
        .map(|n| create(&did(n), POST, &rev(n), &rev(n), record.clone()))
        .collect();
    for path in [WritePath::Batched, PER_EVENT] {
        let report = write_events(&pool, path, &prepare(&events), NOW).await;
        for (i, outcome) in report.outcomes.iter().enumerate() {
            assert!(matches!(outcome, Outcome::Committed(_)), "{i}: {outcome:?}");
        }
    }
    assert_eq!(count(&client, "post").await, 20);
    let row = client
        .query_one(
            "SELECT p.text, r.json FROM post p JOIN record r USING (uri) LIMIT 1",
            &[],
        )
        .await
        .expect("a post");
    assert_eq!(row.get::<_, String>(0), "before\u{FFFD}after");
    let raw: serde_json::Value = serde_json::from_str(&row.get::<_, String>(1)).expect("json");
    assert_eq!(raw["text"], text, "the raw record keeps U+0000");
}

#[tokio::test]
async fn an_entry_over_a_server_limit_is_unwritable_at_once_and_the_rest_commits() {
    let db = test_db().await;
    let pool = migrated_pool(&db).await;
    let client = db.client().await;
    // What an index row too large says (54000), for the one post whose text is `huge`.
    client
        .batch_execute(
            "CREATE FUNCTION huge() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               IF NEW.text = 'huge' THEN
                 RAISE EXCEPTION 'index row size exceeds btree maximum' USING ERRCODE = '54000';
               END IF;
               RETURN NEW; END $$;
             CREATE TRIGGER huge BEFORE INSERT ON post FOR EACH ROW EXECUTE FUNCTION huge();",
        )
        .await
        .expect("install the trigger");
    let mut events: Vec<StreamEvent> = (0..50).map(|n| post(n, "fine")).collect();
    events[20] = post(20, "huge");
    let report = write_events(&pool, WritePath::Batched, &prepare(&events), NOW).await;
    for (i, outcome) in report.outcomes.iter().enumerate() {
        if i == 20 {
            assert!(
                matches!(outcome, Outcome::Unwritable { reason } if reason.contains("54000")),
                "{outcome:?}"
            );
        } else {
            assert!(matches!(outcome, Outcome::Committed(_)), "{i}: {outcome:?}");
        }
    }
    assert_eq!(count(&client, "post").await, 49);
}

#[tokio::test]
async fn a_batch_over_the_statement_timeout_is_split_until_it_fits_not_paused_forever() {
    let db = test_db().await;
    drop(migrated_pool(&db).await);
    let session = rsky_indexer::db::Session {
        statement_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let pool = rsky_indexer::db::pool_with(&db.url(), 4, &session).expect("pool");
    let client = db.client().await;
    // 20 ms per post row: 100 rows in one statement take 2 s, each alone 20 ms.
    client
        .batch_execute(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               PERFORM pg_sleep(0.02); RETURN NEW; END $$;
             CREATE TRIGGER slow BEFORE INSERT ON post FOR EACH ROW EXECUTE FUNCTION slow();",
        )
        .await
        .expect("install the trigger");
    let events: Vec<StreamEvent> = (0..100)
        .map(|n| create(&did(n), POST, &rev(n), &rev(n), record_for(POST, n)))
        .collect();
    let report = write_events(&pool, WritePath::Batched, &prepare(&events), NOW).await;
    for (i, outcome) in report.outcomes.iter().enumerate() {
        assert!(matches!(outcome, Outcome::Committed(_)), "{i}: {outcome:?}");
    }
    assert_eq!(count(&client, "post").await, 100);
    assert!(
        report.transactions.len() < 40,
        "bounded splitting: {:?}",
        report.transactions
    );
}

#[tokio::test]
async fn an_unreachable_database_fails_every_entry_as_unavailable() {
    let pool = rsky_indexer::db::pool("postgres://postgres@127.0.0.1:1/none", 2).expect("pool");
    let events = prepare(&[
        create(&did(1), POST, "p1", &rev(1), record_for(POST, 1)),
        create(&did(2), POST, "p1", &rev(1), record_for(POST, 2)),
    ]);
    let report = write_events(&pool, WritePath::Batched, &events, NOW).await;
    assert_eq!(report.transactions.len(), 1, "no split for a lost database");
    for outcome in report.outcomes {
        assert!(
            matches!(
                outcome,
                Outcome::Failed {
                    class: FailureClass::Unavailable,
                    ..
                }
            ),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn labels_and_negations_in_one_batch_give_the_entry_by_entry_rows() {
    let pair = Pair::new().await;
    let l = "did:plc:labeler";
    let uri = format!("at://{}/app.bsky.feed.post/p1", did(1));
    let mut later = label(l, &uri, "spam", false);
    later.cts = "2024-02-01T00:00:00.000Z".into();
    let mut with_cid = label(l, &uri, "nsfw", false);
    with_cid.cid = Some(CID.into());
    let entries: Vec<Vec<Label>> = vec![
        vec![label(l, &uri, "spam", false), label(l, &uri, "nsfw", false)],
        vec![label(l, &uri, "spam", true), with_cid.clone()],
        vec![later, label(l, &did(1), "impersonation", false)],
        vec![
            label(l, &uri, "nsfw", true),
            label(l, &did(1), "gore", false),
            label(l, &did(1), "gore", true),
        ],
        vec![label(l, &did(2), "x", true)],
    ];
    // Entry by entry, one transaction each (the per-entry path).
    let (pool, client) = &pair.per_event;
    for entry in &entries {
        let mut c = pool.get().await.unwrap();
        let tx = c.transaction().await.unwrap();
        let refs: Vec<&Label> = entry.iter().collect();
        rsky_indexer::labels::index_labels(&tx, &refs)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let refs: Vec<Vec<&Label>> = entries.iter().map(|e| e.iter().collect()).collect();
    let report = write_label_entries(&pair.batched.0, &refs).await;
    assert_eq!(report.transactions.len(), 1);
    let added: u64 = report
        .outcomes
        .iter()
        .map(|o| match o {
            Outcome::Committed(w) => w.added,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(added, 6);
    assert_eq!(snapshot(&pair.batched.1).await, snapshot(client).await);
    let vals: Vec<String> = pair
        .batched
        .1
        .query("SELECT val || cid FROM label ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        vals,
        [
            "impersonation".to_owned(),
            format!("nsfw{CID}"),
            "spam".to_owned()
        ]
    );
}

#[tokio::test]
async fn a_poison_label_entry_fails_alone_and_the_later_entries_wait_for_it() {
    let db = test_db().await;
    let pool = migrated_pool(&db).await;
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               IF NEW.val = 'poison' THEN RAISE EXCEPTION 'this label is poison'; END IF;
               RETURN NEW; END $$;
             CREATE TRIGGER poison BEFORE INSERT ON label FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .await
        .expect("install the trigger");
    let l = "did:plc:labeler";
    let entries: Vec<Vec<Label>> = (0..20u64)
        .map(|n| {
            let val = if n == 12 { "poison" } else { "spam" };
            vec![label(l, &did(n), val, false)]
        })
        .collect();
    let refs: Vec<Vec<&Label>> = entries.iter().map(|e| e.iter().collect()).collect();
    let report = write_label_entries(&pool, &refs).await;
    for (i, outcome) in report.outcomes.iter().enumerate() {
        match i {
            0..=11 => assert!(matches!(outcome, Outcome::Committed(_)), "{i}: {outcome:?}"),
            12 => assert!(
                matches!(outcome, Outcome::Failed { class: FailureClass::Unexpected, reason }
                    if reason.contains("this label is poison")),
                "{outcome:?}"
            ),
            _ => assert_eq!(*outcome, Outcome::Deferred, "{i}: labels keep stream order"),
        }
    }
    assert_eq!(count(&client, "label").await, 12);
}

/// Transactions the batched path spends on a batch of 1,000 posts with `poisons` entries that
/// are `text`: one line per count on stdout (BENCHMARKS.md takes them from here).
async fn transactions_for(text: &str, poisons: usize) -> (usize, i64) {
    let db = test_db().await;
    let pool = migrated_pool(&db).await;
    let client = db.client().await;
    poison_trigger(&client).await;
    let step = 1000 / poisons;
    let events: Vec<StreamEvent> = (0..1000u64)
        .map(|n| {
            let text = if (n as usize).is_multiple_of(step) && (n as usize / step) < poisons {
                text
            } else {
                "fine"
            };
            create(
                &did(n),
                POST,
                &rev(n),
                &rev(n),
                json!({"text": text, "createdAt": "t"}),
            )
        })
        .collect();
    let report = write_events(&pool, WritePath::Batched, &prepare(&events), NOW).await;
    (report.transactions.len(), count(&client, "post").await)
}

#[tokio::test]
async fn bisection_is_bounded_and_legal_nul_text_costs_no_split() {
    for poisons in [1, 10, 125] {
        let (transactions, stored) = transactions_for("poison", poisons).await;
        println!("poison (P0001 trigger) x{poisons} in 1000: {transactions} transactions");
        assert_eq!(stored, (1000 - poisons) as i64);
        assert!(
            transactions <= 2 * 1000,
            "at most two transactions per entry: {transactions}"
        );
        let (transactions, stored) = transactions_for("nul\u{0}byte", poisons).await;
        println!("U+0000 text x{poisons} in 1000: {transactions} transactions");
        assert_eq!(stored, 1000, "every legal record stored");
        assert_eq!(transactions, 1, "validated before the write: no split");
    }
}

#[tokio::test]
async fn crossing_batches_of_account_and_identity_events_never_deadlock() {
    let db = test_db().await;
    let pool = migrated_pool(&db).await;
    let first = (0..20).map(did).collect::<Vec<_>>();
    let second = (20..40).map(did).collect::<Vec<_>>();
    // One batch: account events of the first DIDs, identity events of the second; the other
    // batch the reverse. Written at once, each takes row locks in both sets.
    let batch = |accounts: &[String], identities: &[String]| {
        let mut events: Vec<StreamEvent> =
            accounts.iter().map(|d| account(d, true, None)).collect();
        events.extend(
            identities
                .iter()
                .map(|d| identity(d, Some("h.example.com"))),
        );
        prepare(&events)
    };
    let (one, two) = (batch(&first, &second), batch(&second, &first));
    for round in 0..200 {
        let (x, y) = tokio::join!(
            write_events(&pool, WritePath::Batched, &one, NOW),
            write_events(&pool, WritePath::Batched, &two, NOW),
        );
        for report in [x, y] {
            assert!(
                report.outcomes.iter().all(Outcome::is_settled),
                "round {round}: {:?}",
                report.outcomes.iter().find(|o| !o.is_settled())
            );
            assert_eq!(
                report.transactions.len(),
                1,
                "round {round}: a transaction was tried again (deadlock detected): {:?}",
                report.transactions
            );
        }
    }
}
