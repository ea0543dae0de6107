//! What a rule reports: the rule, the metric, the part of the declaration at fault, the problem and
//! the fix.

use std::fmt;

/// The Prometheus type of a metric family, as far as naming is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A monotonically increasing count; its name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into buckets; writes `_bucket`, `_sum` and `_count` series.
    Histogram,
    /// Observations summarised into quantiles; writes `_sum` and `_count` series.
    Summary,
    /// An info metric (`x_info`, always 1, labeled); exposed as a gauge in the text format.
    Info,
    /// A family without a `# TYPE` (or declared `untyped`).
    Untyped,
}

impl Kind {
    /// The type as written in `# TYPE` lines.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Info => "info",
            Kind::Untyped => "untyped",
        }
    }

    /// `a counter`, `an info metric`, ...: for messages.
    pub(crate) const fn with_article(self) -> &'static str {
        match self {
            Kind::Counter => "a counter",
            Kind::Gauge => "a gauge",
            Kind::Histogram => "a histogram",
            Kind::Summary => "a summary",
            Kind::Info => "an info metric",
            Kind::Untyped => "an untyped metric",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A naming rule. Each has a stable id (shown in messages and listed in the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// Names match `^[a-z][a-z0-9_]*$`, without `__` and without a trailing `_`.
    NameCharacters,
    /// The service (namespace) follows the same characters rule.
    ServiceCharacters,
    /// A counter ends in `_total`; nothing else does.
    TotalSuffix,
    /// Suffixes reserved for other types: `_count`, `_sum`, `_bucket`, `_created`, `_info`.
    ReservedSuffix,
    /// No metric type (`counter`, `gauge`, ...) as a name segment.
    TypeInName,
    /// No abbreviated units (`ms`, `kb`, `s`, ...) as name segments.
    AbbreviatedUnit,
    /// Base units only: seconds not milliseconds, bytes not kilobytes or bits, ratio not percent.
    NonBaseUnit,
    /// A declared `unit` is a base unit.
    UnitNotBase,
    /// A name with a declared `unit` ends in `_<unit>` (before `_total`).
    UnitSuffix,
    /// Label names match `^[a-z][a-z0-9_]*$`.
    LabelCharacters,
    /// Label names starting with `__` (Prometheus) or `_` (OpenMetrics) are reserved.
    LabelReserved,
    /// A label name appears once per metric.
    LabelDuplicate,
    /// `le` is reserved on histograms, `quantile` on summaries.
    LabelReservedForType,
    /// A histogram lists at least one bucket bound.
    BucketsEmpty,
    /// Bucket bounds are finite numbers.
    BucketNotFinite,
    /// `+Inf` is implicit and is not listed.
    BucketInf,
    /// Bucket bounds are strictly increasing.
    BucketOrder,
    /// Every metric has a non-empty help text.
    Help,
    /// No two families write the same series, directly or through suffixes.
    FamilyClash,
    /// Exposition text that is malformed or inconsistent (missing `# TYPE`, duplicate series, ...).
    Exposition,
    /// Only a gauge ends in `_timestamp_seconds`.
    TimestampSuffix,
    /// A rule a team added to its [`Linter`](crate::Linter), with its own id.
    Custom(&'static str),
}

impl Rule {
    /// Every rule, in the order the README lists them.
    pub const ALL: &'static [Rule] = &[
        Rule::NameCharacters,
        Rule::ServiceCharacters,
        Rule::TotalSuffix,
        Rule::ReservedSuffix,
        Rule::TypeInName,
        Rule::AbbreviatedUnit,
        Rule::NonBaseUnit,
        Rule::UnitNotBase,
        Rule::UnitSuffix,
        Rule::TimestampSuffix,
        Rule::LabelCharacters,
        Rule::LabelReserved,
        Rule::LabelDuplicate,
        Rule::LabelReservedForType,
        Rule::BucketsEmpty,
        Rule::BucketNotFinite,
        Rule::BucketInf,
        Rule::BucketOrder,
        Rule::Help,
        Rule::FamilyClash,
        Rule::Exposition,
    ];

    /// The stable id, for example `abbreviated-unit`.
    pub const fn id(self) -> &'static str {
        match self {
            Rule::NameCharacters => "name-characters",
            Rule::ServiceCharacters => "service-characters",
            Rule::TotalSuffix => "total-suffix",
            Rule::ReservedSuffix => "reserved-suffix",
            Rule::TypeInName => "type-in-name",
            Rule::AbbreviatedUnit => "abbreviated-unit",
            Rule::NonBaseUnit => "non-base-unit",
            Rule::UnitNotBase => "unit-not-base",
            Rule::UnitSuffix => "unit-suffix",
            Rule::LabelCharacters => "label-characters",
            Rule::LabelReserved => "label-reserved",
            Rule::LabelDuplicate => "label-duplicate",
            Rule::LabelReservedForType => "label-reserved-for-type",
            Rule::BucketsEmpty => "buckets-empty",
            Rule::BucketNotFinite => "bucket-not-finite",
            Rule::BucketInf => "bucket-inf",
            Rule::BucketOrder => "bucket-order",
            Rule::Help => "help",
            Rule::FamilyClash => "family-clash",
            Rule::Exposition => "exposition",
            Rule::TimestampSuffix => "timestamp-suffix",
            Rule::Custom(id) => id,
        }
    }

    /// The rule in one sentence.
    pub const fn summary(self) -> &'static str {
        match self {
            Rule::NameCharacters => "metric names match `^[a-z][a-z0-9_]*$`, with no `__` and no trailing `_`",
            Rule::ServiceCharacters => "the service name is snake_case: `^[a-z][a-z0-9_]*$`, no `__`, no trailing `_`",
            Rule::TotalSuffix => "a counter ends in `_total`, and nothing but a counter does",
            Rule::ReservedSuffix => "`_count`, `_sum`, `_bucket`, `_created` belong to the series of counters, histograms and summaries, `_info` to info metrics",
            Rule::TypeInName => "a name does not repeat the metric type (`counter`, `gauge`, `histogram`, `summary`, `untyped`)",
            Rule::AbbreviatedUnit => "units are spelled out: `seconds`, not `s`, `ms`, `sec`; `bytes`, not `b`, `kb`, `mb`",
            Rule::NonBaseUnit => "units are base units: seconds, bytes, meters, grams, joules, volts, amperes, kelvin, celsius, and `ratio` for fractions",
            Rule::UnitNotBase => "`#[metric(unit = \"...\")]` names a base unit",
            Rule::UnitSuffix => "a metric with a unit ends in `_<unit>` (before `_total` for counters)",
            Rule::LabelCharacters => "label names match `^[a-z][a-z0-9_]*$`",
            Rule::LabelReserved => "label names starting with `__` or `_` are reserved",
            Rule::LabelDuplicate => "a label name appears once per metric",
            Rule::LabelReservedForType => "`le` is reserved on histograms and `quantile` on summaries",
            Rule::BucketsEmpty => "a histogram lists at least one bucket bound",
            Rule::BucketNotFinite => "bucket bounds are finite numbers",
            Rule::BucketInf => "the `+Inf` bucket is implicit and is not listed",
            Rule::BucketOrder => "bucket bounds are strictly increasing",
            Rule::Help => "every metric has a non-empty help text",
            Rule::FamilyClash => "no two families write the same series, directly or through suffixes",
            Rule::Exposition => "exposition text is well formed: `# TYPE` before samples, one block per family, no duplicate series",
            Rule::TimestampSuffix => "only a gauge ends in `_timestamp_seconds`: a timestamp is a value that is set, not counted or observed",
            Rule::Custom(_) => "a rule a team added to its linter",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The part of a declaration a finding is about, so a caller can point at it (the derive turns it
/// into a span).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The service name.
    Service,
    /// The metric's name (a field or its `name = "..."`).
    Name,
    /// The declared unit.
    Unit,
    /// The label at this index.
    Label(usize),
    /// The bucket bound at this index.
    Bucket(usize),
    /// The bucket list as a whole.
    Buckets,
    /// The help text.
    Help,
    /// A line of exposition text (1-based).
    Line(usize),
}

/// One broken rule: which, where, what is wrong and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule broken.
    pub rule: Rule,
    /// The full metric name (or the service name for [`Rule::ServiceCharacters`]).
    pub metric: String,
    /// What part of the declaration is at fault.
    pub target: Target,
    /// The problem, stating the rule: `"ms" is an abbreviated unit`.
    pub message: String,
    /// How to fix it, with the corrected name when there is one: ``use base units: `svc_latency_seconds` ``.
    pub fix: Option<String>,
    /// The corrected name the fix suggests, when the fix is a rename: the metric's full name for a
    /// finding about the name, the label's name for one about a label. A suggested name passes
    /// every rule the finding's check applies (not only the rule broken).
    pub rename: Option<String>,
}

impl Finding {
    /// A finding of `rule` about `metric`, pointing at `target`: for a team's own rules
    /// (`Rule::Custom("...")`) as much as for the built-in ones.
    pub fn new(rule: Rule, metric: &str, target: Target, message: impl Into<String>) -> Self {
        Self {
            rule,
            metric: metric.to_owned(),
            target,
            message: message.into(),
            fix: None,
            rename: None,
        }
    }

    /// The finding with how to fix it.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The finding with the corrected name its fix suggests.
    pub fn rename(mut self, rename: impl Into<String>) -> Self {
        self.rename = Some(rename.into());
        self
    }
}

/// A finding whose fix names `renames` (in backquotes) that only undo the broken rule; `finish`
/// turns each into a name that passes every rule.
pub(crate) struct Pending {
    pub(crate) finding: Finding,
    pub(crate) renames: Vec<String>,
}

impl Pending {
    pub(crate) fn new(finding: Finding, renames: Vec<String>) -> Self {
        Self { finding, renames }
    }

    /// The finding, with each local rename replaced by `clean(rename)` in its fix, and the first
    /// one as its [`Finding::rename`].
    pub(crate) fn finish(self, clean: impl Fn(&str) -> String) -> Finding {
        let Pending {
            mut finding,
            renames,
        } = self;
        let cleaned: Vec<String> = renames.iter().map(|r| clean(r)).collect();
        if let Some(fix) = &mut finding.fix {
            for (local, clean) in renames.iter().zip(&cleaned) {
                if local != clean {
                    *fix = fix.replace(&format!("`{local}`"), &format!("`{clean}`"));
                }
            }
        }
        finding.rename = cleaned.into_iter().next();
        finding
    }
}

impl fmt::Display for Finding {
    /// `` metric `svc_latency_ms`: "ms" is an abbreviated unit; use base units: `svc_latency_seconds` [abbreviated-unit] ``
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = match self.target {
            Target::Service => "service",
            _ => "metric",
        };
        write!(f, "{subject} `{}`: {}", self.metric, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "; {fix}")?;
        }
        if let Target::Line(line) = self.target {
            write!(f, " (line {line})")?;
        }
        write!(f, " [{}]", self.rule.id())
    }
}
