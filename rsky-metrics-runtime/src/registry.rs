//! Registration of metric sets: building each declared metric, registering it, remembering who
//! declared which name (so a clash names both sides), and undoing a half-registered set.

use std::collections::HashMap;
use std::sync::Mutex;

use once_cell::sync::Lazy;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Histogram, HistogramOpts, IntCounter, IntGauge, Opts, Registry};

use rsky_metrics_naming as naming;

use crate::exposition::{EncodeMetric, Fast};
use crate::vec::{LabelVec, VecChild};
use crate::{Error, MetricDesc, MetricKind};

/// A metric type that a `#[derive(Metrics)]` field may have. It writes its own series into the
/// fast exposition ([`EncodeMetric`]) and answers `gather()` as any prometheus collector.
pub trait Metric: Collector + EncodeMetric + Clone + 'static {
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

/// prometheus' own `MetricVec`s still work as fields (written through their `collect()`); the
/// crate's `IntCounterVec`, ... are [`LabelVec`]s, written straight from their series.
macro_rules! prometheus_vec_metric {
    ($($ty:ident),*) => {$(
        impl Metric for prometheus::$ty {
            fn build(desc: &MetricDesc) -> prometheus::Result<Self> {
                prometheus::$ty::new(opts(desc), desc.labels)
            }
        }
    )*};
}
prometheus_vec_metric!(IntCounterVec, CounterVec, IntGaugeVec, GaugeVec);

impl<T: VecChild> Metric for LabelVec<T> {
    fn build(desc: &MetricDesc) -> prometheus::Result<Self> {
        LabelVec::from_desc(desc)
    }
}

impl Metric for Histogram {
    fn build(desc: &MetricDesc) -> prometheus::Result<Self> {
        Histogram::with_opts(histogram_opts(desc))
    }
}

impl Metric for prometheus::HistogramVec {
    fn build(desc: &MetricDesc) -> prometheus::Result<Self> {
        prometheus::HistogramVec::new(histogram_opts(desc), desc.labels)
    }
}

/// Who owns a series name in some registry: the declaration (`Set.field`), its family and type.
/// A family owns its own name and the series its type writes or reserves (a histogram `x` owns
/// `x_bucket`, `x_sum`, `x_count`, `x_created`; a counter `x_total` owns `x` and `x_created`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    declared_by: String,
    family: &'static str,
    kind: MetricKind,
}

impl Holder {
    /// What holds `series`, in words, for clash messages.
    fn describe(&self, series: &str) -> String {
        if self.family == series {
            format!("declared by {}", self.declared_by)
        } else {
            format!(
                "a series of the {} `{}` declared by {} ({})",
                self.kind,
                self.family,
                self.declared_by,
                naming::describe_owned(self.family, naming_kind(self.kind))
            )
        }
    }
}

/// Series name -> its holders, process-wide (one entry per registration that succeeded), so a
/// clash can name the other declaration. Which registry holds what is the registry's own business:
/// the registry decides *whether* there is a clash, this map only says *who*.
static DECLARERS: Lazy<Mutex<HashMap<String, Vec<Holder>>>> =
    Lazy::new(|| Mutex::new(HashMap::new()));

fn remember(holders: Vec<(String, Holder)>) {
    let mut map = DECLARERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for (series, holder) in holders {
        let list = map.entry(series).or_default();
        if !list.contains(&holder) {
            list.push(holder);
        }
    }
}

fn existing_holder(series: &str, declared_by: &str, pending: &[(String, Holder)]) -> String {
    let map = DECLARERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let known: Vec<&Holder> = pending
        .iter()
        .filter(|(s, _)| s == series)
        .map(|(_, h)| h)
        .chain(map.get(series).into_iter().flatten())
        .collect();
    match known.iter().find(|h| h.declared_by != declared_by) {
        Some(other) => format!("{}; rename one of them", other.describe(series)),
        None if !known.is_empty() => format!(
            "from an earlier registration of {declared_by}: register a set once per registry (use `global()` to share it)"
        ),
        None => "registered outside rsky-metrics; rename one of them".to_owned(),
    }
}

