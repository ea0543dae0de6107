//! The registry, and registration of metric sets: building each declared metric, registering
//! it, remembering who declared which name (so a clash names both sides), and undoing a
//! half-registered set.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use once_cell::sync::Lazy;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Histogram, HistogramOpts, IntCounter, IntGauge, Opts};

use rsky_metrics_naming as naming;

use crate::exposition::{Derived, EncodeMetric, Fast};
use crate::vec::{LabelVec, VecChild};
use crate::{Error, MetricDesc, MetricKind};

/// What `/metrics` serves: the families of `#[derive(Metrics)]` sets, which the registry owns and
/// the encoder ([`crate::exposition`]) writes straight from their values, in registration order
/// (a set's fields in declaration order), and every other collector (process metrics,
/// `{service}_build_info`, other crates' metrics) in an inner [`prometheus::Registry`].
///
/// Cheap to clone: clones share the same families and collectors.
///
/// ```
/// use rsky_metrics_runtime::{IntCounter, Metrics, Registry};
///
/// /// Metrics of the demo service.
/// #[derive(Metrics)]
/// #[metrics(service = "registry_doc")]
/// pub struct DemoMetrics {
///     /// Requests handled
///     pub requests: IntCounter,
/// }
///
/// let registry = Registry::new();
/// let metrics = DemoMetrics::register(&registry).unwrap();
/// metrics.requests.inc();
/// // Another crate's collector beside the set.
/// let up = prometheus::IntGauge::new("other_up", "Whether other is up").unwrap();
/// registry.register(Box::new(up.clone())).unwrap();
/// let text = rsky_metrics_runtime::encode_text(&registry);
/// assert!(text.contains("registry_doc_requests_total 1\n"));
/// // gather() sees both, for code that encodes with prometheus' TextEncoder.
/// assert_eq!(registry.gather().len(), 2);
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    /// Every collector that is not a derived family, and a desc-only claim for each derived
    /// family's names (so that prometheus still refuses a clash, with its own checks).
    prometheus: prometheus::Registry,
    /// What `new_custom` was given, in words, when it was given a prefix or constant labels.
    custom: Option<String>,
    /// Derived families, in registration order.
    families: RwLock<Vec<Arc<dyn Derived>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::wrap(prometheus::Registry::new(), None)
    }

    /// A registry whose other collectors get the namespace `prefix` and the constant `labels`
    /// (as [`prometheus::Registry::new_custom`]).
    ///
    /// A `#[derive(Metrics)]` set cannot be registered in such a registry: its families are named
    /// by the set (`{service}_{field}`) and rendered once, so registering one returns
    /// [`Error::CustomRegistry`] rather than serving a body where some families have the prefix
    /// and labels and others not. Add target labels in Prometheus' scrape configuration instead.
    pub fn new_custom(
        prefix: Option<String>,
        labels: Option<HashMap<String, String>>,
    ) -> prometheus::Result<Self> {
        let mut custom = Vec::new();
        if let Some(prefix) = prefix.as_deref().filter(|p| !p.is_empty()) {
            custom.push(format!("the prefix `{prefix}`"));
        }
        if let Some(labels) = labels.as_ref().filter(|l| !l.is_empty()) {
            let mut names: Vec<&str> = labels.keys().map(String::as_str).collect();
            names.sort_unstable();
            custom.push(format!("the constant labels {}", names.join(", ")));
        }
        let inner = prometheus::Registry::new_custom(prefix, labels)?;
        let custom = (!custom.is_empty()).then(|| custom.join(" and "));
        Ok(Self::wrap(inner, custom))
    }

    fn wrap(prometheus: prometheus::Registry, custom: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                prometheus,
                custom,
                families: RwLock::new(Vec::new()),
            }),
        }
    }

    /// The inner prometheus registry, which holds every collector that is not a derived family.
    /// Its `gather()` does not include derived families: use [`Registry::gather`].
    pub fn prometheus(&self) -> &prometheus::Registry {
        &self.inner.prometheus
    }

    /// Registers another collector (prometheus metrics, another crate's collector); refused, as
    /// prometheus refuses it, when a name is already taken, by a derived family too.
    pub fn register(&self, collector: Box<dyn Collector>) -> prometheus::Result<()> {
        self.inner.prometheus.register(collector)
    }

    /// Unregisters a collector registered with [`Registry::register`].
    pub fn unregister(&self, collector: Box<dyn Collector>) -> prometheus::Result<()> {
        self.inner.prometheus.unregister(collector)
    }

    /// Every family of the registry as prometheus records, derived families included (built on
    /// demand), sorted by name as [`prometheus::Registry::gather`] sorts them, so that
    /// `TextEncoder.encode(&registry.gather(), ..)` sees what `/metrics` serves.
    pub fn gather(&self) -> Vec<MetricFamily> {
        let mut families = self.inner.prometheus.gather();
        for family in self.families() {
            for mut gathered in family.collect() {
                if gathered.get_metric().is_empty() {
                    continue;
                }
                sort_metrics(gathered.mut_metric());
                families.push(gathered);
            }
        }
        families.sort_by(|a, b| a.name().cmp(b.name()));
        families
    }

    /// The derived families, in registration order.
    pub(crate) fn families(&self) -> Vec<Arc<dyn Derived>> {
        self.inner
            .families
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn add_families(&self, added: Vec<Arc<dyn Derived>>) {
        self.inner
            .families
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(added);
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("derived_families", &self.families().len())
            .field("custom", &self.inner.custom)
            .finish()
    }
}

