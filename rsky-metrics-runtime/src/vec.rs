//! String-labeled families (`IntCounterVec`, `CounterVec`, `IntGaugeVec`, `GaugeVec`,
//! `HistogramVec`) with prometheus' API, whose series the fast exposition can list.
//!
//! prometheus' own `MetricVec` keeps its children private: the only way to read them is its
//! `collect()`, which builds a `MetricFamily` (a label-pair record and a copy of each value per
//! series, then a sort in `gather()`). A [`LabelVec`] keeps its series in a dense list, each with
//! its label set rendered once (escaped, sorted by label name as prometheus writes it), so a
//! scrape is one pass over that list. Children are prometheus' own `IntCounter`, `Histogram`, ...
//! so the code that uses them does not change.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;
use prometheus::core::{Collector, Desc, Metric as _};
use prometheus::proto::{LabelPair, MetricFamily, MetricType};
use prometheus::{Counter, Gauge, Histogram, HistogramOpts, IntCounter, IntGauge, Opts};

use crate::exposition::{labels_of_line, render_labels, render_line, EncodeMetric, FamilyWriter};
use crate::MetricDesc;

mod sealed {
    pub trait Sealed {}
}

/// A metric type that can be the child of a [`LabelVec`]: `IntCounter`, `Counter`, `IntGauge`,
/// `Gauge` or `Histogram`.
pub trait VecChild:
    sealed::Sealed + prometheus::core::Metric + Clone + Send + Sync + 'static
{
    /// The options the family is created with: `Opts`, or `HistogramOpts` for histograms.
    type Opts: Clone + Send + Sync + 'static;
    /// The family's type in `MetricFamily` records.
    #[doc(hidden)]
    const TYPE: MetricType;
    #[doc(hidden)]
    fn common(opts: &Self::Opts) -> &Opts;
    /// The options of one series: the family's name and help, no labels.
    #[doc(hidden)]
    fn child_opts(opts: &Self::Opts) -> Self::Opts;
    #[doc(hidden)]
    fn from_desc(desc: &MetricDesc) -> Self::Opts;
    #[doc(hidden)]
    fn build(opts: &Self::Opts) -> prometheus::Result<Self>;
    /// Writes this series, whose sample lines start with `line` (`name{labels} `).
    #[doc(hidden)]
    fn encode_series(&self, line: &Line<'_>, out: &mut FamilyWriter<'_>);
}

macro_rules! plain_child {
    ($($ty:ident: $kind:ident => $sample:ident / $line:ident),* $(,)?) => {$(
        impl sealed::Sealed for $ty {}
        impl VecChild for $ty {
            type Opts = Opts;
            const TYPE: MetricType = MetricType::$kind;
            fn common(opts: &Opts) -> &Opts {
                opts
            }
            fn child_opts(opts: &Opts) -> Opts {
                Opts::new(opts.fq_name(), opts.help.clone())
            }
            fn from_desc(desc: &MetricDesc) -> Opts {
                Opts::new(desc.name, desc.help)
            }
            fn build(opts: &Opts) -> prometheus::Result<Self> {
                $ty::with_opts(opts.clone())
            }
            #[inline]
            fn encode_series(&self, line: &Line<'_>, out: &mut FamilyWriter<'_>) {
                if line.as_written {
                    out.$line(line.text, self.get());
                } else {
                    out.$sample(line.labels(), self.get());
                }
            }
        }
    )*};
}

plain_child!(
    IntCounter: COUNTER => sample_u64 / line_u64,
    Counter: COUNTER => sample_f64 / line_f64,
    IntGauge: GAUGE => sample_i64 / line_i64,
    Gauge: GAUGE => sample_f64 / line_f64,
);

