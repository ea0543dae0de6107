//! The alerting and recording rules: their names and expressions.

use std::path::Path;

use serde_yaml::Value;

use crate::{read, Error};

/// Where the alert rules live, relative to the workspace root.
pub const ALERTS_PATH: &str = "prometheus/alerts.yml";
/// Their `promtool test rules` unit tests.
pub const ALERT_TESTS_PATH: &str = "prometheus/alerts.test.yml";

/// The recording rules, relative to the workspace root.
pub const RECORDING_PATH: &str = "prometheus/recording.yml";
/// Their `promtool test rules` unit tests.
pub const RECORDING_TESTS_PATH: &str = "prometheus/recording.test.yml";
/// prometheus.yml plus `remote_write` to a long-term store.
pub const REMOTE_WRITE_CONFIG_PATH: &str = "prometheus/remote-write.yml";

/// One alerting or recording rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The group it is in.
    pub group: String,
    /// `alert:` or `record:` name.
    pub name: String,
    /// The PromQL.
    pub expr: String,
}

/// Every rule of a rule file, in order.
pub fn load(path: &Path) -> Result<Vec<Rule>, Error> {
    let format = |message: String| Error::Format {
        path: path.to_owned(),
        message,
    };
    let yaml: Value =
        serde_yaml::from_str(&read(path)?).map_err(|e| format(format!("not valid YAML: {e}")))?;
    let mut out = Vec::new();
    for group in seq(&yaml, "groups") {
        let group_name = group["name"].as_str().unwrap_or_default();
        for rule in seq(group, "rules") {
            let name = rule["alert"]
                .as_str()
                .or_else(|| rule["record"].as_str())
                .ok_or_else(|| format(format!("group {group_name}: a rule without a name")))?;
            let expr = rule["expr"]
                .as_str()
                .ok_or_else(|| format(format!("rule {name}: no expr")))?;
            out.push(Rule {
                group: group_name.to_owned(),
                name: name.to_owned(),
                expr: expr.to_owned(),
            });
        }
    }
    Ok(out)
}

/// The project's alert rules ([`ALERTS_PATH`]).
pub fn project_alerts() -> Result<Vec<Rule>, Error> {
    load(&crate::workspace_root().join(ALERTS_PATH))
}

/// The project's recording rules ([`RECORDING_PATH`]).
pub fn project_recording_rules() -> Result<Vec<Rule>, Error> {
    load(&crate::workspace_root().join(RECORDING_PATH))
}

/// The rule names whose output a `promtool test rules` file checks (the metric name of each
/// `promql_expr_test[].expr` that is a bare rule name).
pub fn tested_expressions(path: &Path) -> Result<Vec<String>, Error> {
    let yaml: Value = serde_yaml::from_str(&read(path)?).map_err(|e| Error::Format {
        path: path.to_owned(),
        message: format!("not valid YAML: {e}"),
    })?;
    Ok(seq(&yaml, "tests")
        .flat_map(|test| seq(test, "promql_expr_test"))
        .filter_map(|case| case["expr"].as_str().map(|e| e.trim().to_owned()))
        .collect())
}

/// The alert names that a `promtool test rules` file checks (`alert_rule_test[].alertname`).
pub fn tested_alerts(path: &Path) -> Result<Vec<String>, Error> {
    let yaml: Value = serde_yaml::from_str(&read(path)?).map_err(|e| Error::Format {
        path: path.to_owned(),
        message: format!("not valid YAML: {e}"),
    })?;
    Ok(seq(&yaml, "tests")
        .flat_map(|test| seq(test, "alert_rule_test"))
        .filter_map(|case| case["alertname"].as_str().map(str::to_owned))
        .collect())
}

fn seq<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}
