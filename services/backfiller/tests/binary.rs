//! The `backfiller` binary: `--help`, `--version`, a bad value, `health`, JSON logs and SIGTERM.

use rsky_testkit::binary;
use rsky_testkit::support::{delete_prefix, redis, redis_url, unique_prefix};

const BIN: &str = env!("CARGO_BIN_EXE_backfiller");

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    binary::assert_help_lists(
        BIN,
        &[
            ("REDIS_URL", Some("redis://127.0.0.1:6379")),
            ("BACKFILLER_CONSUMER", None),
            ("BACKFILLER_CONCURRENCY", Some("50")),
            ("BACKFILLER_MAX_RETRIES", Some("3")),
            ("BACKFILLER_HIGH_WATER_MARK", Some("500000")),
            ("BACKFILLER_PLC_URL", Some("https://plc.directory")),
            ("BACKFILLER_DID_WEB_INSECURE", Some("false")),
            ("REDIS_KEY_PREFIX", None),
            ("BACKFILLER_FETCH_TIMEOUT_MS", Some("120000")),
            ("BACKFILLER_RESOLVE_TIMEOUT_MS", Some("10000")),
            ("BACKFILLER_DID_CACHE_TTL_SECONDS", Some("86400")),
            ("BACKFILLER_RECLAIM_IDLE_MS", Some("300000")),
            ("BACKFILLER_RETRY_BACKOFF_MS", Some("1000")),
            ("BACKFILLER_RETRY_BACKOFF_MAX_MS", Some("60000")),
            ("BACKFILLER_READ_BLOCK_MS", Some("5000")),
            ("BACKFILLER_BACKPRESSURE_POLL_MS", Some("1000")),
            ("BACKFILLER_TRIM_INTERVAL_MS", Some("60000")),
            ("BACKFILLER_SAMPLE_INTERVAL_MS", Some("10000")),
            ("METRICS_ADDR", Some("0.0.0.0")),
            ("METRICS_PORT", Some("9090")),
            ("LOG_FORMAT", Some("text")),
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
            ("BACKFILLER_READ_BLOCK_MS", "100".to_owned()),
        ],
    )
    .await;
    delete_prefix(&mut redis().await, &prefix).await;
}
