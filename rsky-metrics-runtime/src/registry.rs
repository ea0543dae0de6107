//! Registration of metric sets: building each declared metric, registering it, remembering who
//! declared which name (so a clash names both sides), and undoing a half-registered set.

use std::collections::HashMap;
use std::sync::Mutex;

use once_cell::sync::Lazy;
use prometheus::core::Collector;
use prometheus::{
    Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::{Error, MetricDesc};

/// A prometheus metric type that a `#[derive(Metrics)]` field may have.
pub trait Metric: Collector + Clone + 'static {
    /// Creates the metric described by `desc`.
    fn build(desc: &MetricDesc) -> prometheus::Result<Self>;
}

fn opts(desc: &MetricDesc) -> Opts {
    Opts::new(desc.name, desc.help)
}

fn histogram_opts(desc: &MetricDesc) -> HistogramOpts {
    HistogramOpts::new(desc.name, desc.help).buckets(desc.buckets.to_vec())
}

macro_rules! plain_metric {
    ($($ty:ident),*) => {$(
        impl Metric for $ty {
            fn build(desc: &MetricDesc) -> prometheus::Result<Self> {
                $ty::with_opts(opts(desc))
            }
        }
    )*};
}
plain_metric!(IntCounter, Counter, IntGauge, Gauge);

macro_rules! vec_metric {
    ($($ty:ident),*) => {$(
        impl Metric for $ty {
            fn build(desc: &MetricDesc) -> prometheus::Result<Self> {
                $ty::new(opts(desc), desc.labels)
            }
        }
    )*};
}
vec_metric!(IntCounterVec, CounterVec, IntGaugeVec, GaugeVec);

impl Metric for Histogram {
    fn build(desc: &MetricDesc) -> prometheus::Result<Self> {
        Histogram::with_opts(histogram_opts(desc))
    }
}

impl Metric for HistogramVec {
    fn build(desc: &MetricDesc) -> prometheus::Result<Self> {
        HistogramVec::new(histogram_opts(desc), desc.labels)
    }
}

/// Who declared a family name: `Set.field`, for clash messages across sets.
static DECLARERS: Lazy<Mutex<HashMap<&'static str, Vec<String>>>> =
    Lazy::new(|| Mutex::new(HashMap::new()));

fn remember(name: &'static str, declared_by: &str) {
    let mut map = DECLARERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let list = map.entry(name).or_default();
    if !list.iter().any(|d| d == declared_by) {
        list.push(declared_by.to_owned());
    }
}

fn existing_holder(name: &str, declared_by: &str) -> String {
    let map = DECLARERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let others: Vec<&String> = map
        .get(name)
        .map(|list| list.iter().filter(|d| *d != declared_by).collect())
        .unwrap_or_default();
    match others.first() {
        Some(other) => format!("declared by {other}; rename one of them"),
        None if map.get(name).is_some() => format!(
            "from an earlier registration of {declared_by}: register a set once per registry (use `global()` to share it)"
        ),
        None => "registered outside rsky-metrics; rename one of them".to_owned(),
    }
}

/// Registers the metrics of one set; if dropped before [`Registrar::finish`], unregisters what it
/// registered so that a failed set leaves the registry as it found it.
pub struct Registrar<'r> {
    registry: &'r Registry,
    set: &'static str,
    added: Vec<Box<dyn Collector>>,
    finished: bool,
}

impl<'r> Registrar<'r> {
    /// Starts registering the set named `set` in `registry`.
    pub fn new(registry: &'r Registry, set: &'static str) -> Self {
        Self {
            registry,
            set,
            added: Vec::new(),
            finished: false,
        }
    }

    /// Creates and registers the metric of `desc`.
    pub fn add<M: Metric>(&mut self, desc: &'static MetricDesc) -> Result<M, Error> {
        let declared_by = format!("{}.{}", self.set, desc.field);
        let metric = M::build(desc).map_err(|source| Error::Metric {
            metric: desc.name.to_owned(),
            declared_by: declared_by.clone(),
            source,
        })?;
        match self.registry.register(Box::new(metric.clone())) {
            Ok(()) => {
                remember(desc.name, &declared_by);
                self.added.push(Box::new(metric.clone()));
                Ok(metric)
            }
            Err(err) if is_clash(&err) => Err(Error::Clash {
                metric: desc.name.to_owned(),
                existing: existing_holder(desc.name, &declared_by),
                declared_by,
            }),
            Err(source) => Err(Error::Metric {
                metric: desc.name.to_owned(),
                declared_by,
                source,
            }),
        }
    }

    /// Keeps what was registered.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Registrar<'_> {
    fn drop(&mut self) {
        if !self.finished {
            for collector in self.added.drain(..) {
                // Best effort: it was registered by us a moment ago.
                let _ = self.registry.unregister(collector);
            }
        }
    }
}

/// Whether prometheus refused a registration because the name is taken (the same descriptor, or
/// the same name with other help or labels).
pub(crate) fn is_clash(err: &prometheus::Error) -> bool {
    match err {
        prometheus::Error::AlreadyReg => true,
        prometheus::Error::Msg(msg) => msg.contains("same fully-qualified name"),
        _ => false,
    }
}

/// Registers a set in the default registry for `global()`, panicking with the clash message.
pub fn register_global<S>(register: fn(&Registry) -> Result<S, Error>) -> S {
    match register(prometheus::default_registry()) {
        Ok(set) => set,
        Err(err) => panic!("rsky-metrics: {err}"),
    }
}
