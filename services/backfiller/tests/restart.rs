//! The `backfiller` binary killed mid-batch and restarted; its `/metrics` under promtool.

mod support;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rsky_backfiller::metrics::ErrorKind;
use rsky_common::event::StreamEvent;
use rsky_metrics_runtime::testing::assert_promtool_clean;
use rsky_metrics_runtime::LabelValue;
use rsky_testkit::pds::{Behaviour, TestAccount};
use rsky_testkit::spec::BACKFILLER_METRICS;
use support::World;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A backfiller process, killed if the test ends (or fails) before it.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(env: &HashMap<String, String>) -> Process {
    Process(
        Command::new(env!("CARGO_BIN_EXE_backfiller"))
            .envs(env)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the backfiller binary starts"),
    )
}

async fn scrape(port: u16) -> String {
    let started = Instant::now();
    loop {
        match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            Ok(response) => return response.text().await.unwrap(),
            Err(err) => {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "no /metrics on port {port}: {err}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn value(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.split(' ').next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfiller_killed_mid_batch_processes_every_repo_after_a_restart() {
    let mut world = World::new("restart").await;
    for i in 0..24 {
        world
            .add(
                TestAccount::plc(&format!("restart-{i}"), 15).unwrap(),
                Behaviour::Serve,
            )
            .await;
    }
    // Long enough that the batch seen in flight is still in flight when the kill lands, however
    // late this loaded test wakes up (150 ms was sometimes not).
    world.pds.set_get_repo_delay(Duration::from_millis(1000));
    let port = free_port();
    let mut env = world.env("b1");
    env.insert("BACKFILLER_CONCURRENCY".into(), "4".into());
    env.insert("METRICS_PORT".into(), port.to_string());

    let mut first = spawn(&env);
    let first_scrape = scrape(port).await;
    for name in BACKFILLER_METRICS {
        assert!(
            value(&first_scrape, name).is_some(),
            "{name} is on the first scrape"
        );
    }
    for kind in ErrorKind::VALUES {
        let series = format!("backfiller_errors_total{{kind=\"{kind}\"}}");
        assert_eq!(value(&first_scrape, &series), Some(0.0), "{series} at zero");
    }
    assert_promtool_clean(&first_scrape);
    let started = Instant::now();
    // A repository written and a batch in flight: the repositories of one batch finish
    // together, and between two batches nothing is pending for a moment.
    while !(world
        .output()
        .await
        .iter()
        .any(|e| matches!(e, StreamEvent::Repo(_)))
        && world.pending().await > 0)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no repo written"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.0.kill().unwrap(); // SIGKILL: no chance to finish the batch.
    first.0.wait().unwrap();
    let pending_at_kill = world.pending().await;
    assert!(pending_at_kill > 0, "killed with repos in flight");
    assert!(world.xlen("repo_backfill").await > 0);

    let mut second = spawn(&env);
    world.wait_drained(Duration::from_secs(60)).await;
    let after = scrape(port).await;
    assert_promtool_clean(&after);
    assert!(value(&after, "backfiller_repos_processed_total").unwrap() >= pending_at_kill as f64);
    let status = Command::new("kill")
        .args(["-TERM", &second.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = second.0.wait().unwrap();
    assert!(
        exit.success(),
        "SIGTERM ends the backfiller cleanly: {exit:?}"
    );

    let events = world.output().await;
    let repos: HashSet<String> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Repo(r) => Some(r.did.clone()),
            _ => None,
        })
        .collect();
    let records: HashSet<(String, String, String)> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Create(c) => Some((c.did.clone(), c.collection.clone(), c.rkey.clone())),
            _ => None,
        })
        .collect();
    for (did, (account, _)) in &world.hosted {
        assert!(repos.contains(did), "{did} has its repo event");
        for record in account.forwarded_records() {
            assert!(records.contains(&(
                did.clone(),
                record.collection.clone(),
                record.rkey.clone()
            )));
        }
    }
    assert!(world.dead_letters().await.is_empty());
    world.cleanup().await;
}

#[test]
fn every_metric_is_registered_at_zero_before_any_work() {
    let registry = rsky_metrics_runtime::Registry::new();
    rsky_backfiller::BackfillerMetrics::register(&registry).unwrap();
    let text = rsky_metrics_runtime::encode_text(&registry);
    for name in BACKFILLER_METRICS {
        assert_eq!(value(&text, name), Some(0.0), "{name} at zero");
    }
    for desc in <rsky_backfiller::BackfillerMetrics as rsky_metrics_runtime::MetricSet>::METRICS {
        for sample in desc.sample_names() {
            assert!(text.contains(&sample), "{sample} is exposed");
        }
    }
    assert_promtool_clean(&text);
}
