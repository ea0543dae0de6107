//! The `ingester` binary: its scrape passes `promtool check metrics`, SIGTERM flushes the batch
//! in hand and exits 0, and a bad variable stops it with one line naming the variable.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use rsky_common::streams::{cursor_key, Streams};
use rsky_metrics_runtime::testing;
use rsky_testkit::binary::{self, free_port};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_ingester");

async fn scrape(port: u16) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
}

#[tokio::test]
async fn the_scrape_passes_promtool_and_sigterm_flushes_then_exits_zero() {
    let relay = relay_with_identities(5).await;
    let prefix = unique_prefix("binary");
    let port = free_port();
    let child = Command::new(BIN)
        .env("REDIS_URL", redis_url())
        .env("REDIS_KEY_PREFIX", &prefix)
        .env("INGESTER_MODE", "firehose")
        .env("INGESTER_RELAY_HOSTS", relay.ws_url())
        .env("INGESTER_BATCH_TIMEOUT_MS", "600000")
        .env("METRICS_ADDR", "127.0.0.1")
        .env("METRICS_PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    wait_until(
        Duration::from_secs(20),
        "5 events in memory on /metrics",
        || async {
            let body = scrape(port).await.unwrap_or_default();
            sample(&body, "ingester_events_in_memory") == Some(5.0)
        },
    )
    .await;
    let body = scrape(port).await.unwrap();
    testing::assert_promtool_clean(&body);
    assert!(body.contains("ingester_build_info{version="));

    let status = binary::terminate(child, Duration::from_secs(20))
        .await
        .status;
    assert_eq!(status.code(), Some(0));
    let streams = Streams::new(&prefix);
    let mut conn = redis().await;
    assert_eq!(
        entries(&mut conn, &streams.firehose_live, "event")
            .await
            .len(),
        5
    );
    let cursor = rsky_common::store::read_cursor(
        &mut conn,
        &cursor_key(&streams.firehose_live, &relay.addr().to_string()),
    )
    .await
    .unwrap();
    assert_eq!(cursor.as_deref(), Some("5"));
    delete_prefix(&mut conn, &prefix).await;
}

#[test]
fn a_bad_variable_stops_the_ingester_with_one_line_naming_it() {
    binary::assert_bad_value(
        BIN,
        "INGESTER_BATCH_SIZE",
        "lots",
        r#"ingester: invalid INGESTER_BATCH_SIZE="lots": expected a non-negative whole number"#,
    );
    binary::assert_bad_value(
        BIN,
        "INGESTER_RECONNECT_MAX_MS",
        "10",
        r#"ingester: invalid INGESTER_RECONNECT_MAX_MS="10": must be at least INGESTER_RECONNECT_MIN_MS (1000)"#,
    );
}

#[test]
fn the_redis_timeouts_are_still_read_under_their_ingester_names() {
    // Renamed to the common REDIS_*_TIMEOUT_MS; the value of the old name is the new one's.
    binary::assert_bad_value(
        BIN,
        "INGESTER_REDIS_RESPONSE_TIMEOUT_MS",
        "0",
        r#"ingester: invalid REDIS_RESPONSE_TIMEOUT_MS="0": must be at least 1"#,
    );
    binary::assert_bad_value(
        BIN,
        "INGESTER_REDIS_CONNECT_TIMEOUT_MS",
        "soon",
        r#"ingester: invalid REDIS_CONNECT_TIMEOUT_MS="soon": expected a non-negative whole number"#,
    );
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    binary::assert_help_lists(
        BIN,
        &[
            ("REDIS_URL", Some("redis://127.0.0.1:6379")),
            ("INGESTER_RELAY_HOSTS", Some("bsky.network")),
            ("INGESTER_LABELER_HOSTS", None),
            ("INGESTER_MODE", Some("all")),
            ("INGESTER_BATCH_SIZE", Some("500")),
            ("INGESTER_BATCH_TIMEOUT_MS", Some("1000")),
            ("INGESTER_HIGH_WATER_MARK", Some("100000")),
            ("BACKPRESSURE_POLL_MS", Some("1000")),
            ("INGESTER_CHANNEL_CAPACITY", Some("1000")),
            ("INGESTER_SAMPLE_INTERVAL_MS", Some("10000")),
            ("INGESTER_RECONNECT_MIN_MS", Some("1000")),
            ("INGESTER_RECONNECT_MAX_MS", Some("30000")),
            ("INGESTER_WS_CONNECT_TIMEOUT_MS", Some("10000")),
            ("INGESTER_WS_IDLE_TIMEOUT_MS", Some("30000")),
            ("INGESTER_WS_PING_INTERVAL_MS", Some("10000")),
            ("REDIS_CONNECT_TIMEOUT_MS", Some("5000")),
            ("REDIS_RESPONSE_TIMEOUT_MS", Some("10000")),
            ("INGESTER_BACKFILL_HIGH_WATER_MARK", Some("100000")),
            ("INGESTER_LIST_REPOS_LIMIT", Some("1000")),
            ("REDIS_KEY_PREFIX", None),
            ("METRICS_ADDR", Some("0.0.0.0")),
            ("METRICS_PORT", Some("4100")),
            ("LOG_FORMAT", Some("text")),
        ],
    );
}

#[test]
fn version_prints_the_package_version() {
    binary::assert_version(BIN, "ingester", env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn health_answers_while_running_and_sigterm_exits_zero_with_json_logs() {
    let relay = relay_with_identities(1).await;
    let prefix = unique_prefix("binary-health");
    binary::assert_serves_health_and_stops_on_sigterm(
        BIN,
        "ingester",
        &[
            ("REDIS_URL", redis_url()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("INGESTER_MODE", "firehose".to_owned()),
            ("INGESTER_RELAY_HOSTS", relay.ws_url()),
        ],
    )
    .await;
    delete_prefix(&mut redis().await, &prefix).await;
}
