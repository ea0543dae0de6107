//! The `backfiller` binary: `--help`, `--version`, a bad value, `health`, JSON logs and SIGTERM.

use std::time::Duration;

use rsky_testkit::binary;
use rsky_testkit::support::{delete_prefix, redis, redis_url, unique_prefix, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_backfiller");

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    binary::assert_help_lists(
        BIN,
        &[
            ("REDIS_URL", Some("redis://127.0.0.1:6379")),
            ("BACKFILLER_CONSUMER", None),
            ("BACKFILLER_CONCURRENCY", Some("50")),
            ("BACKFILLER_HIGH_WATER_MARK", Some("500000")),
            ("BACKFILLER_PLC_URL", Some("https://plc.directory")),
            ("BACKFILLER_DID_WEB_INSECURE", Some("false")),
            ("REDIS_KEY_PREFIX", None),
            ("BACKFILLER_FETCH_TIMEOUT_MS", Some("120000")),
            ("BACKFILLER_RESOLVE_TIMEOUT_MS", Some("10000")),
            ("BACKFILLER_DID_CACHE_TTL_SECONDS", Some("86400")),
            ("STREAM_CLAIM_IDLE_MS", Some("300000")),
            ("STREAM_RETRY_BACKOFF_MS", Some("500")),
            ("STREAM_RETRY_BACKOFF_MAX_MS", Some("30000")),
            ("STREAM_BLOCK_MS", Some("1000")),
            ("BACKPRESSURE_POLL_MS", Some("1000")),
            ("STREAM_TRIM_INTERVAL_MS", Some("60000")),
            ("STREAM_SAMPLE_INTERVAL_MS", Some("5000")),
            ("STREAM_MAX_DELIVERIES", Some("5")),
            ("STREAM_CLAIM_INTERVAL_MS", Some("30000")),
            ("METRICS_ADDR", Some("0.0.0.0")),
            ("METRICS_PORT", Some("9090")),
            ("LOG_FORMAT", Some("text")),
            ("DEAD_LETTER_MAX_LEN", Some("100000")),
            ("REDIS_CONNECT_TIMEOUT_MS", Some("5000")),
            ("REDIS_RESPONSE_TIMEOUT_MS", Some("10000")),
            ("METRICS_HEADER_TIMEOUT_MS", Some("5000")),
            ("METRICS_IDLE_TIMEOUT_MS", Some("75000")),
            ("METRICS_REQUEST_TIMEOUT_MS", Some("30000")),
            ("METRICS_MAX_CONNECTIONS", Some("64")),
        ],
    );
}

#[test]
fn version_prints_the_package_version() {
    binary::assert_version(BIN, "backfiller", env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_bad_value_exits_2_naming_the_variable() {
    binary::assert_bad_value(
        BIN,
        "BACKFILLER_PLC_URL",
        "plc.directory",
        r#"backfiller: invalid BACKFILLER_PLC_URL="plc.directory": expected an http:// or https:// URL such as https://plc.directory"#,
    );
    binary::assert_bad_value(
        BIN,
        "LOG_FORMAT",
        "yaml",
        r#"backfiller: invalid LOG_FORMAT="yaml": expected one of text | json"#,
    );
}

#[tokio::test]
async fn health_answers_while_running_and_sigterm_exits_zero_with_json_logs() {
    let prefix = unique_prefix("backfiller-binary");
    binary::assert_serves_health_and_stops_on_sigterm(
        BIN,
        "backfiller",
        &[
            ("REDIS_URL", redis_url()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("STREAM_BLOCK_MS", "100".to_owned()),
        ],
    )
    .await;
    delete_prefix(&mut redis().await, &prefix).await;
}

/// The child process, killed if the test fails before it stops it.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn the_metrics_server_holds_at_most_metrics_max_connections() {
    let prefix = unique_prefix("backfiller-metrics-limits");
    let port = binary::free_port();
    let child = std::process::Command::new(BIN)
        .env("REDIS_URL", redis_url())
        .env("REDIS_KEY_PREFIX", &prefix)
        .env("STREAM_BLOCK_MS", "100")
        .env("METRICS_ADDR", "127.0.0.1")
        .env("METRICS_PORT", port.to_string())
        .env("METRICS_MAX_CONNECTIONS", "1")
        // The silent connection below is held, not closed for its missing request head.
        .env("METRICS_HEADER_TIMEOUT_MS", "600000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("start {BIN}: {err}"));
    let mut running = Running(Some(child));
    binary::wait_healthy(BIN, port, Duration::from_secs(30)).await;
    let silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // The server has taken the silent connection once a second one is refused; before that,
    // a probe may still be served.
    wait_until(
        Duration::from_secs(10),
        "health refused while one connection is held",
        || async {
            let probe = tokio::task::spawn_blocking(move || binary::health(BIN, port))
                .await
                .unwrap();
            probe.status.code() == Some(1)
                && String::from_utf8_lossy(&probe.stderr).contains("closed without an answer")
        },
    )
    .await;
    drop(silent);
    binary::wait_healthy(BIN, port, Duration::from_secs(30)).await;
    let child = running.0.take().unwrap_or_else(|| unreachable!());
    let output = binary::terminate(child, Duration::from_secs(20)).await;
    assert_eq!(output.status.code(), Some(0));
    delete_prefix(&mut redis().await, &prefix).await;
}
