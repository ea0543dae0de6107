//! `indexer`: firehose and label streams (Redis) -> PostgreSQL. `indexer --help` lists every
//! setting.

use std::process::ExitCode;

use rsky_common::runner::{self, Service};
use rsky_indexer::config::DEFAULT_METRICS_PORT;
use rsky_indexer::{Config, IndexerMetrics};

fn main() -> ExitCode {
    let service = Service {
        name: "indexer",
        version: env!("CARGO_PKG_VERSION"),
        about: "Firehose and label streams (Redis consumer groups) -> PostgreSQL",
        metrics_port: DEFAULT_METRICS_PORT,
    };
    runner::main::<Config, IndexerMetrics, _, _, _>(service, rsky_indexer::run)
}
