//! `backfiller`: see the crate README for its environment and metrics.

use std::process::ExitCode;

use rsky_backfiller::{Backfiller, BackfillerMetrics, Config};
use rsky_metrics_runtime::MetricsServer;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("backfiller: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    // Registering up front puts every metric on the first scrape, at zero.
    let metrics = BackfillerMetrics::global();
    let server = MetricsServer::for_set::<BackfillerMetrics>()
        .listen(config.metrics_addr)
        .version(env!("CARGO_PKG_VERSION"))
        .bind()
        .await?
        .spawn();
    let backfiller = Backfiller::connect(config, metrics.into()).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let result = backfiller.run(shutdown).await;
    server.shutdown().await?;
    Ok(result?)
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the backfiller");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("signal received: stopping after the repositories in flight");
    shutdown.cancel();
}
