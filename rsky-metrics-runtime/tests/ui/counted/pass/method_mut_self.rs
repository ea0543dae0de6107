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

struct Event(u8);

struct Writer {
    metrics: &'static UiMetrics,
    written: usize,
}

impl Writer {
    /// The reference is copied out of `self` on entry, so the body has `&mut self` to itself.
    #[counted(metrics = self.metrics, events = calls, errors = errors,
              in_flight = active, duration = call_seconds)]
    fn write_batch(&mut self, batch: Vec<Event>) -> anyhow::Result<usize> {
        if batch.iter().any(|e| e.0 == 0) {
            anyhow::bail!("event 0 is reserved");
        }
        self.written += batch.len();
        Ok(self.written)
    }
}

fn main() {
    let mut writer = Writer {
        metrics: UiMetrics::global(),
        written: 0,
    };
    assert_eq!(writer.write_batch(vec![Event(1), Event(2)]).unwrap(), 2);
    assert!(writer.write_batch(vec![Event(0)]).is_err());
    assert_eq!(writer.metrics.errors.get(), 1);
}
