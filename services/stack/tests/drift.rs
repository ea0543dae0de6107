//! The dashboard and the alerts read only metrics that exist, and the dashboard shows every
//! metric the spec names.

use std::collections::BTreeSet;

use rsky_stack::catalog::{known_samples, server_families, services};
use rsky_stack::dashboard::Dashboard;
use rsky_stack::promql::{metric_names, GrafanaVariables};
use rsky_stack::rules;
use rsky_stack::spec::spec_metrics;

fn known() -> BTreeSet<String> {
    known_samples(&services(), &server_families().unwrap())
}

fn dashboard_metrics() -> BTreeSet<String> {
    let vars = GrafanaVariables::default();
    let mut names = BTreeSet::new();
    for q in Dashboard::project().unwrap().queries().unwrap() {
        names.extend(
            metric_names(&vars.substitute(&q.expr))
                .unwrap_or_else(|e| panic!("panel {:?} ({}): {e}", q.panel, q.ref_id)),
        );
    }
    names
}

#[test]
fn every_metric_the_dashboard_reads_is_in_the_catalog() {
    let unknown: Vec<_> = dashboard_metrics().difference(&known()).cloned().collect();
    assert!(
        unknown.is_empty(),
        "the dashboard reads metrics no service exports: {unknown:?}"
    );
}

#[test]
fn every_metric_the_alerts_read_is_in_the_catalog() {
    let known = known();
    for rule in rules::project_alerts().unwrap() {
        let names = metric_names(&rule.expr).unwrap_or_else(|e| panic!("{}: {e}", rule.name));
        let unknown: Vec<_> = names.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "alert {} reads unknown metrics {unknown:?}",
            rule.name
        );
    }
}

#[test]
fn every_metric_the_spec_names_is_on_the_dashboard() {
    let shown = dashboard_metrics();
    let missing: Vec<_> = spec_metrics()
        .into_iter()
        .filter(|m| !shown.contains(m.name))
        .map(|m| m.name)
        .collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}

#[test]
fn the_drift_check_catches_a_misspelt_metric() {
    // A query with a typo must be reported, or the checks above prove nothing.
    let names = metric_names("rate(indexer_evnts_processed_total[1m])").unwrap();
    assert!(!names.is_subset(&known()));
}
