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
//! - `TEST_RELAY_LABELS_RATE` (default `0`): `#labels` frames per second on `subscribeLabels`
//!   (two labels each, every third frame also a negation), on the listed accounts
//!   (`TEST_RELAY_ACCOUNTS` when none are listed), as the labeler `did:plc:labelerload...`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use rsky_common::config::{at_least, Settings};
use rsky_common::runner::settings_or_exit;
use rsky_testkit::labels::load_labels_frame;
use rsky_testkit::load::{load_did, LoadGenerator};
use rsky_testkit::relay::{ListedRepo, TestRelay};

/// The test relay's settings.
#[derive(clap::Args)]
struct TestRelaySettings {
    /// Where to listen.
    #[arg(long, env = "TEST_RELAY_ADDR", default_value = "127.0.0.1:2470")]
    addr: SocketAddr,
    /// Events per second (0: the preload, then quiet).
    #[arg(long, env = "TEST_RELAY_RATE", default_value = "200", value_parser = at_least(0u64))]
    rate: u64,
    /// Simulated accounts.
    #[arg(long, env = "TEST_RELAY_ACCOUNTS", default_value = "1000", value_parser = at_least(0usize))]
    accounts: usize,
    /// Events in the log before the first subscriber.
    #[arg(long, env = "TEST_RELAY_PRELOAD", default_value = "0", value_parser = at_least(0usize))]
    preload: usize,
    /// Frames kept for cursor resume.
    #[arg(long, env = "TEST_RELAY_LOG_CAPACITY", default_value = "1000000", value_parser = at_least(0usize))]
    capacity: usize,
    /// Seed of the random mix.
    #[arg(long, env = "TEST_RELAY_SEED", default_value = "1", value_parser = at_least(0u64))]
    seed: u64,
    /// Accounts listed by listRepos.
    #[arg(long, env = "TEST_RELAY_LIST_REPOS", default_value = "0", value_parser = at_least(0usize))]
    list_repos: usize,
    /// `#labels` frames per second on subscribeLabels.
    #[arg(long, env = "TEST_RELAY_LABELS_RATE", default_value = "0", value_parser = at_least(0u64))]
    labels_rate: u64,
}

impl Settings for TestRelaySettings {}

#[tokio::main]
async fn main() -> ExitCode {
    rsky_common::runner::init_tracing(rsky_common::runner::LogFormat::Text);
    let settings: TestRelaySettings = settings_or_exit(
        "test-relay",
        "A loopback relay emitting a steady, realistic firehose",
    );
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
                did: load_did(i),
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
    tracing::info!(url = %relay.ws_url(), rate = settings.rate, accounts = settings.accounts, labels_rate = settings.labels_rate, "test relay serving subscribeRepos, listRepos and subscribeLabels");
    let shutdown = rsky_common::shutdown::on_signal();
    // Events are emitted in ticks of 10 ms so the stream is steady rather than bursty.
    let mut events = (settings.rate > 0).then(|| tokio::time::interval(Duration::from_millis(10)));
    // At most one labels frame per millisecond (a zero period would make the interval panic).
    let mut labels = (settings.labels_rate > 0).then(|| {
        let period = Duration::from_secs_f64(1.0 / settings.labels_rate as f64);
        tokio::time::interval(period.max(Duration::from_millis(1)))
    });
    let labelled = if settings.list_repos > 0 {
        settings.list_repos
    } else {
        settings.accounts
    };
    let mut owed = 0.0f64;
    let mut label_seq = 0i64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick(&mut events) => {
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
            _ = tick(&mut labels) => {
                label_seq += 1;
                match load_labels_frame(label_seq, labelled) {
                    Ok(frame) => relay.push_labels([frame]),
                    Err(err) => {
                        eprintln!("test-relay: cannot encode a labels frame: {err}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    tracing::info!(frames_sent = relay.frames_sent(), "test relay stopped");
    ExitCode::SUCCESS
}

/// The next tick of `interval`; never, without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