fn naming_kind(kind: MetricKind) -> naming::Kind {
    kind
}

/// Reserves a series name that a family writes or implies but prometheus does not register (the
/// `x_count` of a histogram `x`), so that another family of that name is refused by the registry
/// like a duplicate. It collects nothing: the scrape does not change.
///
/// Like every descriptor, a claim that was unregistered again (a failed set) leaves prometheus'
/// record of the name's help and labels behind.
#[derive(Clone)]
struct Claim {
    desc: Desc,
}

impl Collector for Claim {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        Vec::new()
    }
}

/// Registers the metrics of one set; if dropped before [`Registrar::finish`], unregisters what it
/// registered so that a failed set leaves the registry as it found it.
pub struct Registrar<'r> {
    registry: &'r Registry,
    set: &'static str,
    added: Vec<Box<dyn Collector>>,
    holders: Vec<(String, Holder)>,
    finished: bool,
}

impl<'r> Registrar<'r> {
    /// Starts registering the set named `set` in `registry`.
    pub fn new(registry: &'r Registry, set: &'static str) -> Self {
        Self {
            registry,
            set,
            added: Vec::new(),
            holders: Vec::new(),
            finished: false,
        }
    }

    /// Creates and registers the metric of `desc`, and reserves the series its type implies; a
    /// name taken by another family, directly or through a suffix, is an [`Error::Clash`] naming
    /// both declarations.
    ///
    /// The registry holds the metric wrapped with its `# HELP`/`# TYPE` lines rendered once, so
    /// that the fast exposition writes it from its values; `gather()` sees the metric as it is.
    pub fn add<M: Metric>(&mut self, desc: &'static MetricDesc) -> Result<M, Error> {
        let declared_by = format!("{}.{}", self.set, desc.field);
        let metric = M::build(desc).map_err(|source| Error::Metric {
            metric: desc.name.to_owned(),
            declared_by: declared_by.clone(),
            source,
        })?;
        let fast = Fast::new(metric.clone(), desc);
        match self.registry.register(Box::new(fast.clone())) {
            Ok(()) => self.added.push(Box::new(fast)),
            Err(err) if is_clash(&err) => {
                return Err(Error::Clash {
                    metric: desc.name.to_owned(),
                    existing: existing_holder(desc.name, &declared_by, &self.holders),
                    declared_by,
                })
            }
            Err(source) => {
                return Err(Error::Metric {
                    metric: desc.name.to_owned(),
                    declared_by,
                    source,
                })
            }
        }
        let holder = Holder {
            declared_by: declared_by.clone(),
            family: desc.name,
            kind: desc.kind,
        };
        self.holders.push((desc.name.to_owned(), holder.clone()));
        for series in naming::owned_series(desc.name, naming_kind(desc.kind)) {
            if series == desc.name {
                continue;
            }
            self.claim(&series, &holder)?;
            self.holders.push((series, holder.clone()));
        }
        Ok(metric)
    }

    fn claim(&mut self, series: &str, holder: &Holder) -> Result<(), Error> {
        let claimed_by = format!(
            "{} (the {} `{}` reserves `{series}`)",
            holder.declared_by, holder.kind, holder.family
        );
        let desc = Desc::new(
            series.to_owned(),
            format!("Reserved by the {} {}", holder.kind, holder.family),
            Vec::new(),
            HashMap::new(),
        )
        .map_err(|source| Error::Metric {
            metric: series.to_owned(),
            declared_by: claimed_by.clone(),
            source,
        })?;
        let claim = Claim { desc };
        match self.registry.register(Box::new(claim.clone())) {
            Ok(()) => {
                self.added.push(Box::new(claim));
                Ok(())
            }
            Err(err) if is_clash(&err) => Err(Error::Clash {
                metric: series.to_owned(),
                existing: existing_holder(series, &holder.declared_by, &self.holders),
                declared_by: claimed_by,
            }),
            Err(source) => Err(Error::Metric {
                metric: series.to_owned(),
                declared_by: claimed_by,
                source,
            }),
        }
    }

    /// Keeps what was registered.
    pub fn finish(mut self) {
        self.finished = true;
        remember(std::mem::take(&mut self.holders));
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
