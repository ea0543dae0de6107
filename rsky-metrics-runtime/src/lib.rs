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
//!
//! # Typed labels
//!
//! Labels whose values are known at compile time are types: every combination is a series from
//! registration, and `family[label]` is an array index (see [`LabelValue`], [`LabelSet`],
//! [`Family`], [`CountAs`]). The README's example:
//!
//! ```
//! use rsky_metrics_runtime::{
//!     counted, CountAs, HistogramFamily, IntCounter, IntCounterFamily, LabelSet, LabelValue, Metrics,
//! };
//!
//! /// What went wrong: one label, `kind`, with one value per variant.
//! #[derive(Clone, Copy, LabelValue)]
//! #[label(name = "kind")]
//! pub enum ErrorKind {
//!     Redis,          // "redis"
//!     DbTimeout,      // "db_timeout" (snake_case of the variant)
//!     #[label(panic)] // what #[counted] counts a panic as
//!     Panic,
//! }
//!
//! #[derive(Clone, Copy, LabelValue)]
//! pub enum Collection {
//!     #[label(rename = "app.bsky.feed.post")]
//!     Post,
//!     #[label(rename = "app.bsky.feed.like")]
//!     Like,
//! }
//!
//! #[derive(Clone, Copy, LabelValue)]
//! pub enum Action { Create, Delete }
//!
//! /// Several labels: one per field, named after it.
//! #[derive(Clone, Copy, LabelSet)]
//! pub struct Record { pub collection: Collection, pub action: Action }
//!
//! /// Metrics of the demo service.
//! #[derive(Metrics)]
//! #[metrics(service = "demo")]
//! pub struct DemoMetrics {
//!     /// Jobs run
//!     pub jobs: IntCounter,
//!     /// Errors by kind
//!     pub errors: IntCounterFamily<ErrorKind>,
//!     /// Records by collection and action
//!     pub records: IntCounterFamily<Record>,
//!     /// Time to write a record, by collection and action (a tuple works too)
//!     #[metric(buckets = [0.01, 0.1, 1.0])]
//!     pub write_seconds: HistogramFamily<(Collection, Action)>,
//! }
//!
//! pub enum JobError { Redis(String), Timeout }
//!
//! impl CountAs<ErrorKind> for JobError {
//!     fn count_as(&self) -> ErrorKind {
//!         match self {
//!             JobError::Redis(_) => ErrorKind::Redis,
//!             JobError::Timeout => ErrorKind::DbTimeout,
//!         }
//!     }
//! }
//!
//! #[counted(DemoMetrics, events = jobs, errors = errors)]
//! fn job(fail: bool) -> Result<(), JobError> {
//!     if fail { Err(JobError::Timeout) } else { Ok(()) }
//! }
//!
//! let metrics = DemoMetrics::global();
//! metrics.errors[ErrorKind::Redis].inc();
//! metrics.records[Record { collection: Collection::Like, action: Action::Create }].inc();
//! metrics.write_seconds.get((Collection::Post, Action::Delete)).observe(0.02);
//! let _ = job(true);
//! assert_eq!(metrics.errors[ErrorKind::DbTimeout].get(), 1);
//! // demo_records_total{collection="app.bsky.feed.post",action="delete"} 0 is on the first scrape.
//! assert_eq!(DemoMetrics::METRICS[2].label_values[1], ["create", "delete"]);
//! ```

mod connection;
mod counted;
mod desc;
mod error;
pub mod exposition;
mod family;
mod labels;
mod registry;
mod server;
pub mod testing;
mod vec;

pub use counted::{CountError, CountOutcome, ErrorCounter};
pub use desc::{MetricDesc, MetricKind, MetricSet, ValueType};
pub use error::Error;
pub use family::{
    CounterFamily, Family, GaugeFamily, HistogramFamily, IntCounterFamily, IntGaugeFamily, Series,
};
pub use labels::{CountAs, LabelSet, LabelValue, PanicLabel};
pub use server::{
    MetricsServer, MetricsServerBuilder, MetricsServerHandle, CONTENT_TYPE, DEFAULT_ADDR_ENV,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_PORT_ENV,
    DEFAULT_REQUEST_TIMEOUT,
};

/// Declares a service's metrics as a struct. See the crate documentation.
pub use rsky_metrics_derive::Metrics;

/// Derives [`LabelValue`] (and [`LabelSet`]) for a fieldless enum: one label, one value per
/// variant.
pub use rsky_metrics_derive::LabelValue;

/// Derives [`LabelSet`] for a struct of label enums: one label per field, named after it.
pub use rsky_metrics_derive::LabelSet;

/// Counts a function's calls, errors, in-flight work and duration.
pub use rsky_metrics_derive::counted;

pub use prometheus::{
    self, Counter, Encoder, Gauge, Histogram, IntCounter, IntGauge, TextEncoder, DEFAULT_BUCKETS,
};
pub use registry::{default_registry, Registry};
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
    pub use crate::labels::{labels_contain, labels_repeat};
    pub use crate::registry::{register_global, Metric, Registrar};
    pub use once_cell::sync::OnceCell;

    /// `#[counted]` support.
    pub mod counted {
        pub use crate::counted::{
            call, count_error, counter, errors, future, gauge, histogram, Absent, Call,
            CounterLike, DurationLike, GaugeLike, ABSENT,
        };
    }
}
