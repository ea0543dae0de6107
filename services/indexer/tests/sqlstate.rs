//! The SQLSTATE table (`rsky_indexer::db::SQLSTATES`) against the real server: each code the
//! server can be made to answer is provoked and classified; the indexer pauses (never
//! dead-letters) on a read-only database, and a held lock times out instead of hanging.

use std::time::Duration;

use rsky_indexer::db::{self, DbError, FailureClass, Session};
use rsky_indexer::metrics::ErrorKind;
use rsky_testkit::indexer::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// A connection string for `role` on the test database.
fn url_as(db: &TestDb, role: &str) -> String {
    let addr = pg_addr();
    format!(
        "host={} port={} user={role} dbname={}",
        addr.ip(),
        addr.port(),
        db.name
    )
}

/// Runs `sql` through a pool with `session` and returns its error, classified.
async fn fail(url: &str, session: Session, sql: &str) -> (String, FailureClass) {
    let pool = db::pool_with(url, 1, &session).expect("pool");
    let result: Result<(), DbError> = async {
        let client = pool.get().await?;
        client.batch_execute(sql).await?;
        Ok(())
    }
    .await;
    let err = result.expect_err(sql);
    let code = err
        .sqlstate()
        .unwrap_or_else(|| panic!("{sql}: no SQLSTATE: {err}"))
        .to_owned();
    (code, err.class())
}

fn quick() -> Session {
    Session {
        statement_timeout: Duration::from_millis(200),
        lock_timeout: Duration::from_millis(200),
        ..Session::default()
    }
}

#[tokio::test]
async fn codes_the_server_answers_are_classified_by_the_table() {
    use FailureClass::*;
    let db = test_db().await;
    let url = db.url();
    let setup = db.client().await;
    setup
        .batch_execute(
            "CREATE TABLE t (a int PRIMARY KEY, s text);
             CREATE TABLE big (s text); CREATE INDEX ON big (s);
             CREATE TABLE gone (a int);",
        )
        .await
        .unwrap();
    let cases: [(&str, &str, FailureClass); 8] = [
        ("22P02", "SELECT 'x'::int", Expected),
        ("22001", "CREATE TEMP TABLE v (s varchar(1)); INSERT INTO v VALUES ('ab')", Expected),
        ("23505", "INSERT INTO t VALUES (7, 'a'); INSERT INTO t VALUES (7, 'b')", Unavailable),
        ("21000", "INSERT INTO t VALUES (8, 'a'), (8, 'b') ON CONFLICT (a) DO UPDATE SET s = excluded.s", Unexpected),
        ("P0001", "DO $$ BEGIN RAISE EXCEPTION 'poison'; END $$", Unexpected),
        ("54000", "INSERT INTO big SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 400)", Unexpected),
        ("42P01", "DROP TABLE gone; INSERT INTO gone VALUES (1)", Unavailable),
        ("57014", "SELECT pg_sleep(2)", Unavailable),
    ];
    for (code, sql, class) in cases {
        assert_eq!(
            fail(&url, quick(), sql).await,
            (code.to_owned(), class),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn a_read_only_database_a_missing_one_and_missing_privileges_are_systemic() {
    let db = test_db().await;
    let pool = migrated_pool(&db).await;
    drop(pool);
    let admin = db.client().await;
    let role = format!("{}_r", db.name);
    let nologin = format!("{}_n", db.name);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; CREATE ROLE {nologin} NOLOGIN"
        ))
        .await
        .unwrap();
    let insert =
        "INSERT INTO label (src, uri, cid, val, neg, cts) VALUES ('a', 'b', '', 'c', false, 'd')";
    let results = [
        fail(&url_as(&db, &role), quick(), insert).await,
        fail(&url_as(&db, &nologin), quick(), "SELECT 1").await,
        fail(&format!("{}_missing", db.url()), quick(), "SELECT 1").await,
    ];
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            db.name
        ))
        .await
        .unwrap();
    let read_only = fail(&db.url(), quick(), insert).await;
    admin
        .batch_execute(&format!("DROP ROLE {role}; DROP ROLE {nologin}"))
        .await
        .unwrap();
    assert_eq!(
        results,
        [
            ("42501".to_owned(), FailureClass::Unavailable),
            ("28000".to_owned(), FailureClass::Unavailable),
            ("3D000".to_owned(), FailureClass::Unavailable),
        ]
    );
    assert_eq!(read_only, ("25006".to_owned(), FailureClass::Unavailable));
}

async fn end_other_sessions(admin: &tokio_postgres::Client, db: &TestDb) {
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name
        ))
        .await
        .unwrap();
}

fn post(n: u64) -> rsky_common::event::StreamEvent {
    create(
        &did(n),
        "app.bsky.feed.post",
        &rev(n),
        &rev(n),
        json!({"text": "p", "createdAt": "t"}),
    )
}

#[tokio::test]
async fn on_a_read_only_database_the_indexer_pauses_and_dead_letters_nothing() {
    let db = test_db().await;
    let streams = TestStreams::new();
    // Started on a writable database (its migrations write), then the database turns
    // read-only (as a failover to a standby does) and its sessions are ended.
    let indexer = Running::start(config(
        &db.url(),
        &streams,
        &[
            ("STREAM_MAX_DELIVERIES", "2"),
            ("STREAM_CLAIM_INTERVAL_MS", "50"),
        ],
    ))
    .await;
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            db.name
        ))
        .await
        .unwrap();
    end_other_sessions(&admin, &db).await;
    streams.xadd_live([post(1)]).await;
    let m = indexer.metrics.clone();
    wait_until(WAIT, "three failed writes on the standby", || async {
        m.errors[ErrorKind::DatabaseUnavailable].get() >= 3
    })
    .await;
    assert_eq!(
        m.dead_lettered.get(),
        0,
        "a standby is not the entry's fault"
    );
    assert_eq!(m.errors[ErrorKind::Database].get(), 0);
    assert_eq!(streams.xlen("firehose_live_dlq").await, 0);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = off",
            db.name
        ))
        .await
        .unwrap();
    // The setting is read when a session starts: the pooled ones are ended.
    end_other_sessions(&admin, &db).await;
    wait_until(
        WAIT,
        "the event indexed once the database is writable",
        || async { m.events_processed.get() == 1 && streams.xlen("firehose_live").await == 0 },
    )
    .await;
    indexer.stop().await;
}

#[tokio::test]
async fn a_held_lock_times_out_is_classified_and_shutdown_completes() {
    let db = test_db().await;
    let streams = TestStreams::new();
    drop(migrated_pool(&db).await);
    let indexer = Running::start(config(
        &db.url(),
        &streams,
        &[("DB_LOCK_TIMEOUT_MS", "300")],
    ))
    .await;
    // Another session holds the post table.
    let mut holder = db.client().await;
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE post IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    streams.xadd_live([post(1)]).await;
    let m = indexer.metrics.clone();
    wait_until(
        WAIT,
        "the write timed out on the lock and was classified",
        || async { m.errors[ErrorKind::DatabaseUnavailable].get() >= 1 },
    )
    .await;
    assert_eq!(m.events_processed.get(), 0);
    // Shutdown completes while the lock is still held (stop() allows 20 s).
    let started = std::time::Instant::now();
    indexer.stop().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    tx.rollback().await.unwrap();
    assert_eq!(
        streams.pending("firehose_live", "firehose_group").await,
        1,
        "left pending"
    );
}