/// As prometheus' `gather()`: a family's series ordered by their label values.
fn sort_metrics(metrics: &mut [prometheus::proto::Metric]) {
    metrics.sort_by(|m1, m2| {
        let (lps1, lps2) = (m1.get_label(), m2.get_label());
        if lps1.len() != lps2.len() {
            return lps1.len().cmp(&lps2.len());
        }
        for (lp1, lp2) in lps1.iter().zip(lps2) {
            if lp1.value() != lp2.value() {
                return lp1.value().cmp(lp2.value());
            }
        }
        m1.timestamp_ms().cmp(&m2.timestamp_ms())
    });
}

/// The registry that `global()` sets register in and that [`crate::MetricsServer`] serves unless
/// given another: it wraps [`prometheus::default_registry`], so collectors registered there
/// (`prometheus::register_int_counter!`, ...) are served too.
///
/// `prometheus::gather()` reads only the inner registry, without the derived families: use
/// `default_registry().gather()` (or [`crate::encode_text`]) instead.
pub fn default_registry() -> &'static Registry {
    static DEFAULT: Lazy<Registry> =
        Lazy::new(|| Registry::wrap(prometheus::default_registry().clone(), None));
    &DEFAULT
}

/// A metric type that a `#[derive(Metrics)]` field may have. It writes its own series into the
/// exposition ([`EncodeMetric`]) and answers `collect()` as any prometheus collector (for
/// [`Registry::gather`]).
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
///
/// A derived family itself is registered in the inner prometheus registry as such a claim of its
/// descriptors: prometheus checks its name against every other collector, and its `gather()`
/// never builds the family's records (the encoder writes it from its values).
#[derive(Clone)]
struct Claim {
    descs: Vec<Desc>,
}

impl Collector for Claim {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
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
    families: Vec<Arc<dyn Derived>>,
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
            families: Vec::new(),
            holders: Vec::new(),
            finished: false,
        }
    }

    /// Creates and registers the metric of `desc`, and reserves the series its type implies; a
    /// name taken by another family, directly or through a suffix, is an [`Error::Clash`] naming
    /// both declarations.
    ///
    /// The registry keeps the metric with its `# HELP`/`# TYPE` lines rendered once, so that the
    /// encoder writes it from its values, after the families registered before it.
    pub fn add<M: Metric>(&mut self, desc: &'static MetricDesc) -> Result<M, Error> {
        let declared_by = format!("{}.{}", self.set, desc.field);
        if let Some(custom) = &self.registry.inner.custom {
            return Err(Error::CustomRegistry {
                set: self.set.to_owned(),
                custom: custom.clone(),
            });
        }
        let metric = M::build(desc).map_err(|source| Error::Metric {
            metric: desc.name.to_owned(),
            declared_by: declared_by.clone(),
            source,
        })?;
        let claim = Claim {
            descs: metric.desc().into_iter().cloned().collect(),
        };
        match self.registry.register(Box::new(claim.clone())) {
            Ok(()) => {
                self.added.push(Box::new(claim));
                self.families
                    .push(Arc::new(Fast::new(metric.clone(), desc)));
            }
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
        let claim = Claim { descs: vec![desc] };
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
        self.registry
            .add_families(std::mem::take(&mut self.families));
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
    match register(default_registry()) {
        Ok(set) => set,
        Err(err) => panic!("rsky-metrics: {err}"),
    }
}
