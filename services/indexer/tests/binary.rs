//! The `indexer` binary: `--help`, `--version`, a bad value, `health`, JSON logs and SIGTERM.

use rsky_testkit::binary;
use rsky_testkit::indexer::*;

const BIN: &str = env!("CARGO_BIN_EXE_indexer");

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    binary::assert_help_lists(
        BIN,
        &[
            ("REDIS_URL", Some("redis://127.0.0.1:6379")),
            (
                "DATABASE_URL",
                Some("postgres://postgres@127.0.0.1:5432/bsky"),
            ),
            ("REDIS_KEY_PREFIX", None),
            ("INDEXER_STREAMS", Some("firehose_live,firehose_backfill")),
            ("INDEXER_LABEL_STREAM", Some("label_live")),
            ("INDEXER_GROUP", Some("firehose_group")),
            ("INDEXER_LABEL_GROUP", Some("label_group")),
            ("INDEXER_CONSUMER", None),
            ("INDEXER_MODE", Some("all")),
            ("INDEXER_CONCURRENCY", Some("32")),
            ("INDEXER_BATCH_SIZE", Some("500")),
            ("DB_POOL_MAX_SIZE", Some("20")),
            ("STREAM_MAX_DELIVERIES", Some("5")),
            ("INDEXER_DEAD_LETTER_SUFFIX", Some("_dlq")),
            ("STREAM_BLOCK_MS", Some("1000")),
            ("STREAM_CLAIM_IDLE_MS", Some("300000")),
            ("STREAM_CLAIM_INTERVAL_MS", Some("30000")),
            ("STREAM_TRIM_INTERVAL_MS", Some("60000")),
            ("STREAM_SAMPLE_INTERVAL_MS", Some("5000")),
            ("STREAM_RETRY_BACKOFF_MS", Some("500")),
            ("INDEXER_WRITE_PATH", Some("batched")),
            ("DB_STATEMENT_TIMEOUT_MS", Some("30000")),
            ("DB_LOCK_TIMEOUT_MS", Some("10000")),
            ("DB_KEEPALIVE_IDLE_S", Some("30")),
            ("STREAM_RETRY_BACKOFF_MAX_MS", Some("30000")),
            ("BACKPRESSURE_POLL_MS", Some("1000")),
            ("DEAD_LETTER_MAX_LEN", Some("100000")),
            ("METRICS_ADDR", Some("0.0.0.0")),
            ("METRICS_PORT", Some("9090")),
            ("LOG_FORMAT", Some("text")),
        ],
    );
}

#[test]
fn version_prints_the_package_version() {
    binary::assert_version(BIN, "indexer", env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_bad_value_exits_2_naming_the_variable() {
    binary::assert_bad_value(
        BIN,
        "INDEXER_MODE",
        "both",
        r#"indexer: invalid INDEXER_MODE="both": expected one of all | stream | label"#,
    );
    binary::assert_bad_value(
        BIN,
        "METRICS_PORT",
        "0",
        r#"indexer: invalid METRICS_PORT="0": must be at least 1"#,
    );
}

#[tokio::test]
async fn health_answers_while_running_and_sigterm_drains_and_exits_zero_with_json_logs() {
    let db = test_db().await;
    let streams = TestStreams::new();
    binary::assert_serves_health_and_stops_on_sigterm(
        BIN,
        "indexer",
        &[
            ("REDIS_URL", redis_url()),
            ("DATABASE_URL", db.url()),
            ("REDIS_KEY_PREFIX", streams.prefix.clone()),
            ("INDEXER_CONSUMER", "binary-test".to_owned()),
            ("STREAM_BLOCK_MS", "100".to_owned()),
        ],
    )
    .await;
}
