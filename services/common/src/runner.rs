//! The one service skeleton: a `main.rs` is a call to [`main`] with the service's name, its
//! [`Settings`], its metric set and the function that runs it.
//!
//! [`main`] gives every service the same command line and lifecycle:
//! - settings from flags and environment variables (`--help` lists each with its variable and
//!   default; `--version`); a bad value exits 2 with one line naming the variable and value;
//! - `METRICS_ADDR`, `METRICS_PORT` (the `/metrics` server) and `LOG_FORMAT` (`text`, or `json`
//!   for one JSON object per line), shared by every service; logs go to stderr, filtered by
//!   `RUST_LOG` (default `info`);
//! - the `/metrics` server's limits on slow clients, `METRICS_HEADER_TIMEOUT_MS`,
//!   `METRICS_IDLE_TIMEOUT_MS`, `METRICS_REQUEST_TIMEOUT_MS` and `METRICS_MAX_CONNECTIONS`
//!   (defaults: the runtime's, 5 s, 75 s, 30 s and 64);
//! - the metric set registered in a registry of its own, served on `/metrics` and `/health`,
//!   handed to the service as an `Arc`;
//! - SIGINT/SIGTERM cancel the [`Shutdown`] token; the service drains and returns;
//! - exit 0 on a clean stop, 1 on a runtime failure (including a `/metrics` port that cannot be
//!   bound), 2 on a bad setting or command line;
//! - a `health` subcommand: `GET /health` on the service's own metrics port with a short
//!   timeout, exit 0 on 200, else 1 with a message (what a container HEALTHCHECK calls);
//! - a `replay-dead-letters` subcommand: moves dead-lettered entries back onto their stream, or
//!   lists them with `--dry-run` ([`crate::dead_letter`]); exit 0, or 1 naming what failed;
//! - variables a service renamed ([`Settings::RENAMED`]) are still read under their old names,
//!   with a warning naming the new one.
//!
//! The runner keeps no setting for later: what the pipeline needs (Redis, the stream worker,
//! dead letters: [`crate::pipeline`]) is part of the service's own settings and reaches its code
//! as fields and arguments.
//!
//! The health probe is a hand-written HTTP/1.1 request over `std::net::TcpStream`: one request
//! to loopback, with connect, read and write timeouts, needs neither a runtime nor an HTTP client
//! dependency in every image.

use std::fmt::Display;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, FromArgMatches, Subcommand, ValueEnum};
use rsky_metrics_runtime::{MetricSet, MetricsServer, Registry};

use crate::config::{at_least, config_error, env_names, millis_at_least, renamed_values, Settings};
use crate::shutdown::{on_signal, Shutdown};

/// What a service tells the runner about itself.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    /// The binary's name (`ingester`).
    pub name: &'static str,
    /// Its version (`env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// The `/metrics` port unless `METRICS_PORT` says otherwise.
    pub metrics_port: u16,
}

/// The log line format (`LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`, `span`).
    Json,
}

/// The settings every service has.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// The address the /metrics server listens on.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0")]
    pub metrics_addr: IpAddr,
    /// The /metrics port (also what `health` asks).
    #[arg(long, env = "METRICS_PORT", value_parser = at_least(1u16))]
    pub metrics_port: u16,
    /// A /metrics connection that has not sent a complete request head within this time is
    /// closed (ms).
    #[arg(long = "metrics-header-timeout-ms", env = "METRICS_HEADER_TIMEOUT_MS", default_value = "5000", value_parser = millis_at_least(1))]
    pub metrics_header_timeout: Duration,
    /// A kept-alive /metrics connection without a new request for this long is closed (ms; more
    /// than the scrape interval).
    #[arg(long = "metrics-idle-timeout-ms", env = "METRICS_IDLE_TIMEOUT_MS", default_value = "75000", value_parser = millis_at_least(1))]
    pub metrics_idle_timeout: Duration,
    /// A /metrics request not answered and taken by its client within this time is closed (ms).
    #[arg(long = "metrics-request-timeout-ms", env = "METRICS_REQUEST_TIMEOUT_MS", default_value = "30000", value_parser = millis_at_least(1))]
    pub metrics_request_timeout: Duration,
    /// /metrics connections held at once; one beyond them is closed at once.
    #[arg(long, env = "METRICS_MAX_CONNECTIONS", default_value_t = rsky_metrics_runtime::DEFAULT_MAX_CONNECTIONS, value_parser = at_least(1usize))]
    pub metrics_max_connections: usize,
    /// Log lines as text, or as one JSON object per line.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        ignore_case = true
    )]
    pub log_format: LogFormat,
}

