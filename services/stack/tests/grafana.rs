//! The Grafana dashboard and its provisioning: the committed JSON is what its TypeScript source
//! generates, Grafana's published schema accepts it, it has the variables and panels operators
//! need, and Grafana loads it with no clicks.

use std::path::PathBuf;

use rsky_stack::dashboard::{Dashboard, DASHBOARD_PATH};
use rsky_stack::tool::{Tool, ToolError, NPX};
use rsky_stack::workspace_root;

/// The dashboard's Node project: its source (`src/`), and the type-check of the JSON.
const DASHBOARD_SRC: &str = "grafana/dashboard-src";

/// Node.js, which runs the compiled dashboard source.
const NODE: Tool = Tool {
    program: "node",
    install: "Debian's packages nodejs and npm (apt-get install nodejs npm; ./scripts/test-all.sh does it)",
};

fn typecheck_dir() -> PathBuf {
    workspace_root().join(DASHBOARD_SRC)
}

fn assert_installed(root: &std::path::Path) {
    assert!(
        root.join("node_modules/@grafana/schema").is_dir()
            && root
                .join("node_modules/@grafana/grafana-foundation-sdk")
                .is_dir(),
        "{DASHBOARD_SRC}/node_modules is missing: run `npm ci --prefix {DASHBOARD_SRC}` \
         (./scripts/test-all.sh does)"
    );
}

/// Writes `json` as a `Dashboard`-typed object literal (so that unknown keys are errors) into
/// `dir/name.ts` and type-checks `dir` with `tsc`.
fn typecheck(json: &str, dir: &str, name: &str) -> Result<String, ToolError> {
    let root = typecheck_dir();
    assert_installed(&root);
    let out = root.join(dir);
    std::fs::create_dir_all(&out).expect("create the type-check output directory");
    let ts = format!(
        "// Generated from {DASHBOARD_PATH} by services/stack/tests/grafana.rs.\n\
         import type {{ Dashboard }} from '@grafana/schema';\n\
         export const dashboard: Dashboard = {json};\n"
    );
    std::fs::write(out.join(format!("{name}.ts")), ts).expect("write the generated .ts");
    if dir != "generated" {
        std::fs::write(
            out.join("tsconfig.json"),
            r#"{ "extends": "../tsconfig.json", "include": ["*.ts"] }"#,
        )
        .expect("write the mutants' tsconfig");
    }
    let project = if dir == "generated" { "." } else { dir };
    NPX.run(&["--no-install", "tsc", "-p", project], &root)
}

fn dashboard_text() -> String {
    std::fs::read_to_string(workspace_root().join(DASHBOARD_PATH)).expect("the dashboard JSON")
}