impl sealed::Sealed for Histogram {}
impl VecChild for Histogram {
    type Opts = HistogramOpts;
    const TYPE: MetricType = MetricType::HISTOGRAM;
    fn common(opts: &HistogramOpts) -> &Opts {
        &opts.common_opts
    }
    fn child_opts(opts: &HistogramOpts) -> HistogramOpts {
        HistogramOpts::new(opts.common_opts.fq_name(), opts.common_opts.help.clone())
            .buckets(opts.buckets.clone())
    }
    fn from_desc(desc: &MetricDesc) -> HistogramOpts {
        HistogramOpts::new(desc.name, desc.help).buckets(desc.buckets.to_vec())
    }
    fn build(opts: &HistogramOpts) -> prometheus::Result<Self> {
        Histogram::with_opts(opts.clone())
    }
    fn encode_series(&self, line: &Line<'_>, out: &mut FamilyWriter<'_>) {
        let metric = self.metric();
        out.histogram_proto(line.labels(), metric.get_histogram());
    }
}

/// The start of a series' sample lines, as [`VecChild::encode_series`] gets it.
#[doc(hidden)]
pub struct Line<'a> {
    /// `name{labels} ` (`name ` without labels).
    text: &'a str,
    name_len: usize,
    /// Whether the family is written under the name `text` starts with, so that `text` is the
    /// start of each sample line as it is.
    as_written: bool,
}

impl Line<'_> {
    /// The label set alone, as it stands between `{` and `}`.
    fn labels(&self) -> &str {
        labels_of_line(self.text, self.name_len)
    }
}

/// Integer counters by label values: `vec.with_label_values(&["ok"]).inc()`.
pub type IntCounterVec = LabelVec<IntCounter>;
/// Float counters by label values.
pub type CounterVec = LabelVec<Counter>;
/// Integer gauges by label values.
pub type IntGaugeVec = LabelVec<IntGauge>;
/// Float gauges by label values.
pub type GaugeVec = LabelVec<Gauge>;
/// Histograms by label values.
pub type HistogramVec = LabelVec<Histogram>;

/// A family of series keyed by string label values, with the API of prometheus' `MetricVec`
/// (`with_label_values`, `get_metric_with_label_values`, `remove_label_values`, `reset`, ...) and
/// children of prometheus' types. Clones share the series. Register it like any collector
/// (`registry.register(Box::new(vec.clone()))`), or declare it in a `#[derive(Metrics)]` set,
/// where the fast exposition writes it without `gather()`.
pub struct LabelVec<T: VecChild> {
    inner: Arc<Inner<T>>,
}

impl<T: VecChild> Clone for LabelVec<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<T: VecChild> {
    desc: Desc,
    label_names: Box<[String]>,
    const_labels: Vec<(String, String)>,
    child_opts: T::Opts,
    series: RwLock<Series<T>>,
}

struct Series<T> {
    /// Dense, so a scrape is one pass.
    entries: Vec<Entry<T>>,
    /// Indices into `entries`, by the hash of the label values.
    index: HashTable<usize>,
}

struct Entry<T> {
    hash: u64,
    values: Box<[String]>,
    /// The start of the series' sample line as the exposition writes it, `name{labels} `
    /// (`exposition::render_line`).
    line: Box<str>,
    metric: T,
}

impl<T> Entry<T> {
    fn matches<V: AsRef<str>>(&self, values: &[V]) -> bool {
        self.values.len() == values.len()
            && self
                .values
                .iter()
                .zip(values)
                .all(|(have, want)| have == want.as_ref())
    }
}

#[derive(Clone, Copy, Default)]
struct FnvBuild;

impl BuildHasher for FnvBuild {
    type Hasher = fnv::FnvHasher;
    fn build_hasher(&self) -> fnv::FnvHasher {
        fnv::FnvHasher::default()
    }
}

fn hash_values<V: AsRef<str>>(values: &[V]) -> u64 {
    let mut hasher = FnvBuild.build_hasher();
    for value in values {
        hasher.write(value.as_ref().as_bytes());
        // A separator byte that UTF-8 never contains: ["ab", "c"] and ["a", "bc"] differ.
        hasher.write_u8(0xff);
    }
    hasher.finish()
}

