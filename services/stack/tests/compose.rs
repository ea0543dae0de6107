//! docker-compose.prod-rust.yml, .env.example and the services' Dockerfiles: the compose file
//! validates with Debian's docker-compose, has the production layout, and holds no credential.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use rsky_stack::tool::DOCKER_COMPOSE;
use rsky_stack::workspace_root;
use serde_yaml::Value;

const COMPOSE_FILE: &str = "docker-compose.prod-rust.yml";
const ENV_VARS: [&str; 5] = [
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "GRAFANA_ADMIN_USER",
    "GRAFANA_ADMIN_PASSWORD",
];

/// A scratch env file for one test.
fn env_file(test: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rsky-stack-compose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    let path = dir.join(format!("{test}.env"));
    std::fs::write(&path, contents).expect("write the env file");
    path
}

/// `docker-compose -f docker-compose.prod-rust.yml --env-file FILE <args>`, with none of the
/// credential variables inherited from the test's environment.
fn compose(env_file: &Path, args: &[&str]) -> Output {
    let root = workspace_root();
    let env_file = env_file.to_str().expect("a UTF-8 temp path");
    let mut all = vec!["-f", COMPOSE_FILE, "--env-file", env_file];
    all.extend_from_slice(args);
    let mut command = DOCKER_COMPOSE.command(&all, &root);
    for var in ENV_VARS {
        command.env_remove(var);
    }
    command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run docker-compose: {e}; install it from {}",
            DOCKER_COMPOSE.install
        )
    })
}

fn example_env() -> String {
    std::fs::read_to_string(workspace_root().join(".env.example")).expect(".env.example")
}

