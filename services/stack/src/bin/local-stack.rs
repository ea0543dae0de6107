//! `local-stack`: the whole pipeline on this machine, without Docker, scraped by a real
//! Prometheus; prints the URLs and stops everything on Ctrl-C.
//!
//! ```text
//! cargo run -p rsky-stack --bin local-stack
//! ```
//!
//! Needs Redis and PostgreSQL running (`REDIS_URL`, default `redis://127.0.0.1:6379`;
//! `DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`, through which the
//! database `rsky_local_stack` is created) and `prometheus` on the PATH. It builds the services'
//! binaries and the test relay and test PDS first (all of them run as processes). Settings:
//! `LOCAL_STACK_PROMETHEUS_PORT` (9090), `LOCAL_STACK_SCRAPE_INTERVAL_SECONDS` (15), `LOCAL_STACK_RATE` (firehose events per
//! second, 100), `LOCAL_STACK_BACKFILLERS` (2), `LOCAL_STACK_INDEXERS` (2),
//! `LOCAL_STACK_DIR` (logs and Prometheus data, default `target/local-stack`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use rsky_stack::local::{build_service_binaries, sibling_bin_dir, LocalStack, StackOptions};

fn number<T: std::str::FromStr>(var: &str, default: T) -> Result<T, String> {
    match std::env::var(var) {
        Err(_) => Ok(default),
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{var}={value:?} is not a valid number")),
    }
}

fn options() -> Result<StackOptions, String> {
    let bin_dir = sibling_bin_dir()
        .ok_or("cannot find the directory of this executable (where the services are built)")?;
    let work_dir = std::env::var("LOCAL_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| rsky_stack::workspace_root().join("target/local-stack"));
    let mut options = StackOptions::demo(bin_dir, work_dir);
    if let Ok(url) = std::env::var("REDIS_URL") {
        options.redis_url = url;
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        options.database_url = url;
    }
    let port: u16 = number("LOCAL_STACK_PROMETHEUS_PORT", 9090)?;
    options.prometheus_addr = SocketAddr::from(([127, 0, 0, 1], port));
    options.scrape_interval =
        Duration::from_secs(number("LOCAL_STACK_SCRAPE_INTERVAL_SECONDS", 15u64)?.max(1));
    options.relay_rate = number("LOCAL_STACK_RATE", options.relay_rate)?;
    options.backfillers = number("LOCAL_STACK_BACKFILLERS", options.backfillers)?;
    options.indexers = number("LOCAL_STACK_INDEXERS", options.indexers)?.max(1);
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("local-stack: {err}");
            return ExitCode::from(2);
        }
    };
    eprintln!("local-stack: building the services, the test relay and the test PDS ...");
    if let Err(err) = build_service_binaries(&options.bin_dir) {
        eprintln!("local-stack: {err}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "local-stack: starting (logs in {})",
        options.work_dir.display()
    );
    let mut stack = match LocalStack::start(options).await {
        Ok(stack) => stack,
        Err(err) => {
            eprintln!("local-stack: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("The rsky pipeline is running:");
    for (what, url) in stack.urls() {
        println!("  {what:<28} {url}");
    }
    println!("Ctrl-C stops everything.");

    let mut failed = None;
    let mut check = tokio::time::interval(Duration::from_secs(2));
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(err) => {
                eprintln!("local-stack: cannot listen for SIGTERM: {err}");
                return ExitCode::FAILURE;
            }
        };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = check.tick() => {
                if let Err(err) = stack.check_running() {
                    failed = Some(err);
                    break;
                }
            }
        }
    }
    if let Some(err) = &failed {
        eprintln!("local-stack: {err}");
    }
    eprintln!("local-stack: stopping ...");
    for (name, outcome) in stack.stop().await {
        eprintln!("  {name:<12} {outcome}");
    }
    if failed.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
