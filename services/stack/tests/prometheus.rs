//! prometheus.yml, the alert and recording rules: valid for promtool, the production layout,
//! every alert and recording rule unit-tested, the dashboard's heavy queries recorded.

use std::collections::BTreeMap;

use rsky_stack::rules::{
    self, ALERTS_PATH, ALERT_TESTS_PATH, RECORDING_PATH, RECORDING_TESTS_PATH,
};
use rsky_stack::tool::PROMTOOL;
use rsky_stack::workspace_root;
use serde_yaml::Value;

fn config() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("prometheus.yml"))
        .expect("prometheus.yml at the workspace root");
    serde_yaml::from_str(&text).expect("prometheus.yml is YAML")
}

#[test]
fn promtool_accepts_the_config_and_the_rule_files_it_names() {
    let out = PROMTOOL
        .run(&["check", "config", "prometheus.yml"], &workspace_root())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("2 rule files found"), "{out}");
}

#[test]
fn promtool_accepts_the_alert_rules() {
    PROMTOOL
        .run(&["check", "rules", ALERTS_PATH], &workspace_root())
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_alert_unit_tests_pass() {
    let out = PROMTOOL
        .run(&["test", "rules", ALERT_TESTS_PATH], &workspace_root())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_has_a_unit_test() {
    let alerts = rules::project_alerts().unwrap();
    let tested = rules::tested_alerts(&workspace_root().join(ALERT_TESTS_PATH)).unwrap();
    let untested: Vec<_> = alerts
        .iter()
        .filter(|rule| !tested.contains(&rule.name))
        .map(|rule| rule.name.as_str())
        .collect();
    assert!(
        untested.is_empty(),
        "alerts without a promtool test: {untested:?}"
    );
}

#[test]
fn the_alerts_cover_what_the_operators_asked_for() {
    // Target down, ingester stalled, backpressure, error rates, pending growth, dead letters.
    let alerts = rules::project_alerts().unwrap();
    let reads = |metric: &str| {
        alerts
            .iter()
            .filter(|r| r.expr.contains(metric))
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
    };
    for metric in [
        "up",
        "ingester_firehose_events_total",
        "ingester_backpressure_active",
        "ingester_errors_total",
        "backfiller_repos_failed_total",
        "indexer_unexpected_errors_total",
        "indexer_errors_total",
        "indexer_pending_messages",
        "backfiller_repos_dead_lettered_total",
    ] {
        assert!(!reads(metric).is_empty(), "no alert reads {metric}");
    }
}

#[test]
fn every_target_of_the_production_layout_is_scraped_every_15_seconds() {
    let config = config();
    assert_eq!(config["global"]["scrape_interval"].as_str(), Some("15s"));
    let jobs: BTreeMap<String, Vec<String>> = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .map(|job| {
            let targets = job["static_configs"]
                .as_sequence()
                .into_iter()
                .flatten()
                .flat_map(|c| c["targets"].as_sequence().into_iter().flatten())
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            (
                job["job_name"].as_str().unwrap_or_default().to_owned(),
                targets,
            )
        })
        .collect();
    let expected: BTreeMap<String, Vec<String>> = [
        ("prometheus", vec!["localhost:9090".to_owned()]),
        ("rsky-ingester", vec!["ingester:4100".to_owned()]),
        (
            "rsky-backfiller",
            (1..=2).map(|i| format!("backfiller{i}:9090")).collect(),
        ),
        (
            "rsky-indexer",
            (1..=6).map(|i| format!("indexer{i}:9090")).collect(),
        ),
    ]
    .into_iter()
    .map(|(job, targets)| (job.to_owned(), targets))
    .collect();
    assert_eq!(jobs, expected);
}

#[test]
fn the_config_loads_the_alert_rules() {
    let config = config();
    let files: Vec<_> = config["rule_files"]
        .as_sequence()
        .expect("rule_files")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(files, [ALERTS_PATH, RECORDING_PATH]);
}

#[test]
fn promtool_accepts_the_recording_rules_and_their_unit_tests_pass() {
    PROMTOOL
        .run(&["check", "rules", RECORDING_PATH], &workspace_root())
        .unwrap_or_else(|e| panic!("{e}"));
    let out = PROMTOOL
        .run(&["test", "rules", RECORDING_TESTS_PATH], &workspace_root())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn recording_rules_are_named_level_metric_operations_and_tested_by_kind() {
    let recorded = rules::project_recording_rules().unwrap();
    assert!(!recorded.is_empty());
    for rule in &recorded {
        let parts: Vec<&str> = rule.name.split(':').collect();
        assert_eq!(
            parts.len(),
            3,
            "{} is not level:metric:operations",
            rule.name
        );
        assert_eq!(parts[0], "job", "{}: aggregated by job", rule.name);
        assert!(
            rule.expr.contains("by (job") || rule.expr.starts_with("histogram_quantile("),
            "{}: {}",
            rule.name,
            rule.expr
        );
    }
    // Each kind of rule (bucket sum, each quantile, throughput) has a unit test of its output.
    let tested = rules::tested_expressions(&workspace_root().join(RECORDING_TESTS_PATH)).unwrap();
    for suffix in ["_bucket:rate5m", ":p50_rate5m", ":p99_rate5m", ":rate5m"] {
        assert!(
            tested
                .iter()
                .any(|t| t.ends_with(suffix) && recorded.iter().any(|r| &r.name == t)),
            "no unit test of a {suffix} rule: {tested:?}"
        );
    }
}

#[test]
fn every_latency_quantile_on_the_dashboard_has_its_buckets_recorded() {
    let dashboard =
        std::fs::read_to_string(workspace_root().join("grafana/dashboards/rsky-pipeline.json"))
            .expect("the dashboard");
    let recorded: Vec<String> = rules::project_recording_rules()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    let mut histograms = std::collections::BTreeSet::new();
    for quantile in dashboard.split("histogram_quantile(").skip(1) {
        let name = quantile
            .split("rate(")
            .nth(1)
            .and_then(|rest| rest.split(['{', '[']).next())
            .expect("histogram_quantile over rate(NAME_bucket...)");
        histograms.insert(name.trim_end_matches("_bucket").to_owned());
    }
    assert!(histograms.len() >= 5, "{histograms:?}");
    for histogram in &histograms {
        for rule in [
            format!("job:{histogram}_bucket:rate5m"),
            format!("job:{histogram}:p50_rate5m"),
            format!("job:{histogram}:p99_rate5m"),
        ] {
            assert!(recorded.contains(&rule), "{rule} is not recorded");
        }
    }
}

#[test]
fn the_alert_tests_catch_a_rule_that_fires_too_early() {
    // Proves the unit tests bite: backpressure alerting after 1 minute instead of 10 must fail.
    let root = workspace_root();
    let dir = std::env::temp_dir().join(format!("rsky-stack-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = std::fs::read_to_string(root.join(ALERTS_PATH)).unwrap();
    let backpressure = rules.find("alert: RskyIngesterBackpressure").unwrap();
    let (head, tail) = rules.split_at(backpressure);
    let mutant = format!("{head}{}", tail.replacen("for: 10m", "for: 1m", 1));
    assert_ne!(mutant, rules);
    std::fs::write(dir.join("alerts.yml"), mutant).unwrap();
    std::fs::copy(root.join(ALERT_TESTS_PATH), dir.join("alerts.test.yml")).unwrap();
    let err = PROMTOOL
        .run(&["test", "rules", "alerts.test.yml"], &dir)
        .expect_err("promtool accepted an alert that fires 9 minutes early");
    assert!(
        err.to_string().contains("RskyIngesterBackpressure"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
