//! The shop service: its metrics on `METRICS_PORT` (default 9100) until Ctrl-C.

use rsky_metrics_consumer::ShopMetrics;
use rsky_metrics_runtime::MetricsServer;

#[tokio::main]
async fn main() -> Result<(), rsky_metrics_runtime::Error> {
    // Registering up front puts every metric on the first scrape, at zero.
    ShopMetrics::global();
    MetricsServer::for_set::<ShopMetrics>()
        .default_port(9100)
        .version(env!("CARGO_PKG_VERSION"))
        .bind()
        .await?
        .serve_with_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
