//! The quickstart, run as a newcomer runs it: it serves every declared metric from the first
//! scrape, its live scrape passes `promtool check metrics`, its workload moves the counters, and
//! it stops cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use rsky_metrics_runtime::testing::assert_promtool_clean;

/// Builds the quickstart as `cargo run --example quickstart` does, into this test's target
/// directory, and returns its path. (`cargo test --all-targets` builds examples as test harnesses,
/// which are not the program a newcomer runs.)
fn quickstart_binary() -> PathBuf {
    let deps = std::env::current_exe().expect("the test binary's path");
    let profile_dir = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target/");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(&cargo);
    command
        .args([
            "build",
            "--quiet",
            "-p",
            "rsky-metrics-examples",
            "--example",
            "quickstart",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir);
    // The test's own CARGO_PKG_*/CARGO_MANIFEST_* variables would make build scripts that watch
    // them rerun; the nested build sees the environment a newcomer's shell has.
    for (name, _) in std::env::vars() {
        if (name.starts_with("CARGO_") || name.starts_with("__CARGO")) && name != "CARGO_HOME" {
            command.env_remove(name);
        }
    }
    let status = command.status().expect("run cargo build");
    assert!(
        status.success(),
        "cargo build --example quickstart failed: {status}"
    );
    profile_dir.join("examples").join("quickstart")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the quickstart");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

fn value(lines: &[String], series: &str) -> Option<f64> {
    lines
        .iter()
        .filter_map(|l| l.trim().rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn quickstart_serves_every_metric_passes_promtool_and_stops_cleanly() {
    let port = free_port();
    let mut child = Command::new(quickstart_binary())
        .env("METRICS_PORT", port.to_string())
        .env("QUICKSTART_RUN_SECONDS", "3")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the quickstart");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());

    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");
    assert!(
        first.contains(&url),
        "the first line names the URL: {first}"
    );

    let live = scrape(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_promtool_clean(&live);

    let rest: Vec<String> = stdout.lines().map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "the quickstart exited with {status}");
    assert_eq!(rest.last().map(String::as_str), Some("quickstart: stopped"));

    let split = rest
        .iter()
        .position(|l| l.starts_with("a scrape after"))
        .expect("the second scrape");
    let (first_scrape, after) = rest.split_at(split);
    for series in [
        "demo_requests_total",
        "demo_request_errors_total",
        "demo_requests_in_flight",
        "demo_queue_length",
        "demo_handle_seconds_count",
        "demo_legacy_events_total",
    ] {
        assert_eq!(
            value(first_scrape, series),
            Some(0.0),
            "{series} at zero on the first scrape: {first_scrape:?}"
        );
    }
    assert_eq!(
        value(first_scrape, "demo_build_info{version=\"0.1.0\"}"),
        Some(1.0)
    );
    let requests = value(after, "demo_requests_total").expect("requests after the workload");
    assert!(requests > 10.0, "the workload ran: {requests} requests");
    assert_eq!(
        value(after, "demo_handle_seconds_count"),
        Some(requests),
        "one duration per request"
    );
    assert_eq!(value(after, "demo_requests_in_flight"), Some(0.0));
}
