//! Typed families: one series per combination of a [`LabelSet`], all created at registration and
//! kept in an array that the label set's index reaches directly.
//!
//! A family is a prometheus `...Vec` (which collects, registers and gathers exactly like
//! prometheus's own labeled families) whose every child was resolved once, at build time, and
//! stored in label-index order. So `family[label]` is an array index, and an increment is the
//! child's atomic add: no hashing of label values, no lock. Each series' label set is also
//! rendered once, at build time, for the exposition encoder.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Index;

use prometheus::core::{Collector, Desc, Metric as _};
use prometheus::proto::MetricFamily;
use prometheus::{
    Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts,
};

use crate::exposition::{render_labels, EncodeMetric, FamilyWriter};
use crate::labels::{values_of, LabelSet};
use crate::registry::Metric;
use crate::MetricDesc;

/// A family of series labeled by `L`, each series an `M` (`IntCounter`, `Gauge`, `Histogram`, ...).
///
/// Declare it through its aliases ([`IntCounterFamily`], [`CounterFamily`], [`IntGaugeFamily`],
/// [`GaugeFamily`], [`HistogramFamily`]) as a field of a `#[derive(Metrics)]` struct, and reach
/// a series by indexing with a label value:
///
/// ```
/// use rsky_metrics_runtime::{HistogramFamily, IntCounterFamily, LabelValue, Metrics};
///
/// /// What went wrong.
/// #[derive(Clone, Copy, LabelValue)]
/// #[label(name = "kind")]
/// pub enum ErrorKind {
///     Redis,
///     Decode,
/// }
///
/// /// Which stage ran.
/// #[derive(Clone, Copy, LabelValue)]
/// pub enum Stage {
///     Read,
///     Write,
/// }
///
/// /// Metrics of the family example.
/// #[derive(Metrics)]
/// #[metrics(service = "family_doc")]
/// pub struct DemoMetrics {
///     /// Errors by kind
///     pub errors: IntCounterFamily<ErrorKind>,
///     /// Time per stage
///     #[metric(buckets = [0.01, 0.1, 1.0])]
///     pub stage_seconds: HistogramFamily<Stage>,
/// }
///
/// let metrics = DemoMetrics::global();
/// metrics.errors[ErrorKind::Redis].inc();
/// metrics.stage_seconds[Stage::Read].observe(0.05);
/// assert_eq!(metrics.errors[ErrorKind::Redis].get(), 1);
/// // Every combination exists from registration, at 0.
/// assert_eq!(metrics.errors.get(ErrorKind::Decode).get(), 0);
/// assert_eq!(DemoMetrics::METRICS[0].name, "family_doc_errors_total");
/// assert_eq!(DemoMetrics::METRICS[0].labels, ["kind"]);
/// assert_eq!(DemoMetrics::METRICS[0].label_values, [&["redis", "decode"][..]]);
/// ```
pub struct Family<L, M: Series> {
    vec: M::Vec,
    /// One series per combination, at the combination's index.
    series: Box<[M]>,
    /// Each series' label set, rendered for the exposition.
    rendered: Box<[String]>,
    labels: PhantomData<fn(L)>,
}

/// Integer counters by label: `errors[ErrorKind::Redis].inc()`.
pub type IntCounterFamily<L> = Family<L, IntCounter>;
/// Float counters by label.
pub type CounterFamily<L> = Family<L, Counter>;
/// Integer gauges by label.
pub type IntGaugeFamily<L> = Family<L, IntGauge>;
/// Float gauges by label.
pub type GaugeFamily<L> = Family<L, Gauge>;
/// Histograms by label, with the buckets of `#[metric(buckets = [...])]`.
pub type HistogramFamily<L> = Family<L, Histogram>;

impl<L: LabelSet, M: Series> Family<L, M> {
    /// The series of `label`. Same as `family[label]`.
    #[inline]
    pub fn get(&self, label: L) -> &M {
        &self.series[label.index()]
    }

    /// Every series with its label values, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Vec<&'static str>, &M)> + '_ {
        self.series
            .iter()
            .enumerate()
            .map(|(index, series)| (values_of::<L>(index), series))
    }
}

impl<L: LabelSet, M: Series> Index<L> for Family<L, M> {
    type Output = M;

    #[inline]
    fn index(&self, label: L) -> &M {
        &self.series[label.index()]
    }
}

impl<L, M: Series> Clone for Family<L, M> {
    fn clone(&self) -> Self {
        Self {
            vec: self.vec.clone(),
            series: self.series.clone(),
            rendered: self.rendered.clone(),
            labels: PhantomData,
        }
    }
}

