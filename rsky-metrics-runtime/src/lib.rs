//! Declarative Prometheus instrumentation for Rust services.
//!
//! Declare a service's metrics once, as a struct; the derive generates their names, help texts,
//! registration and a catalog, and registers every metric eagerly, so each one is on `/metrics`
//! from the first scrape.
//!
//! ```
//! use rsky_metrics_runtime::{Histogram, IntCounter, IntCounterVec, IntGauge, Metrics};
//!
//! /// Metrics of the demo service.
//! #[derive(Metrics)]
//! #[metrics(service = "demo")]
//! pub struct DemoMetrics {
//!     /// Requests handled
//!     pub requests: IntCounter,
//!     /// Items waiting in the queue
//!     pub queue_length: IntGauge,
//!     /// Time to handle one request
//!     #[metric(buckets = [0.001, 0.01, 0.1, 1.0])]
//!     pub handle_seconds: Histogram,
//!     /// Requests by outcome
//!     #[metric(labels = ["outcome"])]
//!     pub outcomes: IntCounterVec,
//! }
//!
//! let metrics = DemoMetrics::global();
//! metrics.requests.inc();
//! metrics.outcomes.with_label_values(&["ok"]).inc();
//! assert_eq!(DemoMetrics::METRICS[0].name, "demo_requests_total");
//! ```

mod counted;
mod desc;
mod error;
pub mod exposition;
mod registry;
mod server;
pub mod testing;
mod vec;

pub use counted::CountOutcome;
pub use desc::{MetricDesc, MetricKind, MetricSet, ValueType};
pub use error::Error;
pub use server::{
    MetricsServer, MetricsServerBuilder, MetricsServerHandle, CONTENT_TYPE, DEFAULT_ADDR_ENV,
    DEFAULT_PORT_ENV,
};

/// Declares a service's metrics as a struct. See the crate documentation.
pub use rsky_metrics_derive::Metrics;

/// Counts a function's calls, errors, in-flight work and duration.
pub use rsky_metrics_derive::counted;

pub use prometheus::{
    self, Counter, Encoder, Gauge, Histogram, IntCounter, IntGauge, Registry, TextEncoder,
    DEFAULT_BUCKETS,
};
pub use vec::{CounterVec, GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec, LabelVec, VecChild};

/// Encodes `registry` in the Prometheus text format, as `/metrics` serves it (see
/// [`exposition::encode`]).
pub fn encode_text(registry: &Registry) -> String {
    let body = exposition::encode(registry, exposition::Format::Text);
    String::from_utf8(body)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

/// Items the generated code uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::{register_global, Metric, Registrar};
    pub use once_cell::sync::OnceCell;

    /// `#[counted]` support.
    pub mod counted {
        pub use crate::counted::{
            call, counter, future, gauge, histogram, is_error, Absent, Call, CounterLike,
            DurationLike, GaugeLike, ABSENT,
        };
    }
}
