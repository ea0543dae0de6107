//! Test support: an ingester on its own registry and its own Redis key prefix, and readers for
//! what it wrote.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use rsky_common::config::Settings;
use rsky_common::shutdown::Shutdown;
use rsky_common::store::{self, Connection};
use rsky_common::streams::Streams;
use rsky_ingester::{Config, IngesterError, IngesterMetrics};
use rsky_metrics_runtime::{encode_text, Registry};
use rsky_testkit::{FirehoseScript, TestRelay};
use tokio::task::JoinHandle;

pub use rsky_testkit::support::{delete_prefix, redis_url, unique_prefix, wait_until};

/// A test relay whose firehose log holds `n` identity events, for `did:plc:user0` onwards.
pub async fn relay_with_identities(n: usize) -> TestRelay {
    let relay = TestRelay::start().await.expect("start the test relay");
    let mut script = FirehoseScript::new(1);
    for i in 0..n {
        script
            .identity(&format!("did:plc:user{i}"), None)
            .expect("an identity frame");
    }
    relay.push(script.take_items());
    relay
}

/// A metric set in a registry of its own.
pub fn fresh_metrics() -> (Registry, Arc<IngesterMetrics>) {
    let registry = Registry::new();
    let metrics = IngesterMetrics::register(&registry).expect("a fresh registry has no clashes");
    (registry, Arc::new(metrics))
}

pub async fn redis() -> Connection {
    let url = redis_url();
    store::connect(&url, store::RedisTimeouts::DEFAULT)
        .await
        .unwrap_or_else(|err| panic!("the tests need Redis at {url}: {err}"))
}

/// Test defaults: short timeouts so tests are quick. `vars` override them.
pub fn config(prefix: &str, vars: &[(&str, &str)]) -> Config {
    let mut pairs: Vec<(String, String)> = [
        ("REDIS_URL", redis_url().as_str()),
        ("REDIS_KEY_PREFIX", prefix),
        ("INGESTER_MODE", "firehose"),
        ("INGESTER_BATCH_TIMEOUT_MS", "50"),
        ("INGESTER_SAMPLE_INTERVAL_MS", "50"),
        ("INGESTER_RECONNECT_MIN_MS", "20"),
        ("INGESTER_RECONNECT_MAX_MS", "200"),
        ("BACKPRESSURE_POLL_MS", "20"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in vars {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    Config::from_pairs(pairs).expect("test configuration is valid")
}

/// A running ingester.
pub struct Running {
    pub registry: Registry,
    pub metrics: Arc<IngesterMetrics>,
    pub streams: Streams,
    pub conn: Connection,
    shutdown: Shutdown,
    task: Option<JoinHandle<Result<(), IngesterError>>>,
}

impl Running {
    /// Starts the ingester with `config` on fresh metrics.
    pub async fn start(config: Config) -> Running {
        let (registry, metrics) = fresh_metrics();
        Self::start_with(config, registry, metrics).await
    }

    pub async fn start_with(
        config: Config,
        registry: Registry,
        metrics: Arc<IngesterMetrics>,
    ) -> Running {
        let streams = config.pipeline.streams.clone();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(rsky_ingester::run(
            config,
            metrics.clone(),
            shutdown.clone(),
        ));
        Running {
            registry,
            metrics,
            streams,
            conn: redis().await,
            shutdown,
            task: Some(task),
        }
    }

    /// Whether the service is still running.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Begins shutdown (as SIGTERM does) without waiting for it.
    pub fn cancel(&self) {
        self.shutdown.cancel();
    }

    /// Shuts down (as SIGTERM does) and waits for the flush.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the ingester stops within 20 s of shutdown")
                .expect("the ingester task did not panic")
                .expect("the ingester ran");
        }
    }

    /// Stops the ingester and deletes every key under its prefix (the test Redis is shared).
    pub async fn finish(mut self) {
        if self.task.is_some() {
            self.stop().await;
        }
        delete_prefix(&mut self.conn.clone(), &self.streams.prefix).await;
    }

    pub fn scrape(&self) -> String {
        encode_text(&self.registry)
    }

    /// The value of a series (or the sum of a labeled family) in this ingester's scrape.
    pub fn value(&self, name: &str) -> f64 {
        sample(&self.scrape(), name).unwrap_or_else(|| panic!("{name} is not in the scrape"))
    }

    /// The JSON payloads of `stream`'s entries under `field`, in order.
    pub async fn entries(&self, stream: &str, field: &str) -> Vec<serde_json::Value> {
        entries(&mut self.conn.clone(), stream, field).await
    }

    pub async fn get(&self, key: &str) -> Option<String> {
        store::read_cursor(&mut self.conn.clone(), key)
            .await
            .unwrap()
    }

    pub async fn len(&self, stream: &str) -> u64 {
        store::stream_len(&mut self.conn.clone(), stream)
            .await
            .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The value of `name` in a text scrape: one series (`name` with its labels, or an unlabeled
/// name), or the sum over every series of a labeled family (`ingester_errors_total` is the sum
/// over its kinds, as PromQL's `sum()` sees it). `None` when no series matches.
pub fn sample(scrape: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in scrape.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let family = series.split_once('{').map_or(series, |(family, _)| family);
        if series == name || (!name.contains('{') && family == name) {
            if let Ok(value) = value.trim().parse::<f64>() {
                *total.get_or_insert(0.0) += value;
            }
        }
    }
    total
}

pub async fn entries(conn: &mut Connection, stream: &str, field: &str) -> Vec<serde_json::Value> {
    let reply: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    reply
        .into_iter()
        .map(|(id, fields)| {
            let (_, json) = fields
                .into_iter()
                .find(|(f, _)| f == field)
                .unwrap_or_else(|| panic!("entry {id} of {stream} has no field {field}"));
            serde_json::from_str(&json).unwrap()
        })
        .collect()
}

/// Reads the non-comment, non-empty lines of a syntax fixture (the interop vectors kept in rsky-atproto).
pub fn fixture_lines(name: &str) -> Vec<String> {
    let path = format!(
        "{}/../atproto/tests/fixtures/syntax/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}
