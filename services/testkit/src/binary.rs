//! Checks every service binary passes, written once: `--help` lists each setting with its
//! variable and default, `--version`, a bad value exits 2 naming it, `health`, SIGTERM, and
//! JSON log lines.

use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Asserts that `bin --help` exits 0 and lists every `(variable, default)` (a `None` default:
/// listed, no default shown), plus `RUST_LOG` and the `health` subcommand.
pub fn assert_help_lists(bin: &str, settings: &[(&str, Option<&str>)]) {
    let output = Command::new(bin)
        .arg("--help")
        .output()
        .unwrap_or_else(|err| panic!("run {bin} --help: {err}"));
    assert_eq!(output.status.code(), Some(0), "{bin} --help");
    let help = String::from_utf8_lossy(&output.stdout);
    for (var, default) in settings {
        let at = help
            .find(&format!("[env: {var}="))
            .unwrap_or_else(|| panic!("{var} is not in --help:\n{help}"));
        if let Some(default) = default {
            let next = help[at..].lines().nth(1).unwrap_or_default();
            assert_eq!(next.trim(), format!("[default: {default}]"), "{var}");
        }
    }
    for needle in [
        "health",
        "RUST_LOG",
        "[env: LOG_FORMAT=",
        "[env: METRICS_PORT=",
    ] {
        assert!(help.contains(needle), "{needle} is not in --help:\n{help}");
    }
}

/// Asserts that `bin --version` prints `{name} {version}` and exits 0.
pub fn assert_version(bin: &str, name: &str, version: &str) {
    let output = Command::new(bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|err| panic!("run {bin} --version: {err}"));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("{name} {version}")
    );
}

/// Asserts that `bin` with `var=value` exits 2 with the one line `expected` on stderr.
pub fn assert_bad_value(bin: &str, var: &str, value: &str, expected: &str) {
    let output = Command::new(bin)
        .env(var, value)
        .output()
        .unwrap_or_else(|err| panic!("run {bin}: {err}"));
    assert_eq!(output.status.code(), Some(2), "{var}={value}");
    assert_eq!(String::from_utf8_lossy(&output.stderr).trim(), expected);
}

/// Runs `bin health` against `port`.
pub fn health(bin: &str, port: u16) -> Output {
    Command::new(bin)
        .arg("health")
        .env("METRICS_ADDR", "127.0.0.1")
        .env("METRICS_PORT", port.to_string())
        .output()
        .unwrap_or_else(|err| panic!("run {bin} health: {err}"))
}

/// Waits (polling `bin health`) until the service on `port` answers 200.
pub async fn wait_healthy(bin: &str, port: u16, within: Duration) {
    let bin = bin.to_owned();
    crate::support::wait_until(within, "health answers 200", || {
        let bin = bin.clone();
        async move {
            tokio::task::spawn_blocking(move || health(&bin, port).status.code() == Some(0))
                .await
                .unwrap_or(false)
        }
    })
    .await;
}

/// Sends SIGTERM to `child` and waits (at most `within`) for it to exit; returns its output.
pub async fn terminate(child: Child, within: Duration) -> Output {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -TERM {}", child.id());
    let started = Instant::now();
    let waited = tokio::time::timeout(
        within,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .unwrap_or_else(|_| panic!("no exit within {within:?} of SIGTERM"));
    let output = waited
        .expect("the waiting task")
        .expect("wait for the child");
    tracing::debug!(elapsed = ?started.elapsed(), "child exited");
    output
}

/// Asserts that every line of `logs` is one JSON object with a `level`, and that there is one.
pub fn assert_json_lines(logs: &[u8]) {
    let logs = String::from_utf8_lossy(logs);
    assert!(logs.lines().count() >= 1, "no log lines");
    for line in logs.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert!(object["level"].is_string(), "no level: {line}");
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts `bin` with `env` (plus a free metrics port, `LOG_FORMAT=json`, `RUST_LOG=info`) and
/// checks the lifecycle every service shares: `health` fails before it runs (naming the URL),
/// answers 200 while it runs, SIGTERM stops it with exit 0, every log line is one JSON object,
/// and `health` fails again afterwards.
pub async fn assert_serves_health_and_stops_on_sigterm(
    bin: &str,
    name: &str,
    env: &[(&str, String)],
) {
    let port = free_port();
    let before = health(bin, port);
    assert_eq!(before.status.code(), Some(1), "health before start");
    let message = String::from_utf8_lossy(&before.stderr);
    assert!(
        message.starts_with(&format!(
            "{name}: unhealthy: GET http://127.0.0.1:{port}/health"
        )),
        "{message}"
    );
    let child = Command::new(bin)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("METRICS_ADDR", "127.0.0.1")
        .env("METRICS_PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("start {bin}: {err}"));
    wait_healthy(bin, port, Duration::from_secs(30)).await;
    let output = terminate(child, Duration::from_secs(20)).await;
    assert_eq!(output.status.code(), Some(0), "exit after SIGTERM");
    assert_json_lines(&output.stderr);
    assert_eq!(
        health(bin, port).status.code(),
        Some(1),
        "health after stop"
    );
}