impl<T: VecChild> LabelVec<T> {
    /// Creates a family named and described by `opts`, whose series are told apart by the
    /// labels `label_names` (as prometheus' `MetricVec::new`).
    pub fn new(opts: T::Opts, label_names: &[&str]) -> prometheus::Result<Self> {
        let common = T::common(&opts);
        let label_names: Vec<String> = label_names.iter().map(|s| (*s).to_owned()).collect();
        let desc = Desc::new(
            common.fq_name(),
            common.help.clone(),
            label_names.clone(),
            common.const_labels.clone(),
        )?;
        let mut const_labels: Vec<(String, String)> = common
            .const_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        const_labels.sort();
        let child_opts = T::child_opts(&opts);
        // The series' metric is created the same way: fail now rather than on first use.
        T::build(&child_opts)?;
        Ok(Self {
            inner: Arc::new(Inner {
                desc,
                label_names: label_names.into_boxed_slice(),
                const_labels,
                child_opts,
                series: RwLock::new(Series {
                    entries: Vec::new(),
                    index: HashTable::new(),
                }),
            }),
        })
    }

    pub(crate) fn from_desc(desc: &MetricDesc) -> prometheus::Result<Self> {
        Self::new(T::from_desc(desc), desc.labels)
    }

    fn read(&self) -> RwLockReadGuard<'_, Series<T>> {
        self.inner
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Series<T>> {
        self.inner
            .series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn check_cardinality<V>(&self, values: &[V]) -> prometheus::Result<()> {
        if values.len() == self.inner.label_names.len() {
            Ok(())
        } else {
            Err(prometheus::Error::InconsistentCardinality {
                expect: self.inner.label_names.len(),
                got: values.len(),
            })
        }
    }

    /// Every label of a series, constant ones included, sorted by name as prometheus writes them.
    fn label_pairs<'s>(&'s self, values: &'s [String]) -> Vec<(&'s str, &'s str)> {
        let mut pairs: Vec<(&str, &str)> = self
            .inner
            .const_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(
                self.inner
                    .label_names
                    .iter()
                    .map(String::as_str)
                    .zip(values.iter().map(String::as_str)),
            )
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs
    }

    /// The series of `values` (in the order of the label names), created at 0 on first use.
    /// An error when the number of values is not the number of labels.
    pub fn get_metric_with_label_values<V>(&self, values: &[V]) -> prometheus::Result<T>
    where
        V: AsRef<str> + std::fmt::Debug,
    {
        self.check_cardinality(values)?;
        let hash = hash_values(values);
        {
            let series = self.read();
            if let Some(&at) = series
                .index
                .find(hash, |&at| series.entries[at].matches(values))
            {
                return Ok(series.entries[at].metric.clone());
            }
        }
        let mut series = self.write();
        let Series { entries, index } = &mut *series;
        if let Some(&at) = index.find(hash, |&at| entries[at].matches(values)) {
            return Ok(entries[at].metric.clone());
        }
        let metric = T::build(&self.inner.child_opts)?;
        let values: Box<[String]> = values.iter().map(|v| v.as_ref().to_owned()).collect();
        let labels = render_labels(&self.label_pairs(&values));
        let line = render_line(&self.inner.desc.fq_name, &labels).into_boxed_str();
        let at = entries.len();
        entries.push(Entry {
            hash,
            values,
            line,
            metric: metric.clone(),
        });
        index.insert_unique(hash, at, |&i| entries[i].hash);
        Ok(metric)
    }

    /// As [`get_metric_with_label_values`](Self::get_metric_with_label_values).
    ///
    /// # Panics
    /// When the number of values is not the number of labels (as prometheus' `MetricVec`).
    pub fn with_label_values<V>(&self, values: &[V]) -> T
    where
        V: AsRef<str> + std::fmt::Debug,
    {
        match self.get_metric_with_label_values(values) {
            Ok(metric) => metric,
            Err(err) => panic!(
                "{} with label values {values:?}: {err}",
                self.inner.desc.fq_name
            ),
        }
    }