#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
enum Command {
    /// GET /health on this service's metrics port: exit 0 if it answers 200, else 1.
    Health {
        /// How long the probe waits, connect and answer each.
        #[arg(long, default_value = "2000", value_parser = crate::config::millis_at_least(1))]
        timeout_ms: Duration,
    },
    ReplayDeadLetters(crate::dead_letter::ReplayArgs),
}

const AFTER_HELP: &str = "Every setting is a flag or the environment variable in brackets; a flag \
wins over its variable. RUST_LOG filters the logs (default info); logs go to stderr.";

/// The service's command line: its settings, the common ones and `health`.
pub fn command<C: Settings>(service: &Service) -> clap::Command {
    let command = clap::Command::new(service.name);
    let command = Command::augment_subcommands(C::augment_args(Common::augment_args(command)));
    // After the settings, whose doc comment would otherwise become the about line.
    command
        .version(service.version)
        .about(service.about)
        .long_about(None::<&'static str>)
        .after_help(AFTER_HELP)
        .mut_subcommand("replay-dead-letters", |replay| {
            replay.after_help(crate::dead_letter::examples(service.name))
        })
        .mut_arg("metrics_port", |arg| {
            arg.default_value(service.metrics_port.to_string())
                .required(false)
        })
        .mut_args(name_value_by_variable)
}

/// "--batch-size <INGESTER_BATCH_SIZE>": help and errors name the variable.
fn name_value_by_variable(arg: clap::Arg) -> clap::Arg {
    match arg.get_env() {
        Some(env) => {
            let env = env.to_string_lossy().into_owned();
            arg.value_name(env)
        }
        None => arg,
    }
}

/// What a clap error means: help or version (printed, exit 0), a bad value (one line naming the
/// variable, exit 2), or another usage error (clap's message, exit 2).
fn usage_exit(name: &str, err: &clap::Error, vars: &[(String, String)]) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            eprintln!("{name}: {}", config_error(err, vars));
            ExitCode::from(2)
        }
        _ => {
            let _ = err.print();
            ExitCode::from(2)
        }
    }
}

