//! `ingester`: relays and labelers -> Redis streams. `ingester --help` lists every setting.

use std::process::ExitCode;

use rsky_common::runner::{self, Service};
use rsky_ingester::{Config, IngesterMetrics};

fn main() -> ExitCode {
    let service = Service {
        name: "ingester",
        version: env!("CARGO_PKG_VERSION"),
        about: "Relay firehose, listRepos and labelers -> Redis streams",
        metrics_port: 4100,
    };
    runner::main::<Config, IngesterMetrics, _, _, _>(service, rsky_ingester::run)
}