    fn values_of<'v, V, S>(
        &self,
        labels: &'v HashMap<&str, V, S>,
    ) -> prometheus::Result<Vec<&'v str>>
    where
        V: AsRef<str> + std::fmt::Debug,
        S: BuildHasher,
    {
        self.check_cardinality(&labels.keys().collect::<Vec<_>>())?;
        self.inner
            .label_names
            .iter()
            .map(|name| {
                labels.get(name.as_str()).map(AsRef::as_ref).ok_or_else(|| {
                    prometheus::Error::Msg(format!("label name {name} missing in label map"))
                })
            })
            .collect()
    }

    /// The series of a label map (label name -> value).
    pub fn get_metric_with<V, S>(&self, labels: &HashMap<&str, V, S>) -> prometheus::Result<T>
    where
        V: AsRef<str> + std::fmt::Debug,
        S: BuildHasher,
    {
        let values = self.values_of(labels)?;
        self.get_metric_with_label_values(&values)
    }

    /// As [`get_metric_with`](Self::get_metric_with).
    ///
    /// # Panics
    /// When the map's label names are not the family's.
    pub fn with<V, S>(&self, labels: &HashMap<&str, V, S>) -> T
    where
        V: AsRef<str> + std::fmt::Debug,
        S: BuildHasher,
    {
        match self.get_metric_with(labels) {
            Ok(metric) => metric,
            Err(err) => panic!("{} with labels {labels:?}: {err}", self.inner.desc.fq_name),
        }
    }

    /// Removes the series of `values`; an error when there is none or the count is wrong.
    pub fn remove_label_values<V>(&self, values: &[V]) -> prometheus::Result<()>
    where
        V: AsRef<str> + std::fmt::Debug,
    {
        self.check_cardinality(values)?;
        let hash = hash_values(values);
        let mut series = self.write();
        let Series { entries, index } = &mut *series;
        let Ok(found) = index.find_entry(hash, |&at| entries[at].matches(values)) else {
            return Err(prometheus::Error::Msg(format!(
                "missing label values {values:?}"
            )));
        };
        let (at, _) = found.remove();
        let last = entries.len() - 1;
        entries.swap_remove(at);
        if at != last {
            // The last entry moved to `at`.
            let moved = entries[at].hash;
            if let Some(slot) = index.find_mut(moved, |&i| i == last) {
                *slot = at;
            }
        }
        Ok(())
    }

    /// Removes the series of a label map.
    pub fn remove<V, S>(&self, labels: &HashMap<&str, V, S>) -> prometheus::Result<()>
    where
        V: AsRef<str> + std::fmt::Debug,
        S: BuildHasher,
    {
        let values = self.values_of(labels)?;
        self.remove_label_values(&values)
    }

    /// Removes every series.
    pub fn reset(&self) {
        let mut series = self.write();
        series.entries.clear();
        series.index.clear();
    }
}

impl<T: VecChild> Collector for LabelVec<T> {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.inner.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let series = self.read();
        let mut family = MetricFamily::default();
        family.set_name(self.inner.desc.fq_name.clone());
        family.set_help(self.inner.desc.help.clone());
        family.set_field_type(T::TYPE);
        let metrics = series
            .entries
            .iter()
            .map(|entry| {
                let mut metric = entry.metric.metric();
                let pairs = self
                    .label_pairs(&entry.values)
                    .into_iter()
                    .map(|(name, value)| {
                        let mut pair = LabelPair::default();
                        pair.set_name(name.to_owned());
                        pair.set_value(value.to_owned());
                        pair
                    })
                    .collect();
                metric.set_label(pairs);
                metric
            })
            .collect();
        family.set_metric(metrics);
        vec![family]
    }
}

impl<T: VecChild> EncodeMetric for LabelVec<T> {
    fn encode(&self, out: &mut FamilyWriter<'_>) {
        let name = &self.inner.desc.fq_name;
        // The lines start with our name: usable as they are when the family is written under it.
        let same_name = out.desc().name == name.as_str();
        let series = self.read();
        for entry in &series.entries {
            let line = Line {
                text: &entry.line,
                name_len: name.len(),
                as_written: same_name,
            };
            entry.metric.encode_series(&line, out);
        }
    }
}