/// Parses the command line and the environment, then runs the service (or `health`): what a
/// service's `main` returns.
pub fn main<C, S, F, Fut, E>(service: Service, run: F) -> ExitCode
where
    C: Settings,
    S: MetricSet,
    F: FnOnce(C, Arc<S>, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    // A blank variable counts as unset, as it always has; clap would read it as a value. This
    // runs before any thread is started, so changing the environment here is sound.
    for (_, var) in env_names(&command::<C>(&service)) {
        if std::env::var_os(&var).is_some_and(|value| value.to_string_lossy().trim().is_empty()) {
            std::env::remove_var(&var);
        }
    }
    let lookup = |var: &str| std::env::var_os(var).map(|v| v.to_string_lossy().into_owned());
    let renamed = match renamed_values(C::RENAMED, lookup) {
        Ok(renamed) => renamed,
        Err(err) => {
            eprintln!("{}: {err}", service.name);
            return ExitCode::from(2);
        }
    };
    for rename in &renamed {
        if let Some(value) = &rename.value {
            std::env::set_var(rename.new, value);
        }
    }
    let (common, settings, subcommand) = match parse::<C, _, _>(&service, std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    match subcommand {
        Some(Command::Health { timeout_ms }) => {
            return match probe_health(common.metrics_addr, common.metrics_port, timeout_ms) {
                Ok(target) => {
                    println!("{}: healthy ({target})", service.name);
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("{}: unhealthy: {message}", service.name);
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::ReplayDeadLetters(args)) => return replay_dead_letters(&service, &args),
        None => {}
    }
    init_tracing(common.log_format);
    for rename in &renamed {
        tracing::warn!(variable = rename.new, "{}", rename.warning);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve::<C, S, F, Fut, E>(service, common, settings, run))
}

/// Settings alone, for a tool that is not a service (the test relay and PDS): `--help`, then the
/// settings from flags and the environment; a bad value exits 2 with one line naming it.
pub fn settings_or_exit<C: Settings>(name: &'static str, about: &'static str) -> C {
    let command = C::augment_args(clap::Command::new(name))
        .about(about)
        .long_about(None::<&'static str>)
        .mut_args(name_value_by_variable);
    let vars = env_names(&command);
    let parsed = command
        .try_get_matches()
        .and_then(|matches| C::from_arg_matches(&matches));
    let settings = match parsed {
        Ok(settings) => settings,
        Err(err) => {
            let code = usage_exit(name, &err, &vars);
            std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 2 })
        }
    };
    if let Err(err) = settings.check() {
        eprintln!("{name}: {err}");
        std::process::exit(2);
    }
    settings
}

/// `replay-dead-letters`: one line per entry and a summary on stdout, a failure on stderr.
fn replay_dead_letters(service: &Service, args: &crate::dead_letter::ReplayArgs) -> ExitCode {
    use crate::dead_letter::{replay_at, report_line, summary_line};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{}: cannot start the async runtime: {err}", service.name);
            return ExitCode::FAILURE;
        }
    };
    let replayed = runtime.block_on(replay_at(args, |letter, outcome| {
        println!("{}", report_line(letter, outcome));
    }));
    match replayed {
        Ok(summary) => {
            println!("{}", summary_line(args, &summary));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{}: replay-dead-letters stopped: {err}", service.name);
            ExitCode::FAILURE
        }
    }
}

fn parse<C: Settings, I, T>(
    service: &Service,
    args: I,
) -> Result<(Common, C, Option<Command>), ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let command = command::<C>(service);
    let vars = env_names(&command);
    let bad_setting = |err: &clap::Error| usage_exit(service.name, err, &vars);
    let matches = command
        .try_get_matches_from(args)
        .map_err(|err| bad_setting(&err))?;
    let common = Common::from_arg_matches(&matches).map_err(|err| bad_setting(&err))?;
    let settings = C::from_arg_matches(&matches).map_err(|err| bad_setting(&err))?;
    if let Err(err) = settings.check() {
        eprintln!("{}: {err}", service.name);
        return Err(ExitCode::from(2));
    }
    let subcommand = Command::from_arg_matches(&matches).ok();
    Ok((common, settings, subcommand))
}

