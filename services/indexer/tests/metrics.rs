//! The `/metrics` endpoint: every metric of the spec present at zero on the first scrape, and
//! `promtool check metrics` clean before and after work.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rsky_indexer::IndexerMetrics;
use rsky_metrics_runtime::{MetricsServer, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The indexer's metric names from the spec (dashboards and alerts use them).
const SPEC_COUNTERS: [&str; 21] = [
    "indexer_events_processed_total",
    "indexer_create_events_total",
    "indexer_update_events_total",
    "indexer_delete_events_total",
    "indexer_repo_events_total",
    "indexer_account_events_total",
    "indexer_identity_events_total",
    "indexer_db_writes_total",
    "indexer_errors_total",
    "indexer_expected_errors_total",
    "indexer_unexpected_errors_total",
    "indexer_post_events_total",
    "indexer_like_events_total",
    "indexer_repost_events_total",
    "indexer_follow_events_total",
    "indexer_block_events_total",
    "indexer_profile_events_total",
    "indexer_labels_processed_total",
    "indexer_labels_added_total",
    "indexer_labels_removed_total",
    "indexer_ack_failures_total",
];
const SPEC_GAUGES: [&str; 2] = ["indexer_pending_messages", "indexer_active_tasks"];

async fn scrape(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

fn promtool_check(body: &str) -> (bool, String) {
    let mut child = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.trim().is_empty(), text)
}

fn value_of(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.split(' ').next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn every_spec_metric_is_on_the_first_scrape_at_zero_and_promtool_is_clean() {
    let registry = Registry::new();
    let metrics = Arc::new(IndexerMetrics::register(&registry).unwrap());
    let server = MetricsServer::for_set::<IndexerMetrics>()
        .registry(registry.clone())
        .listen("127.0.0.1:0".parse().unwrap())
        .version("test")
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let server = server.spawn();
    let body = scrape(addr).await;
    for name in SPEC_COUNTERS.iter().chain(SPEC_GAUGES.iter()) {
        assert_eq!(
            value_of(&body, name),
            Some(0.0),
            "{name} missing or not zero"
        );
    }
    for desc in IndexerMetrics::METRICS {
        assert!(
            body.contains(&format!("# TYPE {} ", desc.name)),
            "{}",
            desc.name
        );
    }
    let (clean, report) = promtool_check(&body);
    assert!(clean, "promtool: {report}");

    // After real work (including an error and labels) the scrape is still clean.
    let db = TestDb::create().await;
    let streams = TestStreams::new();
    let indexer =
        Running::start_with(config(&db.url(), &streams, &[]), metrics.clone(), registry).await;
    streams
        .xadd_event(
            "firehose_live",
            &create(
                &did(1),
                "app.bsky.feed.post",
                "p1",
                &rev(1),
                record_for("app.bsky.feed.post", 1),
            ),
        )
        .await;
    streams.xadd_raw("firehose_live", "event", "not json").await;
    streams
        .xadd_labels(vec![label("did:plc:l", &did(1), "spam", false)])
        .await;
    let m = metrics.clone();
    wait_until(Duration::from_secs(20), "work done", || async {
        m.events_processed.get() == 1 && m.expected_errors.get() == 1 && m.labels_added.get() == 1
    })
    .await;
    let body = scrape(addr).await;
    assert_eq!(value_of(&body, "indexer_events_processed_total"), Some(1.0));
    assert_eq!(value_of(&body, "indexer_labels_added_total"), Some(1.0));
    assert!(value_of(&body, "indexer_db_pool_connections").unwrap_or(0.0) >= 1.0);
    let (clean, report) = promtool_check(&body);
    assert!(clean, "promtool: {report}");
    indexer.stop().await;
    server.shutdown().await.unwrap();
}
