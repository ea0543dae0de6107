//! `test-relay`: a loopback relay emitting a steady, realistic firehose (for demos and load).
//!
//! ```text
//! TEST_RELAY_ADDR=127.0.0.1:2470 TEST_RELAY_RATE=500 cargo run -p rsky-testkit --bin test-relay
//! INGESTER_RELAY_HOSTS=ws://127.0.0.1:2470 cargo run -p rsky-ingester --bin ingester
//! ```
//!
//! - `TEST_RELAY_ADDR` (default `127.0.0.1:2470`): where to listen.
//! - `TEST_RELAY_RATE` (default `200`): events per second; `0` generates `TEST_RELAY_PRELOAD`
//!   events up front and then stays quiet.
//! - `TEST_RELAY_ACCOUNTS` (default `1000`): simulated accounts.
//! - `TEST_RELAY_PRELOAD` (default `0`): events in the log before the first subscriber.
//! - `TEST_RELAY_LOG_CAPACITY` (default `1000000`): frames kept for cursor resume.
//! - `TEST_RELAY_SEED` (default `1`): seed of the random mix.
//! - `TEST_RELAY_LIST_REPOS` (default `0`): accounts listed by `listRepos`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use rsky_common::config::{var_or, ConfigError, Env};
use rsky_testkit::load::LoadGenerator;
use rsky_testkit::relay::{ListedRepo, TestRelay};

struct Settings {
    addr: SocketAddr,
    rate: u64,
    accounts: usize,
    preload: usize,
    capacity: usize,
    seed: u64,
    list_repos: usize,
}

fn settings(env: &Env) -> Result<Settings, ConfigError> {
    Ok(Settings {
        addr: var_or(
            env,
            "TEST_RELAY_ADDR",
            SocketAddr::from(([127, 0, 0, 1], 2470)),
        )?,
        rate: var_or(env, "TEST_RELAY_RATE", 200)?,
        accounts: var_or(env, "TEST_RELAY_ACCOUNTS", 1000)?,
        preload: var_or(env, "TEST_RELAY_PRELOAD", 0)?,
        capacity: var_or(env, "TEST_RELAY_LOG_CAPACITY", 1_000_000)?,
        seed: var_or(env, "TEST_RELAY_SEED", 1)?,
        list_repos: var_or(env, "TEST_RELAY_LIST_REPOS", 0)?,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    rsky_common::startup::init_tracing();
    let settings = match settings(&Env::process()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("test-relay: {err}");
            return ExitCode::from(2);
        }
    };
    let relay = match TestRelay::start_with_capacity(settings.addr, settings.capacity).await {
        Ok(relay) => relay,
        Err(err) => {
            eprintln!("test-relay: cannot listen on {}: {err}", settings.addr);
            return ExitCode::from(2);
        }
    };
    relay.set_listed_repos(
        (0..settings.list_repos)
            .map(|i| ListedRepo {
                did: format!("did:plc:load{i:020}"),
                head: "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454".into(),
                rev: rsky_atproto::syntax::tid_from_parts(1_700_000_000_000_000 + i as u64, 0),
                active: true,
                status: None,
            })
            .collect(),
    );
    let mut load = LoadGenerator::new(settings.accounts, settings.seed);
    if settings.preload > 0 {
        match load.next_items(settings.preload) {
            Ok(items) => relay.push(items),
            Err(err) => {
                eprintln!("test-relay: cannot generate events: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    tracing::info!(url = %relay.ws_url(), rate = settings.rate, accounts = settings.accounts, "test relay serving subscribeRepos, listRepos and subscribeLabels");
    let shutdown = rsky_common::shutdown::on_signal();
    if settings.rate > 0 {
        // Emit in ticks of 10 ms so the stream is steady rather than bursty.
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut owed = 0.0f64;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            owed += settings.rate as f64 / 100.0;
            let n = owed as usize;
            owed -= n as f64;
            match load.next_items(n) {
                Ok(items) => relay.push(items),
                Err(err) => {
                    eprintln!("test-relay: cannot generate events: {err}");
                    return ExitCode::FAILURE;
                }
            }
        }
    } else {
        shutdown.cancelled().await;
    }
    tracing::info!(frames_sent = relay.frames_sent(), "test relay stopped");
    ExitCode::SUCCESS
}
