//! `ingester`: reads its configuration from the environment, serves `/metrics` (default port
//! 4100), runs until SIGINT or SIGTERM, then flushes and exits 0.

use std::process::ExitCode;

use rsky_common::startup::{init_tracing, start_metrics};
use rsky_ingester::{Config, IngesterMetrics};

/// The ingester's `/metrics` port unless `METRICS_PORT` says otherwise.
const DEFAULT_METRICS_PORT: u16 = 4100;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ingester: {err}");
            return ExitCode::from(2);
        }
    };
    let (metrics, server) =
        match start_metrics::<IngesterMetrics>(DEFAULT_METRICS_PORT, env!("CARGO_PKG_VERSION"))
            .await
        {
            Ok(started) => started,
            Err(err) => {
                eprintln!("ingester: {err}");
                return ExitCode::from(2);
            }
        };
    let shutdown = rsky_common::shutdown::on_signal();
    let result = rsky_ingester::run(config, metrics, shutdown).await;
    let _ = server.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ingester: {err}");
            ExitCode::FAILURE
        }
    }
}