impl<L, M: Series> fmt::Debug for Family<L, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("series", &self.series.len())
            .finish()
    }
}

impl<L: LabelSet + 'static, M: Series> Metric for Family<L, M> {
    /// Creates the family and every series of it (each at 0), in label-index order.
    fn build(desc: &MetricDesc) -> prometheus::Result<Self> {
        let vec = M::vec(desc, L::LABEL_NAMES)?;
        let mut series = Vec::with_capacity(L::CARDINALITY);
        let mut rendered = Vec::with_capacity(L::CARDINALITY);
        for index in 0..L::CARDINALITY {
            let values = values_of::<L>(index);
            series.push(M::child(&vec, &values)?);
            let pairs: Vec<(&str, &str)> = L::LABEL_NAMES
                .iter()
                .copied()
                .zip(values.iter().copied())
                .collect();
            rendered.push(render_labels(&pairs));
        }
        Ok(Self {
            vec,
            series: series.into_boxed_slice(),
            rendered: rendered.into_boxed_slice(),
            labels: PhantomData,
        })
    }
}

impl<L, M: Series> Collector for Family<L, M> {
    fn desc(&self) -> Vec<&Desc> {
        self.vec.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.vec.collect()
    }
}

impl<L, M: Series> EncodeMetric for Family<L, M> {
    fn encode(&self, out: &mut FamilyWriter<'_>) {
        for (series, labels) in self.series.iter().zip(self.rendered.iter()) {
            series.encode(labels, out);
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// What one series of a [`Family`] may be: `IntCounter`, `Counter`, `IntGauge`, `Gauge` or
/// `Histogram`.
pub trait Series: sealed::Sealed + Clone + Send + Sync + 'static {
    /// The prometheus family that holds the series.
    #[doc(hidden)]
    type Vec: Collector + Clone + 'static;
    /// Creates the prometheus family of `desc` with label names `labels`.
    #[doc(hidden)]
    fn vec(desc: &MetricDesc, labels: &[&str]) -> prometheus::Result<Self::Vec>;
    /// The series of `values`, created at 0.
    #[doc(hidden)]
    fn child(vec: &Self::Vec, values: &[&str]) -> prometheus::Result<Self>;
    /// Writes this series, with its rendered label set.
    #[doc(hidden)]
    fn encode(&self, labels: &str, out: &mut FamilyWriter<'_>);
}

macro_rules! scalar_series {
    ($($ty:ident / $vec:ident => $write:ident),* $(,)?) => {$(
        impl sealed::Sealed for $ty {}

        impl Series for $ty {
            type Vec = $vec;

            fn vec(desc: &MetricDesc, labels: &[&str]) -> prometheus::Result<$vec> {
                $vec::new(Opts::new(desc.name, desc.help), labels)
            }

            fn child(vec: &$vec, values: &[&str]) -> prometheus::Result<$ty> {
                vec.get_metric_with_label_values(values)
            }

            #[inline]
            fn encode(&self, labels: &str, out: &mut FamilyWriter<'_>) {
                out.$write(labels, self.get());
            }
        }
    )*};
}
scalar_series!(
    IntCounter / IntCounterVec => sample_u64,
    Counter / CounterVec => sample_f64,
    IntGauge / IntGaugeVec => sample_i64,
    Gauge / GaugeVec => sample_f64,
);

impl sealed::Sealed for Histogram {}

impl Series for Histogram {
    type Vec = HistogramVec;

    fn vec(desc: &MetricDesc, labels: &[&str]) -> prometheus::Result<HistogramVec> {
        HistogramVec::new(
            HistogramOpts::new(desc.name, desc.help).buckets(desc.buckets.to_vec()),
            labels,
        )
    }

    fn child(vec: &HistogramVec, values: &[&str]) -> prometheus::Result<Histogram> {
        vec.get_metric_with_label_values(values)
    }

    fn encode(&self, labels: &str, out: &mut FamilyWriter<'_>) {
        // One consistent snapshot of the buckets, sum and count.
        let metric = self.metric();
        let histogram = metric.get_histogram();
        let (bounds, cumulative): (Vec<f64>, Vec<u64>) = histogram
            .get_bucket()
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .unzip();
        out.histogram(
            labels,
            &bounds,
            &cumulative,
            histogram.get_sample_sum(),
            histogram.get_sample_count(),
        );
    }
}
