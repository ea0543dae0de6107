//! End to end: the local stack runs with test traffic, a real Prometheus (Debian's package)
//! scrapes it every second, every target is up, every dashboard panel's query returns data,
//! every alert rule evaluates, and every counter the traffic drives has moved.

use std::time::{Duration, Instant};

use rsky_stack::dashboard::Dashboard;
use rsky_stack::local::{
    build_service_binaries, clear_redis_keys, drop_database, sibling_bin_dir, LocalStack,
    StackOptions,
};
use rsky_stack::promql::GrafanaVariables;
use serde_json::Value;

/// Counters that the stack's traffic moves: the relay's firehose (creates, updates, deletes,
/// collections outside app.bsky., identity and account events), listRepos of the PDS's accounts,
/// backfills that succeed and backfills that fail (bad signature, truncated CAR, 500, missing),
/// and the labeler's labels and negations.
const MOVED_BY_TRAFFIC: &[&str] = &[
    "ingester_firehose_events_total",
    "ingester_firehose_create_events_total",
    "ingester_firehose_update_events_total",
    "ingester_firehose_delete_events_total",
    "ingester_firehose_filtered_operations_total",
    "ingester_stream_events_total",
    "ingester_backfill_repos_fetched_total",
    "ingester_backfill_repos_written_total",
    "backfiller_repos_processed_total",
    "backfiller_repos_failed_total",
    "backfiller_repos_dead_lettered_total",
    "backfiller_records_extracted_total",
    "backfiller_retries_attempted_total",
    "backfiller_car_fetch_errors_total",
    "backfiller_car_parse_errors_total",
    "backfiller_verification_errors_total",
    "indexer_events_processed_total",
    "indexer_create_events_total",
    "indexer_update_events_total",
    "indexer_delete_events_total",
    "indexer_repo_events_total",
    "indexer_account_events_total",
    "indexer_identity_events_total",
    "indexer_db_writes_total",
    "indexer_post_events_total",
    "indexer_like_events_total",
    "indexer_repost_events_total",
    "indexer_follow_events_total",
    "indexer_profile_events_total",
    "ingester_labeler_events_total",
    "ingester_labels_written_total",
    "indexer_labels_processed_total",
    "indexer_labels_added_total",
    "indexer_labels_removed_total",
];

struct Prometheus {
    url: String,
    client: reqwest::Client,
}

impl Prometheus {
    /// An instant query's result vector; an error answer is a panic naming the query.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let resp = self
            .client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("query {expr}: {e}"));
        let body: Value = resp.json().await.expect("Prometheus answers JSON");
        assert_eq!(body["status"], "success", "query {expr}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn get(&self, path: &str) -> Value {
        self.get_with(path, &[]).await
    }

    async fn get_with(&self, path: &str, query: &[(&str, &str)]) -> Value {
        self.client
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .expect("Prometheus answers JSON")
    }
}

/// `label_values(SELECTOR, LABEL)` as `(SELECTOR, LABEL)`.
fn parse_label_values(query: &str) -> Option<(String, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim().to_owned(), label.trim().to_owned()))
}

fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(()) => return,
            Err(why) if Instant::now() > deadline => panic!("{what} within {within:?}: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn check_stack(stack: &LocalStack) {
    let prom = Prometheus {
        url: stack.prometheus_url().to_owned(),
        client: reqwest::Client::new(),
    };
    let targets = stack.targets().to_vec();

    // Every target up (the first scrape comes within a few seconds).
    eventually(Duration::from_secs(20), "every target up", || async {
        let up = prom.query("up").await;
        let healthy: Vec<String> = up
            .iter()
            .filter(|s| value(s) == 1.0)
            .map(|s| {
                s["metric"]["instance"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let missing: Vec<_> = targets
            .iter()
            .filter(|t| !healthy.contains(&t.instance))
            .map(|t| format!("{} ({})", t.name, t.instance))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("not up: {missing:?}"))
        }
    })
    .await;

    // Every counter the traffic drives has moved.
    eventually(Duration::from_secs(120), "every counter moved", || async {
        let mut still = Vec::new();
        for metric in MOVED_BY_TRAFFIC {
            let result = prom.query(&format!("sum({metric})")).await;
            if result.first().map(value).unwrap_or(0.0) <= 0.0 {
                still.push(*metric);
            }
        }
        if still.is_empty() {
            Ok(())
        } else {
            Err(format!("still at zero: {still:?}"))
        }
    })
    .await;
    let connections = prom.query("sum(ingester_websocket_connections)").await;
    assert!(
        connections.first().map(value).unwrap_or(0.0) >= 1.0,
        "the ingester has no websocket connection: {connections:?}"
    );

    // Every panel's query, as Grafana would send it with "All" selected, returns data.
    let vars = GrafanaVariables {
        rate_interval: "10s".to_owned(),
        job: ".*".to_owned(),
        instance: ".*".to_owned(),
    };
    let queries = Dashboard::project().unwrap().queries().unwrap();
    let mut empty = Vec::new();
    for q in &queries {
        let expr = vars.substitute(&q.expr);
        if prom.query(&expr).await.is_empty() {
            empty.push(format!("{} / {}: {expr}", q.row, q.panel));
        }
    }
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );

    // The dashboard's job and instance variables list the stack's jobs and instances.
    for (name, query) in Dashboard::project().unwrap().variable_queries() {
        let (selector, label) = parse_label_values(&vars.substitute(&query))
            .unwrap_or_else(|| panic!("variable {name}: not a label_values() query: {query}"));
        let values = prom
            .get_with(
                &format!("/api/v1/label/{label}/values"),
                &[("match[]", &selector)],
            )
            .await;
        let values: Vec<&str> = values["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let expected: Vec<String> = targets
            .iter()
            .filter(|t| t.job != "prometheus")
            .map(|t| {
                if label == "job" {
                    t.job.clone()
                } else {
                    t.instance.clone()
                }
            })
            .collect();
        for e in &expected {
            assert!(
                values.contains(&e.as_str()),
                "variable {name} lacks {e}: {values:?}"
            );
        }
    }

    // Prometheus loaded every alert and recording rule of the project and evaluates it without
    // error.
    let rules = prom.get("/api/v1/rules").await;
    let mut loaded = 0;
    for group in rules["data"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            loaded += 1;
            assert_eq!(
                rule["health"], "ok",
                "rule {}: {}",
                rule["name"], rule["lastError"]
            );
        }
    }
    assert_eq!(
        loaded,
        rsky_stack::rules::project_alerts().unwrap().len()
            + rsky_stack::rules::project_recording_rules().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stack_is_scraped_and_every_panel_has_data() {
    let bin_dir = sibling_bin_dir().expect("the test executable's directory");
    build_service_binaries(&bin_dir).unwrap_or_else(|e| panic!("{e}"));

    let admin_url = rsky_testkit::support::pg_admin_url();
    let id = std::process::id();
    let work_dir = std::env::temp_dir().join(format!("rsky-stack-e2e-{id}"));
    let mut options = StackOptions::demo(bin_dir, work_dir.clone());
    options.redis_url = rsky_testkit::support::redis_url();
    options.database_url = admin_url.clone();
    options.database = format!("rsky_stack_e2e_{id}");
    options.key_prefix = format!("rsky-stack-e2e-{id}:");
    options.scrape_interval = Duration::from_secs(1);
    options.prometheus_addr = "127.0.0.1:0".parse().unwrap();
    options.relay_rate = 100;
    options.relay_accounts = 200;
    options.backfill_accounts = 5;
    options.records_per_repo = 20;

    let stack = LocalStack::start(options.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Run the checks in a task so that the stack is stopped and cleaned up even if one fails.
    let outcome = {
        let stack = &stack;
        futures_lite_catch(check_stack(stack)).await
    };
    let stopped = stack.stop().await;
    let _ = drop_database(&admin_url, &options.database).await;
    let _ = clear_redis_keys(&options.redis_url, &options.key_prefix).await;
    if outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    for (name, status) in stopped {
        assert_eq!(
            status, "exit status: 0",
            "{name} did not exit cleanly on SIGTERM"
        );
    }
}

/// Awaits `fut`, turning a panic into an `Err` (so that clean-up still runs).
async fn futures_lite_catch<F: std::future::Future<Output = ()>>(
    fut: F,
) -> Result<(), Box<dyn std::any::Any + Send>> {
    use std::panic::AssertUnwindSafe;
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(())) => std::task::Poll::Ready(Ok(())),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    })
    .await
}
