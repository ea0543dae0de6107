//! The `/metrics` endpoint: every metric of the spec present at zero on the first scrape, and
//! `promtool check metrics` clean before and after work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsky_indexer::metrics::{ErrorKind, RecordAction, RecordCollection, StaleKind};
use rsky_indexer::IndexerMetrics;
use rsky_metrics_runtime::testing::assert_promtool_clean;
use rsky_metrics_runtime::{LabelValue, MetricsServer, Registry};
use rsky_testkit::indexer::*;
use rsky_testkit::spec::INDEXER_METRICS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// One series (`name` with its labels, or unlabeled), or the sum over every series of a
/// labeled family, as PromQL's `sum()` sees it (`indexer_errors_total` is labeled by `kind`).
fn value_of(body: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let family = series.split_once('{').map_or(series, |(family, _)| family);
        if series == name || (!name.contains('{') && family == name) {
            if let Ok(value) = value.parse::<f64>() {
                *total.get_or_insert(0.0) += value;
            }
        }
    }
    total
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
    for name in INDEXER_METRICS {
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
    let kinds = ["invalid_input", "database_unavailable", "database", "panic"];
    assert_eq!(ErrorKind::VALUES, kinds);
    for kind in kinds {
        let series = format!("indexer_errors_total{{kind=\"{kind}\"}}");
        assert_eq!(value_of(&body, &series), Some(0.0), "{series} at zero");
    }
    let stale_kinds = ["record", "account", "identity", "label"];
    assert_eq!(StaleKind::VALUES, stale_kinds);
    for kind in stale_kinds {
        let series = format!("indexer_stale_events_total{{kind=\"{kind}\"}}");
        assert_eq!(value_of(&body, &series), Some(0.0), "{series} at zero");
    }
    for collection in RecordCollection::VALUES {
        for action in RecordAction::VALUES {
            let series = format!(
                "indexer_records_by_collection_total{{collection=\"{collection}\",action=\"{action}\"}}"
            );
            assert_eq!(value_of(&body, &series), Some(0.0), "{series} at zero");
        }
    }
    assert_promtool_clean(&body);

    // After real work (including an error and labels) the scrape is still clean.
    let db = test_db().await;
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
    // The bad entry moved the invalid_input kind; the post moved its collection and action.
    assert_eq!(
        value_of(&body, "indexer_errors_total{kind=\"invalid_input\"}"),
        Some(1.0)
    );
    assert_eq!(value_of(&body, "indexer_errors_total"), Some(1.0));
    assert_eq!(
        value_of(
            &body,
            "indexer_records_by_collection_total{collection=\"app.bsky.feed.post\",action=\"create\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value_of(&body, "indexer_records_by_collection_total"),
        Some(1.0)
    );
    assert!(value_of(&body, "indexer_db_pool_connections").unwrap_or(0.0) >= 1.0);
    assert_promtool_clean(&body);
    indexer.stop().await;
    server.shutdown().await.unwrap();
}
