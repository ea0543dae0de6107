//! `backfiller`: `repo_backfill` -> getRepo -> `firehose_backfill`. `backfiller --help` lists
//! every setting.

use std::process::ExitCode;

use rsky_backfiller::config::DEFAULT_METRICS_PORT;
use rsky_backfiller::{BackfillerMetrics, Config};
use rsky_common::runner::{self, Service};

fn main() -> ExitCode {
    let service = Service {
        name: "backfiller",
        version: env!("CARGO_PKG_VERSION"),
        about: "Repositories to backfill (Redis consumer group) -> getRepo, verified -> firehose_backfill",
        metrics_port: DEFAULT_METRICS_PORT,
    };
    runner::main::<Config, BackfillerMetrics, _, _, _>(service, rsky_backfiller::run)
}