#[test]
fn the_committed_dashboard_is_what_its_typescript_source_generates() {
    // The same two steps as `npm run build`, the second writing into a temporary file.
    let root = typecheck_dir();
    assert_installed(&root);
    NPX.run(&["--no-install", "tsc", "-p", "tsconfig.build.json"], &root)
        .unwrap_or_else(|e| panic!("the dashboard source does not compile: {e}"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rsky-pipeline.generated.json");
    let out_arg = out.to_str().expect("a UTF-8 temporary path");
    NODE.run(&["dist/build.js", out_arg], &root)
        .unwrap_or_else(|e| panic!("the dashboard source does not run: {e}"));
    let generated = std::fs::read_to_string(&out).expect("the generated dashboard");
    let committed = dashboard_text();
    if generated != committed {
        let line = generated
            .lines()
            .zip(committed.lines())
            .position(|(g, c)| g != c)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
        panic!(
            "{DASHBOARD_PATH} is stale: it differs from what {DASHBOARD_SRC}/src generates \
             (first at line {}: committed {:?}, generated {:?}). Edit {DASHBOARD_SRC}/src, \
             never the JSON, then regenerate it with `npm run build --prefix {DASHBOARD_SRC}` \
             and commit both.",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            generated.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn the_dashboard_type_checks_against_grafanas_published_schema() {
    typecheck(&dashboard_text(), "generated", "rsky-pipeline").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_type_check_rejects_an_unknown_key_in_a_panel() {
    // Proves the check bites: the same dashboard with one misspelt panel key must fail.
    let mutant = dashboard_text().replacen("\"gridPos\"", "\"gridPoz\"", 1);
    let err = typecheck(&mutant, "mutants", "unknown-panel-key")
        .expect_err("tsc accepted a panel with an unknown key");
    assert!(err.to_string().contains("gridPoz"), "{err}");
}

#[test]
fn the_dashboard_is_schema_39_or_later_with_a_stable_uid() {
    let dashboard = Dashboard::project().unwrap();
    let json = dashboard.json();
    assert!(
        json["schemaVersion"].as_u64().unwrap_or(0) >= 39,
        "schemaVersion"
    );
    assert_eq!(json["uid"], "rsky-pipeline");
}

#[test]
fn the_dashboard_has_datasource_job_and_instance_variables() {
    let variables = Dashboard::project().unwrap().variables();
    let expected: Vec<(String, String)> = [
        ("datasource", "datasource"),
        ("job", "query"),
        ("instance", "query"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect();
    assert_eq!(variables, expected);
}

#[test]
fn every_query_uses_the_datasource_variable_and_the_job_and_instance_filters() {
    for q in Dashboard::project().unwrap().queries().unwrap() {
        assert_eq!(q.datasource.as_deref(), Some("${datasource}"), "{q:?}");
        assert!(
            q.expr.contains(r#"job=~"$job""#) && q.expr.contains(r#"instance=~"$instance""#),
            "panel {:?} does not filter by $job and $instance: {}",
            q.panel,
            q.expr
        );
    }
}

#[test]
fn every_rate_is_taken_over_the_rate_interval() {
    for q in Dashboard::project().unwrap().queries().unwrap() {
        if q.expr.contains("rate(") {
            assert!(
                q.expr.contains("[$__rate_interval]"),
                "panel {:?}: {}",
                q.panel,
                q.expr
            );
        }
    }
}

#[test]
fn the_dashboard_has_a_row_per_service_and_one_for_targets_and_processes() {
    let rows = Dashboard::project().unwrap().rows();
    assert_eq!(
        rows,
        ["Targets and processes", "Ingester", "Backfiller", "Indexer"]
    );
}

#[test]
fn the_dashboard_shows_up_cpu_and_memory_per_target_and_no_nodejs_metric() {
    let queries = Dashboard::project().unwrap().queries().unwrap();
    for needle in [
        "up{",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(
            queries.iter().any(|q| q.expr.contains(needle)),
            "no panel reads {needle}"
        );
    }
    for q in &queries {
        assert!(!q.expr.contains("nodejs_"), "a Node.js metric: {}", q.expr);
    }
}

#[test]
fn panels_do_not_overlap() {
    let dashboard = Dashboard::project().unwrap();
    let mut cells = std::collections::HashMap::new();
    for panel in dashboard.json()["panels"].as_array().unwrap() {
        let g = &panel["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(
            x + w <= 24,
            "panel {} is wider than the grid",
            panel["title"]
        );
        for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), panel["title"].clone()) {
                    panic!("{} overlaps {}", panel["title"], other);
                }
            }
        }
    }
}

#[test]
fn the_provisioning_points_grafana_at_the_dashboards_and_the_datasource_uid() {
    let root = workspace_root().join("grafana/provisioning");
    let yaml = |path: &str| -> serde_yaml::Value {
        serde_yaml::from_str(&std::fs::read_to_string(root.join(path)).expect(path)).expect(path)
    };
    let datasources = yaml("datasources/prometheus.yml");
    let ds = &datasources["datasources"][0];
    assert_eq!(ds["type"].as_str(), Some("prometheus"));
    assert_eq!(ds["url"].as_str(), Some("http://prometheus:9090"));
    let dashboard = Dashboard::project().unwrap();
    let default = &dashboard.json()["templating"]["list"][0]["current"]["value"];
    assert_eq!(
        ds["uid"].as_str(),
        default.as_str(),
        "the datasource variable's default"
    );

    let providers = yaml("dashboards/rsky.yml");
    assert_eq!(
        providers["providers"][0]["options"]["path"].as_str(),
        Some("/var/lib/grafana/dashboards")
    );
}
