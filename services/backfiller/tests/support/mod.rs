//! What the backfiller's integration tests share: a test PLC and PDS on loopback, a Redis
//! namespace and a metrics registry of each test's own, and readers for the streams.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use rsky_backfiller::config::GROUP;
use std::sync::Arc;

use rsky_backfiller::{Backfiller, BackfillerMetrics, Config};
use rsky_common::config::Settings;
use rsky_common::event::{BackfillEvent, StreamEvent};
use rsky_metrics_runtime::Registry;
use rsky_testkit::pds::{Behaviour, HostedRepo, TestAccount, TestPds};
use rsky_testkit::plc::TestPlc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use rsky_testkit::support::{redis_url, unique_prefix};

/// A test's world: PLC, PDS, Redis under a prefix of its own.
pub struct World {
    pub prefix: String,
    pub plc: TestPlc,
    pub pds: TestPds,
    pub redis: ConnectionManager,
    pub hosted: HashMap<String, (TestAccount, HostedRepo)>,
}

impl World {
    pub async fn new(test: &str) -> World {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_env("TEST_LOG"))
                .with_test_writer()
                .try_init();
        }
        let prefix = unique_prefix(&format!("backfiller:{test}"));
        let client = redis::Client::open(redis_url()).unwrap();
        let redis = ConnectionManager::new(client).await.unwrap();
        World {
            prefix,
            plc: TestPlc::start().await.unwrap(),
            pds: TestPds::start().await.unwrap(),
            redis,
            hosted: HashMap::new(),
        }
    }

    /// The environment a backfiller of this world runs with (fast timings for tests).
    pub fn env(&self, consumer: &str) -> HashMap<String, String> {
        [
            ("REDIS_URL", redis_url()),
            ("REDIS_KEY_PREFIX", self.prefix.clone()),
            ("BACKFILLER_PLC_URL", self.plc.url()),
            ("BACKFILLER_DID_WEB_INSECURE", "true".to_owned()),
            ("BACKFILLER_CONSUMER", consumer.to_owned()),
            ("STREAM_RETRY_BACKOFF_MS", "20".to_owned()),
            ("STREAM_BLOCK_MS", "100".to_owned()),
            ("BACKFILLER_FETCH_TIMEOUT_MS", "2000".to_owned()),
            ("BACKFILLER_RESOLVE_TIMEOUT_MS", "2000".to_owned()),
            ("BACKPRESSURE_POLL_MS", "50".to_owned()),
            ("STREAM_TRIM_INTERVAL_MS", "200".to_owned()),
            ("STREAM_SAMPLE_INTERVAL_MS", "100".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub fn config(&self, consumer: &str, overrides: &[(&str, &str)]) -> Config {
        let mut env = self.env(consumer);
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_pairs(env).unwrap()
    }

    /// Hosts `account` with `behaviour` and queues it in `repo_backfill`.
    pub async fn add(&mut self, account: TestAccount, behaviour: Behaviour) -> String {
        let hosted = self.pds.host(&account, behaviour, &self.plc).unwrap();
        let did = account.did.clone();
        self.enqueue(&did).await;
        self.hosted.insert(did.clone(), (account, hosted));
        did
    }

    /// Adds `count` did:plc accounts (`{seed}-0`, `{seed}-1`, ...) of `records` records each,
    /// served normally, and enqueues each.
    pub async fn add_served(&mut self, seed: &str, count: usize, records: usize) {
        for i in 0..count {
            let account =
                TestAccount::plc(&format!("{seed}-{i}"), records).expect("a test account");
            self.add(account, Behaviour::Serve).await;
        }
    }

    pub async fn enqueue(&mut self, did: &str) -> String {
        let event = BackfillEvent {
            did: did.to_owned(),
            host: self.pds.url(),
            rev: None,
            status: None,
            active: true,
        };
        self.enqueue_raw(&serde_json::to_string(&event).unwrap())
            .await
    }

    pub async fn enqueue_raw(&mut self, payload: &str) -> String {
        self.redis
            .xadd(self.stream("repo_backfill"), "*", &[("repo", payload)])
            .await
            .unwrap()
    }

    pub fn stream(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub async fn xlen(&mut self, name: &str) -> usize {
        self.redis.xlen(self.stream(name)).await.unwrap()
    }

    /// Entries delivered to some consumer of the group and not acknowledged.
    pub async fn pending(&mut self) -> usize {
        let (count, _, _, _): (usize, Option<String>, Option<String>, redis::Value) =
            redis::cmd("XPENDING")
                .arg(self.stream("repo_backfill"))
                .arg(GROUP)
                .query_async(&mut self.redis)
                .await
                .unwrap();
        count
    }

    /// Every event of `firehose_backfill`, in order.
    pub async fn output(&mut self) -> Vec<StreamEvent> {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(self.stream("firehose_backfill"))
            .arg("-")
            .arg("+")
            .query_async(&mut self.redis)
            .await
            .unwrap();
        entries
            .into_iter()
            .map(|(_, fields)| {
                assert_eq!(fields.len(), 1, "one field per entry");
                assert_eq!(fields[0].0, "event");
                serde_json::from_str(&fields[0].1).unwrap()
            })
            .collect()
    }

    /// Every dead letter: its fields by name.
    pub async fn dead_letters(&mut self) -> Vec<HashMap<String, String>> {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(self.stream("repo_backfill_dlq"))
            .arg("-")
            .arg("+")
            .query_async(&mut self.redis)
            .await
            .unwrap();
        entries
            .into_iter()
            .map(|(_, fields)| fields.into_iter().collect())
            .collect()
    }

    /// Waits until `repo_backfill` is empty and nothing is pending.
    pub async fn wait_drained(&mut self, within: Duration) {
        let started = Instant::now();
        loop {
            if self.xlen("repo_backfill").await == 0 && self.pending().await == 0 {
                return;
            }
            assert!(
                started.elapsed() < within,
                "repo_backfill not drained within {within:?}: {} entries, {} pending",
                self.xlen("repo_backfill").await,
                self.pending().await
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Deletes every key of this world.
    pub async fn cleanup(mut self) {
        let keys: Vec<String> = self.redis.keys(format!("{}*", self.prefix)).await.unwrap();
        if !keys.is_empty() {
            let _: () = self.redis.del(keys).await.unwrap();
        }
    }
}

/// A backfiller running in this process with a registry of its own.
pub struct Running {
    pub backfiller: Backfiller,
    pub metrics: Arc<BackfillerMetrics>,
    pub registry: Registry,
    stop: CancellationToken,
    task: JoinHandle<Result<(), rsky_backfiller::WorkerError>>,
}

impl Running {
    pub async fn start(config: Config) -> Running {
        let registry = Registry::new();
        let metrics = Arc::new(BackfillerMetrics::register(&registry).unwrap());
        let backfiller = Backfiller::connect(config, metrics.clone()).await.unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let backfiller = backfiller.clone();
            let stop = stop.clone();
            async move { backfiller.run(stop).await }
        });
        Running {
            backfiller,
            metrics,
            registry,
            stop,
            task,
        }
    }

    /// Asks for a graceful shutdown and waits for it.
    pub async fn stop(self) -> Arc<BackfillerMetrics> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the backfiller stops within 30 s")
            .unwrap()
            .unwrap();
        self.metrics
    }
}
