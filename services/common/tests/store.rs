//! The Redis helpers against a real Redis (`TEST_REDIS_URL`), each test under its own prefix.

use std::time::Duration;

use rsky_common::store::{
    connect, read_cursor, stream_len, AtomicBatch, RedisTimeouts, StoreError,
};
use rsky_common::streams::Streams;
use rsky_testkit::support::{redis_addr, redis_url, unique_prefix, TcpProxy};

fn streams(test: &str) -> Streams {
    Streams::new(unique_prefix(&format!("common:{test}")))
}

#[tokio::test]
async fn a_batch_writes_its_entries_in_order_and_its_cursor() {
    let streams = streams("batch");
    let mut conn = connect(&redis_url(), RedisTimeouts::DEFAULT).await.unwrap();
    let cursor_key = streams.cursor_key(&streams.firehose_live, "relay.test");
    let mut batch = AtomicBatch::new();
    batch
        .xadd(&streams.firehose_live, &[("event", "one")])
        .xadd(&streams.firehose_live, &[("event", "two")])
        .set(&cursor_key, "42");
    assert_eq!(batch.len(), 2);
    let ids = batch.commit(&mut conn).await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1], "entry ids increase: {ids:?}");
    assert_eq!(
        stream_len(&mut conn, &streams.firehose_live).await.unwrap(),
        2
    );
    assert_eq!(
        read_cursor(&mut conn, &cursor_key)
            .await
            .unwrap()
            .as_deref(),
        Some("42")
    );
    let _: () = redis::cmd("DEL")
        .arg(&streams.firehose_live)
        .arg(&cursor_key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_stream_has_length_zero_and_a_missing_cursor_is_none() {
    let streams = streams("missing");
    let mut conn = connect(&redis_url(), RedisTimeouts::DEFAULT).await.unwrap();
    assert_eq!(stream_len(&mut conn, &streams.label_live).await.unwrap(), 0);
    assert_eq!(
        read_cursor(&mut conn, &streams.key("nothing"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_failed_command_names_itself_and_its_key() {
    let streams = streams("wrongtype");
    let mut conn = connect(&redis_url(), RedisTimeouts::DEFAULT).await.unwrap();
    let key = streams.key("a-string");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let err = stream_len(&mut conn, &key).await.unwrap_err();
    assert!(matches!(err, StoreError::Command { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("Redis XLEN {key} failed")),
        "{err}"
    );
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_redis_is_one_error_naming_the_url_without_its_password() {
    let err = match connect("redis://:hunter2@127.0.0.1:9/0", RedisTimeouts::DEFAULT).await {
        Err(err) => err,
        Ok(_) => panic!("nothing listens on port 9"),
    };
    let line = err.to_string();
    assert!(line.contains("redis://:***@127.0.0.1:9/0"), "{line}");
    assert!(!line.contains("hunter2"), "{line}");
}

/// Generous bound on the tests below: they pass when the call returns, never by its duration.
const RETURNS_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_is_an_error_naming_redis_not_a_hang() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let timeouts = RedisTimeouts {
        redis_connect_timeout: Duration::from_millis(200),
        redis_response_timeout: Duration::from_millis(200),
    };
    let url = format!("redis://127.0.0.1:{port}");
    let result = tokio::time::timeout(RETURNS_WITHIN, connect(&url, timeouts))
        .await
        .expect("connect returns instead of hanging");
    let err = match result {
        Err(err) => err.to_string(),
        Ok(_) => panic!("a server that never answers is not connected"),
    };
    assert!(err.contains("Redis"), "{err}");
    assert!(err.contains(&url), "{err}");
    silent.abort();
}

#[tokio::test]
async fn a_reply_slower_than_the_clients_default_timeout_is_waited_for() {
    // The proxy holds the reply to a command for 1.5 s, three times the redis crate's default
    // response timeout (500 ms), well within the default of the services (10 s).
    let proxy = TcpProxy::start(redis_addr()).await;
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let mut conn = connect(&url, RedisTimeouts::DEFAULT).await.unwrap();
    let streams = streams("slow-reply");
    proxy.stall();
    let resume = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        proxy.resume().await;
    };
    let (len, ()) = tokio::join!(stream_len(&mut conn, &streams.firehose_live), resume);
    assert_eq!(len.unwrap(), 0);
}