async fn serve<C, S, F, Fut, E>(service: Service, common: Common, settings: C, run: F) -> ExitCode
where
    C: Settings,
    S: MetricSet,
    F: FnOnce(C, Arc<S>, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let registry = Registry::new();
    let metrics = match S::register(&registry) {
        Ok(metrics) => Arc::new(metrics),
        Err(err) => {
            tracing::error!(error = %err, "cannot register the metrics");
            return ExitCode::FAILURE;
        }
    };
    let addr = SocketAddr::new(common.metrics_addr, common.metrics_port);
    let server = match MetricsServer::for_set::<S>()
        .registry(registry)
        .listen(addr)
        .version(service.version)
        .header_read_timeout(common.metrics_header_timeout)
        .idle_timeout(common.metrics_idle_timeout)
        .request_timeout(common.metrics_request_timeout)
        .max_connections(common.metrics_max_connections)
        .bind()
        .await
    {
        Ok(server) => server.spawn(),
        Err(err) => {
            tracing::error!(error = %err, "cannot serve /metrics");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(service = service.name, version = service.version, metrics = %server.local_addr(), "starting");
    let shutdown = on_signal();
    let result = run(settings, metrics, shutdown).await;
    if let Err(err) = server.shutdown().await {
        tracing::warn!(error = %err, "the /metrics server did not stop cleanly");
    }
    match result {
        Ok(()) => {
            tracing::info!(service = service.name, "stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(service = service.name, error = %err, "stopped on a failure");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or one JSON object per line.
/// Calling it twice is harmless (the first wins).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// `GET /health` on the metrics port: `Ok(target)` on a 200 answer, else what went wrong.
/// An unspecified `addr` (`0.0.0.0`, `::`) is asked on loopback.
pub fn probe_health(addr: IpAddr, port: u16, timeout: Duration) -> Result<String, String> {
    let ip = match addr {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let target = SocketAddr::new(ip, port);
    let url = format!("http://{target}/health");
    let mut stream = TcpStream::connect_timeout(&target, timeout)
        .map_err(|err| format!("GET {url}: cannot connect: {err}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|err| format!("GET {url}: {err}"))?;
    // One write: a request in fragments is a request in several segments.
    let request = format!("GET /health HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|err| format!("GET {url}: cannot send: {err}"))?;
    let mut status = String::new();
    BufReader::new(stream.take(1024))
        .read_line(&mut status)
        .map_err(|err| format!("GET {url}: no answer: {err}"))?;
    let status = status.trim();
    let code = status.split_whitespace().nth(1);
    if status.starts_with("HTTP/") && code == Some("200") {
        Ok(url)
    } else if status.is_empty() {
        Err(format!(
            "GET {url}: the connection closed without an answer"
        ))
    } else {
        Err(format!("GET {url} answered {status:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[derive(Args, Debug)]
    struct Demo {
        /// Entries per read.
        #[arg(long, env = "DEMO_BATCH_SIZE", default_value = "500", value_parser = at_least(1usize))]
        batch_size: usize,
    }
    impl Settings for Demo {}

    const DEMO: Service = Service {
        name: "demo",
        version: "1.2.3",
        about: "a demo service",
        metrics_port: 4999,
    };

    fn parsed(args: &[&str]) -> Result<(Common, Demo, Option<Command>), ExitCode> {
        parse::<Demo, _, _>(&DEMO, std::iter::once("demo").chain(args.iter().copied()))
    }

    #[test]
    fn help_names_every_variable_with_its_default() {
        let help = command::<Demo>(&DEMO).render_long_help().to_string();
        for needle in [
            "DEMO_BATCH_SIZE",
            "[default: 500]",
            "METRICS_PORT",
            "[default: 4999]",
            "METRICS_ADDR",
            "LOG_FORMAT",
            "RUST_LOG",
            "health",
            "replay-dead-letters",
            "METRICS_HEADER_TIMEOUT_MS",
            "METRICS_IDLE_TIMEOUT_MS",
            "METRICS_REQUEST_TIMEOUT_MS",
            "METRICS_MAX_CONNECTIONS",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
        for (var, default) in [
            ("METRICS_HEADER_TIMEOUT_MS", "5000"),
            ("METRICS_IDLE_TIMEOUT_MS", "75000"),
            ("METRICS_REQUEST_TIMEOUT_MS", "30000"),
            ("METRICS_MAX_CONNECTIONS", "64"),
        ] {
            let at = help
                .find(&format!("[env: {var}="))
                .unwrap_or_else(|| panic!("{var} missing from:\n{help}"));
            let next = help[at..].lines().nth(1).unwrap_or_default();
            assert_eq!(next.trim(), format!("[default: {default}]"), "{var}");
        }
    }

    #[test]
    fn the_metrics_server_limits_default_to_the_runtimes_and_a_flag_overrides_them() {
        let (common, _, _) = parsed(&[]).unwrap_or_else(|_| panic!("parses"));
        assert_eq!(
            common.metrics_header_timeout,
            rsky_metrics_runtime::DEFAULT_HEADER_READ_TIMEOUT
        );
        assert_eq!(
            common.metrics_idle_timeout,
            rsky_metrics_runtime::DEFAULT_IDLE_TIMEOUT
        );
        assert_eq!(
            common.metrics_request_timeout,
            rsky_metrics_runtime::DEFAULT_REQUEST_TIMEOUT
        );
        assert_eq!(
            common.metrics_max_connections,
            rsky_metrics_runtime::DEFAULT_MAX_CONNECTIONS
        );
        let (common, _, _) = parsed(&[
            "--metrics-header-timeout-ms",
            "250",
            "--metrics-idle-timeout-ms",
            "1000",
            "--metrics-request-timeout-ms",
            "2000",
            "--metrics-max-connections",
            "3",
        ])
        .unwrap_or_else(|_| panic!("parses"));
        assert_eq!(common.metrics_header_timeout, Duration::from_millis(250));
        assert_eq!(common.metrics_idle_timeout, Duration::from_secs(1));
        assert_eq!(common.metrics_request_timeout, Duration::from_secs(2));
        assert_eq!(common.metrics_max_connections, 3);
        for flag in [
            "--metrics-header-timeout-ms",
            "--metrics-idle-timeout-ms",
            "--metrics-request-timeout-ms",
            "--metrics-max-connections",
        ] {
            assert_eq!(
                parsed(&[flag, "0"]).err(),
                Some(ExitCode::from(2)),
                "{flag}"
            );
        }
    }

    #[test]
    fn flags_override_defaults_and_health_is_a_subcommand() {
        let (common, demo, health) = parsed(&["--batch-size", "7", "--metrics-port", "5000"])
            .unwrap_or_else(|_| panic!("parses"));
        assert_eq!(demo.batch_size, 7);
        assert_eq!(common.metrics_port, 5000);
        assert!(health.is_none());
        let (_, _, health) =
            parsed(&["health", "--timeout-ms", "300"]).unwrap_or_else(|_| panic!("parses"));
        assert_eq!(
            health,
            Some(Command::Health {
                timeout_ms: Duration::from_millis(300)
            })
        );
    }

    #[test]
    fn replay_dead_letters_is_a_subcommand_with_its_own_options() {
        let (_, _, replay) = parsed(&[
            "replay-dead-letters",
            "--stream",
            "firehose_live_dlq",
            "--dry-run",
            "--count",
            "10",
            "--redis-url",
            "redis://127.0.0.1:7000",
        ])
        .unwrap_or_else(|_| panic!("parses"));
        let Some(Command::ReplayDeadLetters(args)) = replay else {
            panic!("not the replay: {replay:?}");
        };
        assert_eq!(args.stream, "firehose_live_dlq");
        assert!(args.dry_run);
        assert_eq!(args.count, Some(10));
        assert_eq!(args.to, None);
        assert_eq!(args.redis_url, "redis://127.0.0.1:7000");
        assert_eq!(
            parsed(&["replay-dead-letters"]).err(),
            Some(ExitCode::from(2)),
            "--stream is required"
        );
        assert_eq!(
            parsed(&["replay-dead-letters", "--stream", "s_dlq", "--count", "0"]).err(),
            Some(ExitCode::from(2))
        );
    }

    #[test]
    fn the_replay_help_names_every_option() {
        let mut command = command::<Demo>(&DEMO);
        let replay = command
            .find_subcommand_mut("replay-dead-letters")
            .unwrap_or_else(|| panic!("no replay-dead-letters subcommand"));
        let help = replay.render_long_help().to_string();
        for needle in [
            "--stream",
            "--to",
            "--count",
            "--dry-run",
            "--reason-contains",
            "REDIS_URL",
            "--timeout-ms",
            "loses nothing",
            "demo replay-dead-letters --stream STREAM_dlq --dry-run",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }

    #[test]
    fn a_bad_value_exits_2() {
        assert_eq!(
            parsed(&["--batch-size", "0"]).err(),
            Some(ExitCode::from(2))
        );
        assert_eq!(parsed(&["--no-such-flag"]).err(), Some(ExitCode::from(2)));
    }

    #[test]
    fn health_is_ok_on_200_and_names_the_answer_otherwise() {
        let serve_once = |answer: &'static str| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            std::thread::spawn(move || {
                if let Ok((mut conn, _)) = listener.accept() {
                    // The whole request, so that closing does not reset the connection.
                    let mut request = Vec::new();
                    let mut buf = [0u8; 512];
                    while !request.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = conn.write_all(answer.as_bytes());
                }
            });
            port
        };
        let local = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let timeout = Duration::from_secs(2);
        let port = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert!(probe_health(local, port, timeout).is_ok());
        let port = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let err = probe_health(local, port, timeout).unwrap_err();
        assert!(err.contains("503"), "{err}");
        // A port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = probe_health(local, port, timeout).unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }
}
