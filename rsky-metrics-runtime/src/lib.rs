#![doc = include_str!("../README.md")]

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

#[doc = include_str!("../docs/derive-metrics.md")]
pub use rsky_metrics_derive::Metrics;

#[doc = include_str!("../docs/label-value.md")]
pub use rsky_metrics_derive::LabelValue;

#[doc = include_str!("../docs/label-set.md")]
pub use rsky_metrics_derive::LabelSet;

#[doc = include_str!("../docs/counted.md")]
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
