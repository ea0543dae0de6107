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

#[async_trait::async_trait]
pub trait Sink {
    async fn write(&self, item: u32) -> anyhow::Result<u32>;
}

pub struct Redis {
    metrics: &'static UiMetrics,
}

// `#[async_trait]` on the impl expands first; `#[counted]` then finds the boxed async block it
// left and counts the call inside it, when the future runs.
#[async_trait::async_trait]
impl Sink for Redis {
    #[counted(metrics = self.metrics, events = calls, errors = errors, in_flight = active,
              duration = call_seconds)]
    async fn write(&self, item: u32) -> anyhow::Result<u32> {
        tokio::task::yield_now().await;
        anyhow::ensure!(item != 0, "item 0 is reserved");
        Ok(item)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let sink: Box<dyn Sink + Send + Sync> = Box::new(Redis { metrics: UiMetrics::global() });
    assert_eq!(sink.write(4).await.unwrap(), 4);
    assert!(sink.write(0).await.is_err());
    let m = UiMetrics::global();
    assert_eq!((m.calls.get(), m.errors.get(), m.active.get()), (2, 1, 0));
    assert_eq!(m.call_seconds.get_sample_count(), 2);
}
