use rsky_metrics_runtime::{counted, Histogram, IntCounter, IntGauge, Metrics};

/// Metrics of the handler.
#[derive(Metrics)]
#[metrics(service = "ui")]
pub struct UiMetrics {
    /// Calls made
    pub calls: IntCounter,
    /// Calls that failed
    pub errors: IntCounter,
    /// Calls in progress
    pub active: IntGauge,
    /// Time a call took
    pub call_seconds: Histogram,
}

pub trait Sink {
    async fn write(&self, item: u32) -> std::io::Result<()>;
}

pub struct Postgres;

impl Sink for Postgres {
    #[counted(UiMetrics, events = calls, errors = errors, in_flight = active)]
    async fn write(&self, item: u32) -> std::io::Result<()> {
        if item == 0 {
            return Err(std::io::Error::other("refused"));
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    Postgres.write(1).await.unwrap();
    assert!(Postgres.write(0).await.is_err());
    assert_eq!(UiMetrics::global().errors.get(), 1);
}
