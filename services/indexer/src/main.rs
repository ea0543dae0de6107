//! `indexer`: firehose and label streams (Redis) -> PostgreSQL. Configuration: see the README.

use std::process::ExitCode;
use std::sync::Arc;

use rsky_common::config::Env;
use rsky_common::shutdown::on_signal;
use rsky_common::startup::{init_tracing, start_metrics};
use rsky_indexer::config::DEFAULT_METRICS_PORT;
use rsky_indexer::{Config, Indexer, IndexerMetrics};

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env(&Env::process())?;
    let shutdown = on_signal();
    let (metrics, server) =
        start_metrics::<IndexerMetrics>(DEFAULT_METRICS_PORT, env!("CARGO_PKG_VERSION")).await?;
    let indexer = Indexer::connect(config, Arc::new(metrics.clone())).await?;
    indexer.run(shutdown).await?;
    server.shutdown().await?;
    tracing::info!("indexer stopped");
    Ok(())
}