fn rendered(test: &str, env: &str) -> Value {
    let out = compose(&env_file(test, env), &["config"]);
    assert!(
        out.status.success(),
        "docker-compose config failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml::from_slice(&out.stdout).expect("docker-compose config prints YAML")
}

#[test]
fn the_compose_file_validates_with_a_copy_of_the_example_env_file() {
    let out = compose(&env_file("validates", &example_env()), &["config", "-q"]);
    assert!(
        out.status.success(),
        "docker-compose config -q failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn without_credentials_compose_refuses_and_says_where_to_set_them() {
    let out = compose(&env_file("empty", ""), &["config", "-q"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "compose accepted missing credentials"
    );
    assert!(
        stderr.contains("in .env (see .env.example)"),
        "the error does not say where to set them: {stderr}"
    );
}

#[test]
fn every_credential_comes_from_the_env_file() {
    let env = "POSTGRES_USER=u-7f3a\nPOSTGRES_PASSWORD=pw-postgres-7f3a\nPOSTGRES_DB=db-7f3a\n\
               GRAFANA_ADMIN_USER=g-7f3a\nGRAFANA_ADMIN_PASSWORD=pw-grafana-7f3a\n";
    let config = rendered("credentials", env);
    let services = &config["services"];
    assert_eq!(
        services["postgres"]["environment"]["POSTGRES_PASSWORD"].as_str(),
        Some("pw-postgres-7f3a")
    );
    assert_eq!(
        services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].as_str(),
        Some("pw-grafana-7f3a")
    );
    for i in 1..=6 {
        assert_eq!(
            services[format!("indexer{i}").as_str()]["environment"]["DATABASE_URL"].as_str(),
            Some("postgres://u-7f3a:pw-postgres-7f3a@postgres:5432/db-7f3a"),
            "indexer{i}"
        );
    }
    // And none is written in the compose file itself.
    let text = std::fs::read_to_string(workspace_root().join(COMPOSE_FILE)).unwrap();
    for line in example_env().lines().filter(|l| !l.starts_with('#')) {
        if let Some((var, value)) = line.split_once('=') {
            if var.contains("PASSWORD") {
                assert!(
                    !text.contains(value),
                    "{COMPOSE_FILE} contains {var}'s value"
                );
            }
        }
    }
}

#[test]
fn the_env_file_is_not_committed() {
    let ignore = std::fs::read_to_string(workspace_root().join(".gitignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l.trim() == ".env"),
        ".env is not in .gitignore"
    );
}

#[test]
fn the_published_ports_are_the_production_layout() {
    let config = rendered("ports", &example_env());
    let mut published = BTreeMap::new();
    for (name, service) in config["services"].as_mapping().unwrap() {
        for port in service["ports"].as_sequence().into_iter().flatten() {
            published.insert(
                port["published"].as_u64().expect("a published port"),
                (
                    name.as_str().unwrap().to_owned(),
                    port["target"].as_u64().unwrap(),
                ),
            );
        }
    }
    let mut expected = BTreeMap::from([
        (4100, ("ingester".to_owned(), 4100)),
        (9090, ("prometheus".to_owned(), 9090)),
        (3001, ("grafana".to_owned(), 3000)),
    ]);
    for i in 1..=2u64 {
        expected.insert(9090 + i, (format!("backfiller{i}"), 9090));
    }
    for i in 1..=6u64 {
        expected.insert(9092 + i, (format!("indexer{i}"), 9090));
    }
    assert_eq!(published, expected);
    for name in ["redis", "postgres"] {
        assert!(config["services"][name].is_mapping(), "no {name} service");
    }
}

#[test]
fn the_services_listen_where_prometheus_yml_scrapes_them() {
    let config = rendered("metrics-ports", &example_env());
    let services = config["services"].as_mapping().unwrap();
    let port_of = |name: &str| {
        services[name]["environment"]["METRICS_PORT"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(port_of("ingester").as_deref(), Some("4100"));
    for name in ["backfiller1", "backfiller2", "indexer1", "indexer6"] {
        assert_eq!(port_of(name).as_deref(), Some("9090"), "{name}");
    }
    // Each worker of a consumer group has its own consumer name.
    let consumer = |name: &str, var: &str| {
        services[name]["environment"][var]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(
        consumer("backfiller2", "BACKFILLER_CONSUMER").as_deref(),
        Some("backfiller2")
    );
    assert_eq!(
        consumer("indexer4", "INDEXER_CONSUMER").as_deref(),
        Some("indexer4")
    );
}

#[test]
fn prometheus_and_grafana_get_their_files_read_only() {
    let config = rendered("volumes", &example_env());
    let root = workspace_root();
    let volumes = |name: &str| -> Vec<String> {
        config["services"][name]["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let mount =
        |host: &str, container: &str| format!("{}:{container}:ro", root.join(host).display());
    let prometheus = volumes("prometheus");
    assert!(
        prometheus.contains(&mount("prometheus.yml", "/etc/prometheus/prometheus.yml")),
        "{prometheus:?}"
    );
    assert!(
        prometheus.contains(&mount("prometheus", "/etc/prometheus/prometheus")),
        "{prometheus:?}"
    );
    let grafana = volumes("grafana");
    assert!(
        grafana.contains(&mount("grafana/provisioning", "/etc/grafana/provisioning")),
        "{grafana:?}"
    );
    assert!(
        grafana.contains(&mount("grafana/dashboards", "/var/lib/grafana/dashboards")),
        "{grafana:?}"
    );
}

#[test]
fn each_service_dockerfile_builds_and_runs_its_own_binary() {
    let root = workspace_root();
    for (service, port) in [("ingester", 4100), ("backfiller", 9090), ("indexer", 9090)] {
        let dockerfile =
            std::fs::read_to_string(root.join(format!("services/{service}/Dockerfile")))
                .unwrap_or_else(|e| panic!("services/{service}/Dockerfile: {e}"));
        assert!(
            dockerfile.contains(&format!("-p rsky-{service} --bin {service}")),
            "services/{service}/Dockerfile does not build rsky-{service}'s {service} binary"
        );
        assert!(
            dockerfile.contains(&format!("EXPOSE {port}")),
            "{service}: EXPOSE {port}"
        );
        assert!(
            dockerfile.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{service}\"]")),
            "{service}: entrypoint"
        );
        // The binary the Dockerfile builds is the one the package declares.
        let manifest =
            std::fs::read_to_string(root.join(format!("services/{service}/Cargo.toml"))).unwrap();
        assert!(
            manifest.contains(&format!("name = \"rsky-{service}\"")),
            "{service}: package name"
        );
        assert!(
            manifest.contains(&format!("name = \"{service}\"")),
            "{service}: [[bin]] name"
        );
    }
}
