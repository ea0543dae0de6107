//! Out-of-order events: a late older account, identity, label or negation event (a reclaimed
//! entry replayed after newer ones, another indexer of the group behind) changes nothing; a
//! replay of the same event is idempotent; the migration that adds the guards keeps the rows of
//! a database at the previous schema version. Every scenario runs along each write path: per
//! event, batched one event per batch, and batched in one batch. Real PostgreSQL, a database of
//! its own per path.

use rsky_common::event::{AccountEvent, IdentityEvent, Label, StreamEvent};
use rsky_indexer::batch::{write_events, write_label_entries, Outcome, WritePath};
use rsky_indexer::labels::index_labels;
use rsky_testkit::indexer::*;

const NOW: &str = "2024-06-01T00:00:00.000Z";

/// How a scenario's events are written.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// The per-event path (labels: `index_labels`, one transaction per entry).
    PerEvent,
    /// The batched path, one event (label entry) per batch: late events arrive in later batches.
    BatchedOneByOne,
    /// The batched path, each step in one batch: late events in the same batch.
    BatchedTogether,
}

const MODES: [Mode; 3] = [Mode::PerEvent, Mode::BatchedOneByOne, Mode::BatchedTogether];

/// A migrated database of its own.
struct Db {
    _db: TestDb,
    pool: deadpool_postgres::Pool,
    client: tokio_postgres::Client,
}

async fn fresh() -> Db {
    let db = test_db().await;
    let pool = migrated_pool(&db).await;
    let client = db.client().await;
    Db {
        _db: db,
        pool,
        client,
    }
}

fn account_at(did: &str, seq: i64, active: bool, status: Option<&str>) -> StreamEvent {
    StreamEvent::Account(AccountEvent {
        seq,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        active,
        status: status.map(str::to_owned),
    })
}

fn identity_at(did: &str, seq: i64, handle: Option<&str>) -> StreamEvent {
    StreamEvent::Identity(IdentityEvent {
        seq,
        time: "2024-01-01T00:00:00.000Z".into(),
        did: did.into(),
        handle: handle.map(str::to_owned),
    })
}

/// A label (or negation) from the test labeler on `uri`, created at day `day` of 2024-01.
fn label_at(uri: &str, val: &str, neg: bool, day: u32) -> Label {
    let mut l = label(LABELER, uri, val, neg);
    l.cts = format!("2024-01-{day:02}T00:00:00.000Z");
    l
}

const LABELER: &str = "did:plc:labeler";

/// Writes `events` along `mode`; whether each was applied.
async fn write(db: &Db, mode: Mode, events: &[StreamEvent]) -> Vec<bool> {
    let prepared = prepare(events);
    let mut outcomes = Vec::new();
    match mode {
        Mode::PerEvent => {
            let path = WritePath::PerEvent { concurrency: 4 };
            outcomes.extend(write_events(&db.pool, path, &prepared, NOW).await.outcomes);
        }
        Mode::BatchedOneByOne => {
            for one in prepared.chunks(1) {
                let report = write_events(&db.pool, WritePath::Batched, one, NOW).await;
                outcomes.extend(report.outcomes);
            }
        }
        Mode::BatchedTogether => {
            let report = write_events(&db.pool, WritePath::Batched, &prepared, NOW).await;
            outcomes.extend(report.outcomes);
        }
    }
    outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Committed(indexed) => indexed.applied,
            other => panic!("{mode:?}: every event commits (stale ones too): {other:?}"),
        })
        .collect()
}

/// Writes label `entries` along `mode`; (added, removed) per entry.
async fn write_labels(db: &Db, mode: Mode, entries: &[Vec<Label>]) -> Vec<(u64, u64)> {
    let refs: Vec<Vec<&Label>> = entries.iter().map(|e| e.iter().collect()).collect();
    let mut outcomes = Vec::new();
    match mode {
        Mode::PerEvent => {
            for entry in &refs {
                let mut client = db.pool.get().await.expect("a connection");
                let tx = client.transaction().await.expect("a transaction");
                let written = index_labels(&tx, entry).await.expect("labels written");
                tx.commit().await.expect("commit");
                outcomes.push(Outcome::Committed(written));
            }
        }
        Mode::BatchedOneByOne => {
            for entry in refs.chunks(1) {
                outcomes.extend(write_label_entries(&db.pool, entry).await.outcomes);
            }
        }
        Mode::BatchedTogether => {
            outcomes.extend(write_label_entries(&db.pool, &refs).await.outcomes);
        }
    }
    outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Committed(w) => (w.added, w.removed),
            other => panic!("{mode:?}: every label entry commits: {other:?}"),
        })
        .collect()
}

