//! docker-compose.prod-rust.yml and .env.example: the compose file validates with Debian's
//! docker-compose, has the production layout, publishes on loopback only, checks every service's
//! health, and holds no credential. (services/Dockerfile: tests/dockerfile.rs.)

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
    rendered_with(test, env, &[])
}

/// `docker-compose [global options] config`, parsed.
fn rendered_with(test: &str, env: &str, options: &[&str]) -> Value {
    let mut args = options.to_vec();
    args.push("config");
    let out = compose(&env_file(test, env), &args);
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

/// A service's published ports as `(host address, published, target)`, from either form
/// docker-compose prints (`"127.0.0.1:9091:9090/tcp"` or a mapping).
fn published_ports(service: &Value) -> Vec<(String, u64, u64)> {
    let mut ports = Vec::new();
    for port in service["ports"].as_sequence().into_iter().flatten() {
        if let Some(short) = port.as_str() {
            let short = short.split('/').next().unwrap_or(short);
            let parts: Vec<&str> = short.rsplitn(3, ':').collect();
            let (target, published, ip) = match parts.as_slice() {
                [t, p, ip] => (*t, *p, *ip),
                [t, p] => (*t, *p, ""),
                _ => panic!("port {short:?} publishes nothing"),
            };
            ports.push((
                ip.to_owned(),
                published.parse().expect("a published port"),
                target.parse().expect("a target port"),
            ));
        } else {
            ports.push((
                port["host_ip"].as_str().unwrap_or("").to_owned(),
                port["published"].as_u64().expect("a published port"),
                port["target"].as_u64().expect("a target port"),
            ));
        }
    }
    ports
}

#[test]
fn the_published_ports_are_the_production_layout() {
    let config = rendered("ports", &example_env());
    let mut published = BTreeMap::new();
    for (name, service) in config["services"].as_mapping().unwrap() {
        for (_, port, target) in published_ports(service) {
            published.insert(port, (name.as_str().unwrap().to_owned(), target));
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
fn ports_are_published_on_loopback_unless_publish_addr_widens_them() {
    let addresses = |config: &Value| -> Vec<(String, String)> {
        let mut all = Vec::new();
        for (name, service) in config["services"].as_mapping().unwrap() {
            for (ip, _, _) in published_ports(service) {
                all.push((name.as_str().unwrap().to_owned(), ip));
            }
        }
        all
    };
    let default = addresses(&rendered("loopback", &example_env()));
    assert_eq!(default.len(), 11, "{default:?}");
    for (name, ip) in &default {
        assert_eq!(ip, "127.0.0.1", "{name} is published on {ip:?}");
    }
    let widened = addresses(&rendered(
        "widened",
        &format!("{}\nPUBLISH_ADDR=0.0.0.0\n", example_env()),
    ));
    for (name, ip) in &widened {
        assert_eq!(ip, "0.0.0.0", "{name}");
    }
}

#[test]
fn every_service_has_a_health_check_and_waits_for_healthy_dependencies() {
    let config = rendered_with("health", &example_env(), &["--profile", "longterm"]);
    let services = config["services"].as_mapping().unwrap();
    assert!(services.len() >= 14, "{} services", services.len());
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let test = service["healthcheck"]["test"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has no healthcheck"));
        assert!(
            matches!(test[0].as_str(), Some("CMD" | "CMD-SHELL")),
            "{name}: {test:?}"
        );
        assert!(
            service["healthcheck"]["timeout"].is_string(),
            "{name}: no timeout"
        );
        for (dependency, condition) in service["depends_on"].as_mapping().into_iter().flatten() {
            assert_eq!(
                condition["condition"].as_str(),
                Some("service_healthy"),
                "{name} -> {dependency:?}"
            );
        }
    }
    // The Rust services are checked by their own binary (no curl in the image).
    for name in ["ingester", "backfiller1", "indexer6"] {
        let binary = name.trim_end_matches(char::is_numeric);
        let test: Vec<&str> = config["services"][name]["healthcheck"]["test"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(test, ["CMD", &format!("/usr/local/bin/{binary}"), "health"]);
    }
    let depends = |name: &str| -> Vec<String> {
        config["services"][name]["depends_on"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, _)| k.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(depends("ingester"), ["redis"]);
    assert_eq!(depends("backfiller2"), ["redis"]);
    assert_eq!(depends("indexer3"), ["postgres", "redis"]);
    assert_eq!(depends("grafana"), ["prometheus"]);
}

#[test]
fn prometheus_has_no_lifecycle_or_admin_api() {
    let config = rendered_with(
        "prometheus-apis",
        &example_env(),
        &["--profile", "longterm"],
    );
    for name in ["prometheus", "longterm"] {
        let command: Vec<&str> = config["services"][name]["command"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name}: no command"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for flag in ["--web.enable-lifecycle", "--web.enable-admin-api"] {
            assert!(!command.contains(&flag), "{name} enables {flag}");
        }
    }
    // The long-term store is reached by Prometheus only, on the compose network.
    assert!(published_ports(&config["services"]["longterm"]).is_empty());
}

#[test]
fn redis_bounds_its_memory_and_never_evicts_the_streams() {
    let config = rendered("redis", &example_env());
    let command: Vec<&str> = config["services"]["redis"]["command"]
        .as_sequence()
        .expect("a redis command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let after = |flag: &str| {
        command
            .iter()
            .position(|c| *c == flag)
            .and_then(|i| command.get(i + 1).copied())
    };
    assert_eq!(after("--maxmemory-policy"), Some("noeviction"));
    assert_eq!(after("--maxmemory"), Some("2gb"));
    assert!(published_ports(&config["services"]["redis"]).is_empty());
    assert!(published_ports(&config["services"]["postgres"]).is_empty());
}

#[test]
fn the_service_blocks_are_folded_with_extension_fields() {
    let text = std::fs::read_to_string(workspace_root().join(COMPOSE_FILE)).unwrap();
    // The build, health, and per-kind blocks are written once.
    for anchor in [
        "&build",
        "&rust-service",
        "&health",
        "&backfiller",
        "&indexer",
        "&prometheus",
    ] {
        assert!(text.contains(anchor), "no {anchor} extension field");
    }
    assert_eq!(
        text.matches("dockerfile:").count(),
        1,
        "the Dockerfile is named more than once"
    );
    assert_eq!(text.matches("stop_grace_period").count(), 1);
    assert_eq!(text.matches("/usr/local/bin/indexer").count(), 1);
    // Every instance of a kind is its own consumer and port, nothing more.
    let config = rendered("folded", &example_env());
    for i in 1..=6 {
        let name = format!("indexer{i}");
        assert_eq!(
            config["services"][name.as_str()]["build"]["target"].as_str(),
            Some("indexer"),
            "{name}"
        );
    }
}

#[test]
fn grafana_is_the_version_the_dashboard_is_type_checked_against() {
    let package: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("grafana/dashboard-src/package.json"))
            .unwrap(),
    )
    .expect("package.json");
    let schema = package["devDependencies"]["@grafana/schema"]
        .as_str()
        .expect("@grafana/schema in devDependencies");
    let config = rendered("grafana-version", &example_env());
    let image = config["services"]["grafana"]["image"].as_str().unwrap();
    let tag = image
        .strip_prefix("grafana/grafana:")
        .unwrap_or_else(|| panic!("{image} is not grafana/grafana"));
    let major_minor = |v: &str| -> (u32, u32) {
        let v = v.trim_start_matches(['^', '~', '=']);
        let mut parts = v.split('.').map(|p| p.parse::<u32>());
        match (parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
            _ => panic!("{v:?} is not a MAJOR.MINOR version"),
        }
    };
    assert_eq!(
        major_minor(tag),
        major_minor(schema),
        "compose deploys Grafana {tag}; the dashboard is checked against @grafana/schema {schema}"
    );
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
fn dead_letter_streams_are_bounded_in_the_services_that_write_them() {
    let config = rendered("dead-letters", &example_env());
    for name in ["backfiller1", "backfiller2", "indexer1", "indexer6"] {
        assert_eq!(
            config["services"][name]["environment"]["DEAD_LETTER_MAX_LEN"].as_str(),
            Some("100000"),
            "{name}"
        );
    }
    let config = rendered(
        "dead-letters-set",
        &format!("{}\nDEAD_LETTER_MAX_LEN=5000\n", example_env()),
    );
    assert_eq!(
        config["services"]["indexer3"]["environment"]["DEAD_LETTER_MAX_LEN"].as_str(),
        Some("5000")
    );
}
