//! The Prometheus config of the stack: the project's `prometheus.yml` and alert rules, scraping
//! the stack's processes.

use std::path::Path;
use std::time::Duration;

use serde_yaml::Value;

use super::Target;

/// The project's prometheus.yml with its targets replaced by the stack's (by job) and its
/// intervals set to `interval`; the rule files stay the project's (absolute paths).
pub fn local_prometheus_config(
    project_config: &Path,
    targets: &[Target],
    interval: Duration,
) -> Result<String, crate::Error> {
    let format = |message: String| crate::Error::Format {
        path: project_config.to_owned(),
        message,
    };
    let mut config: Value = serde_yaml::from_str(&crate::read(project_config)?)
        .map_err(|e| format(format!("not valid YAML: {e}")))?;
    let interval = format!("{}ms", interval.as_millis());
    config["global"]["scrape_interval"] = Value::from(interval.clone());
    config["global"]["evaluation_interval"] = Value::from(interval);
    let dir = project_config.parent().unwrap_or(Path::new("."));
    if let Some(files) = config["rule_files"].as_sequence_mut() {
        for file in files.iter_mut() {
            if let Some(relative) = file.as_str() {
                *file = Value::from(dir.join(relative).display().to_string());
            }
        }
    }
    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .ok_or_else(|| format("no scrape_configs".to_owned()))?;
    for job in jobs.iter_mut() {
        let name = job["job_name"].as_str().unwrap_or_default().to_owned();
        let mine: Vec<Value> = targets
            .iter()
            .filter(|t| t.job == name)
            .map(|t| Value::from(t.instance.clone()))
            .collect();
        let mut static_config = serde_yaml::Mapping::new();
        static_config.insert(Value::from("targets"), Value::Sequence(mine));
        job["static_configs"] = Value::Sequence(vec![Value::Mapping(static_config)]);
    }
    serde_yaml::to_string(&config).map_err(|e| format(format!("cannot write YAML: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_prometheus_config_scrapes_the_stack_with_the_project_rules() {
        let targets = vec![
            Target {
                job: "rsky-ingester".into(),
                instance: "127.0.0.1:5001".into(),
                name: "ingester".into(),
            },
            Target {
                job: "rsky-indexer".into(),
                instance: "127.0.0.1:5002".into(),
                name: "indexer1".into(),
            },
            Target {
                job: "prometheus".into(),
                instance: "127.0.0.1:5003".into(),
                name: "prometheus".into(),
            },
        ];
        let root = crate::workspace_root();
        let text = local_prometheus_config(
            &root.join("prometheus.yml"),
            &targets,
            Duration::from_secs(1),
        )
        .unwrap();
        let config: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(config["global"]["scrape_interval"].as_str(), Some("1000ms"));
        let rules = root.join("prometheus/alerts.yml").display().to_string();
        assert_eq!(config["rule_files"][0].as_str(), Some(rules.as_str()));
        let targets_of = |job: &str| -> Vec<String> {
            let jobs = config["scrape_configs"].as_sequence().unwrap();
            let job = jobs.iter().find(|j| j["job_name"] == job).unwrap();
            job["static_configs"][0]["targets"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(targets_of("rsky-ingester"), ["127.0.0.1:5001"]);
        assert_eq!(targets_of("rsky-indexer"), ["127.0.0.1:5002"]);
        assert_eq!(targets_of("prometheus"), ["127.0.0.1:5003"]);
        assert!(targets_of("rsky-backfiller").is_empty());
    }
}
