//! The metric catalog: what `#[derive(Metrics)]` declares, readable by tests, docs and dashboards.

use crate::{Error, Registry};

/// The Prometheus type of a metric family: the one kind type that the naming rules, the derive
/// and the runtime share. A derived set declares counters, gauges and histograms only.
pub use rsky_metrics_naming::Kind as MetricKind;

/// Whether a metric holds integers (`IntCounter`, `IntGauge`, ...) or floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `IntCounter`, `IntGauge` and their `Vec`s.
    Int,
    /// `Counter`, `Gauge`, `Histogram` and their `Vec`s.
    Float,
}

/// One declared metric family: what `/metrics` will show for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricDesc {
    /// The struct field that declares it.
    pub field: &'static str,
    /// The exposed family name, `{service}_{field}` (+ `_total` for counters).
    pub name: &'static str,
    /// The help text, from the field's doc comment.
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Integer or float values.
    pub value: ValueType,
    /// Label names, empty for a metric without labels.
    pub labels: &'static [&'static str],
    /// For a typed family (`IntCounterFamily<L>`, ...), each label's possible values, in the order
    /// of `labels`; every combination is a series from the first scrape. Empty for string labels
    /// (open-ended values) and for a metric without labels.
    pub label_values: &'static [&'static [&'static str]],
    /// Upper bounds of a histogram's buckets (`+Inf` implied); empty for other kinds.
    pub buckets: &'static [f64],
    /// The unit given with `#[metric(unit = "...")]`, if any.
    pub unit: Option<&'static str>,
}

impl MetricDesc {
    /// The sample names this family writes: the name itself, or for a histogram its
    /// `_bucket`, `_sum` and `_count` series.
    pub fn sample_names(&self) -> Vec<String> {
        match self.kind {
            MetricKind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|suffix| format!("{}{suffix}", self.name))
                .collect(),
            _ => vec![self.name.to_owned()],
        }
    }
}

/// A set of metrics declared with `#[derive(Metrics)]`.
///
/// The derive implements it, beside inherent items of the same names, so that generic code
/// (servers, test helpers, catalog generators) can work on any set.
pub trait MetricSet: Sized + Send + Sync + 'static {
    /// The service name every metric of the set starts with.
    const SERVICE: &'static str;
    /// Every metric of the set, in field order.
    const METRICS: &'static [MetricDesc];
    /// Creates the metrics and registers them in `registry`.
    fn register(registry: &Registry) -> Result<Self, Error>;
    /// The process-wide instance, registered on first use in [`crate::default_registry`] (which
    /// wraps `prometheus::default_registry()`).
    fn global() -> &'static Self;
}