/// (handle, "upstreamStatus") of `did`.
async fn actor(db: &Db, did: &str) -> (Option<String>, Option<String>) {
    let row = db
        .client
        .query_one(
            r#"SELECT handle, "upstreamStatus" FROM actor WHERE did = $1"#,
            &[&did],
        )
        .await
        .expect("the actor row");
    (row.get(0), row.get(1))
}

/// The labels in force as `val@cts`, sorted.
async fn labels(db: &Db) -> Vec<String> {
    db.client
        .query("SELECT val || '@' || cts FROM label ORDER BY 1", &[])
        .await
        .expect("labels")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn an_account_status_stays_the_newer_one_when_an_older_event_arrives_late() {
    let (a, b, c) = (did(1), did(2), did(3));
    let events = [
        // Taken down at seq 10; the older "active" of seq 5 arrives late.
        account_at(&a, 10, false, Some("takendown")),
        account_at(&a, 5, true, None),
        // Reactivated at seq 20; the older takedown of seq 15 arrives late.
        account_at(&b, 20, true, None),
        account_at(&b, 15, false, Some("takendown")),
        // Backfilled (seq -1) first: applied while no sequenced event is; afterwards ignored.
        account_at(&c, -1, false, Some("deactivated")),
        account_at(&c, 3, true, None),
        account_at(&c, -1, false, Some("suspended")),
    ];
    for mode in MODES {
        let db = fresh().await;
        let applied = write(&db, mode, &events).await;
        assert_eq!(
            actor(&db, &a).await.1.as_deref(),
            Some("takendown"),
            "{mode:?}"
        );
        assert_eq!(actor(&db, &b).await.1, None, "{mode:?}");
        assert_eq!(actor(&db, &c).await.1, None, "{mode:?}");
        assert_eq!(
            applied,
            [true, false, true, false, true, true, false],
            "{mode:?}: stale events are processed but not applied"
        );
    }
}

#[tokio::test]
async fn a_handle_stays_the_newer_one_when_an_older_identity_event_arrives_late() {
    let (a, b) = (did(1), did(2));
    let events = [
        identity_at(&a, 10, Some("New.Example.com")),
        // An account event of a greater seq does not hold back identity events: separate seqs.
        account_at(&a, 100, false, Some("suspended")),
        identity_at(&a, 5, Some("old.example.com")),
        identity_at(&b, 7, Some("b.example.com")),
        identity_at(&b, 3, None),
    ];
    for mode in MODES {
        let db = fresh().await;
        let applied = write(&db, mode, &events).await;
        assert_eq!(
            actor(&db, &a).await,
            (
                Some("new.example.com".to_owned()),
                Some("suspended".to_owned())
            ),
            "{mode:?}"
        );
        assert_eq!(
            actor(&db, &b).await.0.as_deref(),
            Some("b.example.com"),
            "{mode:?}"
        );
        assert_eq!(applied, [true, true, false, true, false], "{mode:?}");
        // A newer identity event still applies after the account event of a greater seq.
        let applied = write(
            &db,
            mode,
            &[identity_at(&a, 50, Some("newest.example.com"))],
        )
        .await;
        assert_eq!(applied, [true], "{mode:?}");
        assert_eq!(
            actor(&db, &a).await.0.as_deref(),
            Some("newest.example.com"),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_late_older_negation_does_not_remove_a_newer_label() {
    let post = format!("at://{}/app.bsky.feed.post/p1", did(1));
    let entries = vec![
        vec![label_at(&post, "spam", false, 1)],
        // Re-applied on day 5; a negation of day 3 arrives late.
        vec![label_at(&post, "spam", false, 5)],
        vec![label_at(&post, "spam", true, 3)],
        // On a whole account: the label of day 9, then the negation of day 8.
        vec![label_at(&did(1), "rude", false, 9)],
        vec![label_at(&did(1), "rude", true, 8)],
    ];
    for mode in MODES {
        let db = fresh().await;
        let counts = write_labels(&db, mode, &entries).await;
        assert_eq!(
            labels(&db).await,
            [
                "rude@2024-01-09T00:00:00.000Z",
                "spam@2024-01-05T00:00:00.000Z"
            ],
            "{mode:?}"
        );
        assert_eq!(
            counts,
            [(1, 0), (1, 0), (0, 0), (1, 0), (0, 0)],
            "{mode:?}: a stale negation removes nothing"
        );
    }
}

#[tokio::test]
async fn a_late_older_label_does_not_resurrect_one_negated_later() {
    let post = format!("at://{}/app.bsky.feed.post/p1", did(1));
    let entries = vec![
        vec![label_at(&post, "spam", false, 1)],
        vec![label_at(&post, "spam", true, 4)],
        // The add of day 1 replayed late, and one of day 2 arriving late.
        vec![label_at(&post, "spam", false, 1)],
        vec![label_at(&post, "spam", false, 2)],
        // Equal cts: the negation wins, whichever comes first.
        vec![label_at(&post, "nsfw", true, 6)],
        vec![label_at(&post, "nsfw", false, 6)],
        vec![
            label_at(&post, "gore", false, 6),
            label_at(&post, "gore", true, 6),
        ],
        // A newer add after the negation does apply.
        vec![label_at(&post, "porn", true, 2)],
        vec![label_at(&post, "porn", false, 3)],
    ];
    for mode in MODES {
        let db = fresh().await;
        let counts = write_labels(&db, mode, &entries).await;
        assert_eq!(
            labels(&db).await,
            ["porn@2024-01-03T00:00:00.000Z"],
            "{mode:?}"
        );
        assert_eq!(
            counts,
            [
                (1, 0),
                (0, 1),
                (0, 0),
                (0, 0),
                (0, 1),
                (0, 0),
                (1, 1),
                (0, 1),
                (1, 0)
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn replays_of_the_same_events_are_idempotent_and_never_step_back() {
    let (a, b) = (did(1), did(2));
    let post = format!("at://{}/app.bsky.feed.post/p1", did(1));
    let events = [
        account_at(&a, 1, true, None),
        identity_at(&a, 2, Some("a1.example.com")),
        account_at(&a, 3, false, Some("takendown")),
        identity_at(&a, 4, Some("a2.example.com")),
        account_at(&b, 5, false, None),
    ];
    let entries = vec![
        vec![label_at(&post, "spam", false, 1)],
        vec![label_at(&post, "spam", true, 2)],
        vec![label_at(&post, "spam", false, 3)],
        vec![label_at(&post, "nsfw", false, 1)],
        vec![label_at(&post, "nsfw", true, 2)],
    ];
    for mode in MODES {
        let db = fresh().await;
        write(&db, mode, &events).await;
        write_labels(&db, mode, &entries).await;
        let expected = snapshot(&db.client).await;
        assert_eq!(
            labels(&db).await,
            ["spam@2024-01-03T00:00:00.000Z"],
            "{mode:?}"
        );
        // The whole stream again (a reclaimed batch replayed), then its first part alone.
        let applied = write(&db, mode, &events).await;
        assert_eq!(
            applied,
            [false, false, true, true, true],
            "{mode:?}: the last event of each kind and DID is re-applied as it was"
        );
        write(&db, mode, &events[..2]).await;
        write_labels(&db, mode, &entries).await;
        write_labels(&db, mode, &entries[..2]).await;
        write_labels(&db, mode, &entries[3..4]).await;
        assert_eq!(snapshot(&db.client).await, expected, "{mode:?}");
        assert_eq!(
            actor(&db, &a).await,
            (
                Some("a2.example.com".to_owned()),
                Some("takendown".to_owned())
            ),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn the_migration_keeps_the_rows_of_a_database_at_the_previous_version() {
    let db = test_db().await;
    let client = db.client().await;
    // The schema as the previous version left it: migrations 1 and 2, recorded.
    client
        .batch_execute(
            r#"CREATE TABLE indexer_migration (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   "appliedAt" timestamptz NOT NULL DEFAULT now()
               )"#,
        )
        .await
        .expect("the migration table");
    for m in rsky_indexer::schema::MIGRATIONS
        .iter()
        .filter(|m| m.version <= 2)
    {
        client.batch_execute(m.sql).await.expect("an old migration");
        client
            .execute(
                "INSERT INTO indexer_migration (version, name) VALUES ($1, $2)",
                &[&m.version, &m.name],
            )
            .await
            .expect("recorded");
    }
    let post = format!("at://{}/app.bsky.feed.post/p1", did(1));
    client
        .batch_execute(&format!(
            r#"INSERT INTO actor (did, handle, "indexedAt", "upstreamStatus")
                   VALUES ('{a}', 'a.example.com', 't', 'takendown');
               INSERT INTO record (uri, cid, did, json, "indexedAt", rev)
                   VALUES ('{post}', '{CID}', '{a}', '{{}}', 't', '{rev}');
               INSERT INTO label (src, uri, cid, val, neg, cts)
                   VALUES ('{LABELER}', '{post}', '', 'spam', false, '2024-01-05T00:00:00.000Z');"#,
            a = did(1),
            rev = rev(1),
        ))
        .await
        .expect("rows at the previous version");
    let before = snapshot(&client).await;

    let pool = rsky_indexer::db::pool(&db.url(), 4).expect("pool");
    let applied = rsky_indexer::schema::migrate(&pool)
        .await
        .expect("the migration upgrades the database");
    assert_eq!(applied, [3]);
    assert_eq!(
        rsky_indexer::schema::migrate(&pool).await.expect("again"),
        Vec::<i32>::new()
    );
    // Every row kept; the actor row only gained the (empty) seq columns.
    let after = snapshot(&client).await;
    assert_eq!(after.len(), before.len());
    for ((table, old), (_, new)) in before.iter().zip(&after) {
        assert_eq!(old.len(), new.len(), "{table}");
        if table != "actor" {
            assert_eq!(old, new, "{table}");
        }
    }
    assert_eq!(
        actor_row(&client, &did(1)).await,
        (
            Some("a.example.com".to_owned()),
            Some("takendown".to_owned())
        )
    );

    // The existing label guards its key: a late older add does not replace its cts, a late
    // older negation does not remove it.
    let labels_db = Db {
        _db: db,
        pool,
        client,
    };
    let counts = write_labels(
        &labels_db,
        Mode::PerEvent,
        &[
            vec![label_at(&post, "spam", false, 2)],
            vec![label_at(&post, "spam", true, 3)],
        ],
    )
    .await;
    assert_eq!(counts, [(0, 0), (0, 0)]);
    assert_eq!(labels(&labels_db).await, ["spam@2024-01-05T00:00:00.000Z"]);
    // An actor without a stored seq takes the next event, and then guards.
    let a = did(1);
    let applied = write(
        &labels_db,
        Mode::BatchedTogether,
        &[
            account_at(&a, 8, true, None),
            account_at(&a, 7, false, None),
        ],
    )
    .await;
    assert_eq!(applied, [true, false]);
    assert_eq!(actor(&labels_db, &a).await.1, None);
}

async fn actor_row(client: &tokio_postgres::Client, did: &str) -> (Option<String>, Option<String>) {
    let row = client
        .query_one(
            r#"SELECT handle, "upstreamStatus" FROM actor WHERE did = $1"#,
            &[&did],
        )
        .await
        .expect("the actor row");
    (row.get(0), row.get(1))
}

/// Four writers at once (as four indexers of one group), each given every fourth event of one
/// DID and one label key, newest first (so older ones keep arriving late): the rows end at the
/// newest event whatever the interleaving, because the guard and the row lock are one statement.
#[tokio::test]
async fn concurrent_writers_end_at_the_newest_event() {
    let a = did(1);
    let post = format!("at://{}/app.bsky.feed.post/p1", did(1));
    for batched in [false, true] {
        let db = fresh().await;
        let writers = (0..4u32).map(|w| {
            let (db, a, post) = (&db, &a, &post);
            async move {
                let mut events = Vec::new();
                let mut entries = Vec::new();
                for n in (1..=40u32).rev().filter(|n| n % 4 == w) {
                    let status = match n {
                        40 => Some("suspended"),
                        n if n % 2 == 0 => Some("takendown"),
                        _ => None,
                    };
                    events.push(account_at(a, n.into(), status.is_none(), status));
                    events.push(identity_at(a, n.into(), Some(&format!("h{n}.example.com"))));
                    if n <= 28 {
                        entries.push(vec![label_at(post, "spam", n % 3 == 0 && n != 28, n)]);
                    }
                }
                let mode = if batched {
                    Mode::BatchedTogether
                } else {
                    Mode::PerEvent
                };
                for (chunk, labels) in events
                    .chunks(4)
                    .zip(entries.chunks(2).chain(std::iter::repeat([].as_slice())))
                {
                    write(db, mode, chunk).await;
                    write_labels(db, mode, labels).await;
                }
            }
        });
        futures::future::join_all(writers).await;
        assert_eq!(
            actor(&db, &a).await,
            (
                Some("h40.example.com".to_owned()),
                Some("suspended".to_owned())
            ),
            "batched: {batched}"
        );
        assert_eq!(
            labels(&db).await,
            ["spam@2024-01-28T00:00:00.000Z"],
            "batched: {batched}"
        );
    }
}

/// Through the stream, along both write paths: each late older record, account, identity,
/// label or negation is counted once in `indexer_stale_events_total` under its kind; newer
/// events after older ones, and labels on keys without state, are not stale.
#[tokio::test]
async fn each_stale_write_is_counted_under_its_kind() {
    use rsky_indexer::metrics::StaleKind;

    for path in ["batched", "per-event"] {
        let (_db, streams, indexer) = start_indexer(&[("INDEXER_WRITE_PATH", path)]).await;
        let (a, b, c, d) = (did(1), did(2), did(3), did(4));
        let post = |rev_n| {
            update(
                &d,
                "app.bsky.feed.post",
                "p1",
                &rev(rev_n),
                record_for("app.bsky.feed.post", 1),
            )
        };
        streams
            .xadd_live([
                identity_at(&a, 10, Some("new.test")),
                identity_at(&a, 5, Some("old.test")), // stale
                account_at(&b, 10, false, Some("takendown")),
                account_at(&b, 5, true, None), // stale
                account_at(&c, 1, false, Some("deactivated")),
                account_at(&c, 2, true, None), // newer: applied
                post(2),
                post(1), // stale
            ])
            .await;
        let uri = format!("at://{a}/app.bsky.feed.post/p1");
        streams
            .xadd_labels(vec![
                label_at(&uri, "spam", false, 2),
                label_at(&uri, "porn", true, 5),
            ])
            .await;
        streams
            .xadd_labels(vec![
                label_at(&uri, "spam", true, 1),  // stale negation
                label_at(&uri, "porn", false, 4), // stale add
                label_at(&uri, "gore", false, 1), // a key without state: applied
            ])
            .await;
        let m = indexer.metrics.clone();
        wait_until(
            std::time::Duration::from_secs(20),
            "every event and label processed",
            || {
                let done = m.events_processed.get() == 8 && m.labels_processed.get() == 5;
                async move { done }
            },
        )
        .await;
        let stale = |kind| indexer.metrics.stale_events[kind].get();
        assert_eq!(
            [
                stale(StaleKind::Record),
                stale(StaleKind::Account),
                stale(StaleKind::Identity),
                stale(StaleKind::Label)
            ],
            [1, 1, 1, 2],
            "{path}: record, account, identity, label"
        );
        indexer.stop().await;
    }
}
