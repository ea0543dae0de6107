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

#[derive(Debug)]
pub struct IngestError;

impl From<std::str::Utf8Error> for IngestError {
    fn from(_: std::str::Utf8Error) -> Self {
        IngestError
    }
}

pub struct Ingester;

impl Ingester {
    #[counted(UiMetrics, events = calls, errors = errors, in_flight = active, duration = call_seconds)]
    async fn handle_frame(&self, frame: &[u8]) -> Result<(), IngestError> {
        let text = std::str::from_utf8(frame)?;
        tokio::task::yield_now().await;
        if text.is_empty() {
            return Err(IngestError);
        }
        Ok(())
    }
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ingester = Ingester;
    let call = ingester.handle_frame(b"ok");
    assert_send(&call);
    call.await.unwrap();
    assert!(ingester.handle_frame(b"").await.is_err());
    assert!(ingester.handle_frame(&[0xff]).await.is_err());
    assert_eq!(UiMetrics::global().errors.get(), 2);
}
