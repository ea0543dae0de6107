//! `test-pds`: a loopback test PDS and PLC directory hosting signed repositories, with the
//! failures a backfiller must handle (for demos and the local stack).
//!
//! ```text
//! TEST_PDS_ACCOUNTS=20 cargo run -p rsky-testkit --bin test-pds
//! TEST_RELAY_LIST_REPOS=24 cargo run -p rsky-testkit --bin test-relay
//! BACKFILLER_PLC_URL=http://127.0.0.1:2582 cargo run -p rsky-backfiller --bin backfiller
//! ```
//!
//! The accounts are `did:plc:load00000000000000000000`, `...01`, ... (the DIDs the test relay
//! lists with `TEST_RELAY_LIST_REPOS`): `TEST_PDS_ACCOUNTS` served ones, then one with a bad
//! signature, one with a truncated CAR, one answering HTTP 500 and one not found. Their DID
//! documents, in the PLC directory, name this PDS. It prints the PDS's and the PLC's URLs and the
//! number of accounts on stdout, and stops on SIGINT or SIGTERM.
//!
//! - `TEST_PDS_ADDR` (default `127.0.0.1:2583`): where the PDS listens (port 0: a free port).
//! - `TEST_PDS_PLC_ADDR` (default `127.0.0.1:2582`): where the PLC directory listens.
//! - `TEST_PDS_ACCOUNTS` (default `20`): accounts served normally.
//! - `TEST_PDS_RECORDS` (default `30`): records in each of them.
//! - `TEST_PDS_SEED` (default `1`): seed of the keys and records.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use rsky_common::config::{at_least, Settings};
use rsky_common::runner::settings_or_exit;
use rsky_testkit::pds::{host_load_accounts, TestPds};
use rsky_testkit::plc::TestPlc;

/// The test PDS's settings.
#[derive(clap::Args)]
struct TestPdsSettings {
    /// Where the PDS listens.
    #[arg(long, env = "TEST_PDS_ADDR", default_value = "127.0.0.1:2583")]
    addr: SocketAddr,
    /// Where the PLC directory listens.
    #[arg(long, env = "TEST_PDS_PLC_ADDR", default_value = "127.0.0.1:2582")]
    plc_addr: SocketAddr,
    /// Accounts hosted (served normally).
    #[arg(long, env = "TEST_PDS_ACCOUNTS", default_value = "20", value_parser = at_least(0usize))]
    accounts: usize,
    /// Records in each repository.
    #[arg(long, env = "TEST_PDS_RECORDS", default_value = "30", value_parser = at_least(0usize))]
    records: usize,
    /// Seed of the generated records.
    #[arg(long, env = "TEST_PDS_SEED", default_value = "1", value_parser = at_least(0u64))]
    seed: u64,
}

impl Settings for TestPdsSettings {}

#[tokio::main]
async fn main() -> ExitCode {
    rsky_common::runner::init_tracing(rsky_common::runner::LogFormat::Text);
    let settings: TestPdsSettings =
        settings_or_exit("test-pds", "A test PDS and PLC directory on loopback");
    // Listening on SIGINT/SIGTERM starts before anything is served.
    let shutdown = rsky_common::shutdown::on_signal();
    let plc = match TestPlc::start_on(settings.plc_addr).await {
        Ok(plc) => plc,
        Err(err) => {
            eprintln!(
                "test-pds: cannot listen on {} (TEST_PDS_PLC_ADDR) for the PLC directory: {err}",
                settings.plc_addr
            );
            return ExitCode::from(2);
        }
    };
    let pds = match TestPds::start_on(settings.addr).await {
        Ok(pds) => pds,
        Err(err) => {
            eprintln!(
                "test-pds: cannot listen on {} (TEST_PDS_ADDR): {err}",
                settings.addr
            );
            return ExitCode::from(2);
        }
    };
    let hosted = match host_load_accounts(
        &pds,
        &plc,
        settings.accounts,
        settings.records,
        settings.seed,
    ) {
        Ok(hosted) => hosted,
        Err(err) => {
            eprintln!("test-pds: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let printed = writeln!(out, "test PDS {}", pds.url())
        .and_then(|()| writeln!(out, "test PLC {}", plc.url()))
        .and_then(|()| {
            writeln!(
                out,
                "accounts {} ({} served, then: {})",
                hosted.len(),
                settings.accounts,
                hosted[settings.accounts..]
                    .iter()
                    .map(|(did, behaviour)| format!("{did} {behaviour:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .and_then(|()| out.flush());
    drop(out);
    if let Err(err) = printed {
        eprintln!("test-pds: cannot write to stdout: {err}");
        return ExitCode::FAILURE;
    }
    tracing::info!(pds = %pds.url(), plc = %plc.url(), accounts = hosted.len(), "test PDS serving listRepos and getRepo, test PLC serving DID documents");
    shutdown.cancelled().await;
    let fetches: usize = hosted
        .iter()
        .map(|(did, _)| pds.get_repo_requests(did))
        .sum();
    tracing::info!(
        get_repo_requests = fetches,
        plc_requests = plc.requests(),
        "test PDS stopped"
    );
    ExitCode::SUCCESS
}
