//! prometheus/remote-write.yml: prometheus.yml plus `remote_write` to a long-term store. Checked
//! with promtool, kept equal to prometheus.yml, and run end to end: the pipeline's three
//! services serve their metric sets on loopback ports, a real Prometheus scrapes them through
//! this file (targets rewritten to those ports, as the local stack does) and remote-writes to a
//! second real Prometheus started as a receiver (`--web.enable-remote-write-receiver`, with
//! prometheus/longterm.yml, the compose `longterm` service's file), which must then answer for
//! the pipeline's series, recording rules included.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rsky_metrics_runtime::{MetricSet, MetricsServer, MetricsServerHandle, Registry};
use rsky_stack::local::{local_prometheus_config, Target};
use rsky_stack::rules::REMOTE_WRITE_CONFIG_PATH;
use rsky_stack::tool::{PROMETHEUS, PROMTOOL};
use rsky_stack::workspace_root;
use serde_yaml::Value;

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The config with its rule files made absolute (each file names them relative to itself).
fn resolved(path: &Path) -> Value {
    let mut config = yaml(path);
    let dir = path.parent().unwrap().to_owned();
    for file in config["rule_files"].as_sequence_mut().unwrap() {
        let absolute = dir.join(file.as_str().unwrap());
        let absolute = absolute.canonicalize().unwrap_or(absolute);
        *file = Value::from(absolute.display().to_string());
    }
    config
}

#[test]
fn promtool_accepts_the_remote_write_config() {
    let out = PROMTOOL
        .run(
            &["check", "config", REMOTE_WRITE_CONFIG_PATH],
            &workspace_root(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("2 rule files found"), "{out}");
    PROMTOOL
        .run(
            &["check", "config", "prometheus/longterm.yml"],
            &workspace_root(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_remote_write_config_is_prometheus_yml_plus_remote_write() {
    let root = workspace_root();
    let mut with_remote = resolved(&root.join(REMOTE_WRITE_CONFIG_PATH));
    let remote = with_remote
        .as_mapping_mut()
        .unwrap()
        .remove("remote_write")
        .expect("remote_write");
    assert_eq!(with_remote, resolved(&root.join("prometheus.yml")));
    let remote = remote.as_sequence().expect("a list of endpoints");
    assert_eq!(remote.len(), 1);
    assert_eq!(
        remote[0]["url"].as_str(),
        Some("http://longterm:9090/api/v1/write"),
        "the compose longterm service's receiver"
    );
}

/// A child process killed when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

fn prometheus(config: &Path, data: &Path, addr: SocketAddr, extra: &[&str], log: &Path) -> Process {
    let mut args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", data.display()),
        format!("--web.listen-address={addr}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let log = std::fs::File::create(log).expect("a log file");
    let child = Command::new(PROMETHEUS.program)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run prometheus ({e}); install it from {}",
                PROMETHEUS.install
            )
        });
    Process(child)
}

async fn serve<S: MetricSet>() -> MetricsServerHandle {
    let registry = Registry::new();
    S::register(&registry).expect("register the metric set");
    MetricsServer::for_set::<S>()
        .registry(registry)
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .version("remote-write-test")
        .bind()
        .await
        .expect("bind a /metrics server")
        .spawn()
}

/// `query`'s result vector on the Prometheus at `base`, or why not.
async fn query(
    client: &reqwest::Client,
    base: &str,
    query: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let response = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    body["data"]["result"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("no result: {body}"))
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rsky-stack-remote-write-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_prometheus_receives_the_pipelines_series_by_remote_write() {
    let root = workspace_root();
    let dir = scratch();

    let servers = [
        (
            "rsky-ingester",
            "ingester",
            serve::<rsky_ingester::IngesterMetrics>().await,
        ),
        (
            "rsky-backfiller",
            "backfiller1",
            serve::<rsky_backfiller::BackfillerMetrics>().await,
        ),
        (
            "rsky-indexer",
            "indexer1",
            serve::<rsky_indexer::IndexerMetrics>().await,
        ),
    ];
    let (sender_addr, receiver_addr) = (free_addr(), free_addr());
    let mut targets: Vec<Target> = servers
        .iter()
        .map(|(job, name, server)| Target {
            job: (*job).to_owned(),
            instance: server.local_addr().to_string(),
            name: (*name).to_owned(),
        })
        .collect();
    targets.push(Target {
        job: "prometheus".to_owned(),
        instance: sender_addr.to_string(),
        name: "prometheus".to_owned(),
    });

    // The project's remote-write config, scraping loopback every second and writing to the
    // receiver; the queue flushes within a second instead of five.
    let config = local_prometheus_config(
        &root.join(REMOTE_WRITE_CONFIG_PATH),
        &targets,
        Duration::from_secs(1),
    )
    .expect("the remote-write config");
    let mut config: Value = serde_yaml::from_str(&config).unwrap();
    let endpoint = &mut config["remote_write"][0];
    endpoint["url"] = Value::from(format!("http://{receiver_addr}/api/v1/write"));
    endpoint["queue_config"]["batch_send_deadline"] = Value::from("1s");
    let sender_config = dir.join("sender.yml");
    std::fs::write(&sender_config, serde_yaml::to_string(&config).unwrap()).unwrap();

    let _receiver = prometheus(
        &root.join("prometheus/longterm.yml"),
        &dir.join("receiver-data"),
        receiver_addr,
        &["--web.enable-remote-write-receiver"],
        &dir.join("receiver.log"),
    );
    let _sender = prometheus(
        &sender_config,
        &dir.join("sender-data"),
        sender_addr,
        &[],
        &dir.join("sender.log"),
    );

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let receiver = format!("http://{receiver_addr}");
    // Every job's `up`, a metric of each service, and recording rules' output, all carrying the
    // sender's external label: what the receiver holds came through remote write.
    let wanted = [
        (r#"count by (job) (up{pipeline="rsky-appview"} == 1)"#, 4),
        (
            r#"ingester_firehose_events_total{pipeline="rsky-appview", job="rsky-ingester"}"#,
            1,
        ),
        (
            r#"backfiller_repos_processed_total{pipeline="rsky-appview", job="rsky-backfiller"}"#,
            1,
        ),
        (
            r#"indexer_events_processed_total{pipeline="rsky-appview", job="rsky-indexer"}"#,
            1,
        ),
        (
            r#"job:indexer_events_processed:rate5m{pipeline="rsky-appview"}"#,
            1,
        ),
        (
            r#"count(job:indexer_write_duration_seconds_bucket:rate5m{pipeline="rsky-appview"})"#,
            1,
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing = Vec::new();
    loop {
        missing.clear();
        for (expr, series) in wanted {
            match query(&client, &receiver, expr).await {
                Ok(result) if result.len() == series => {}
                Ok(result) => missing.push(format!("{expr}: {} series", result.len())),
                Err(e) => missing.push(format!("{expr}: {e}")),
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sender_log = std::fs::read_to_string(dir.join("sender.log")).unwrap_or_default();
    assert!(
        missing.is_empty(),
        "after 60 s the receiver lacks {missing:#?}\n--- sender log (tail)\n{}",
        sender_log
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The receiver scrapes nothing itself: all it holds was written to it.
    let own = query(&client, &receiver, r#"count(up{pipeline!="rsky-appview"})"#)
        .await
        .unwrap();
    assert!(
        own.is_empty(),
        "the receiver has series of its own: {own:?}"
    );

    for (_, _, server) in servers {
        let _ = server.shutdown().await;
    }
    drop((_sender, _receiver));
    let _ = std::fs::remove_dir_all(&dir);
}
