//! Test helpers that check a whole process's metrics against the naming rules: the declared sets
//! (every rule, and clashes across sets, which one derive cannot see) and the real exposition
//! text (what Prometheus will scrape, including `process_*` and `{service}_build_info`).
//!
//! One line per service test is enough:
//!
//! ```
//! use rsky_metrics_runtime::{testing, IntCounter, IntGauge, Metrics, Registry};
//!
//! /// Metrics of the demo service.
//! #[derive(Metrics)]
//! #[metrics(service = "demo")]
//! pub struct DemoMetrics {
//!     /// Requests handled
//!     pub requests: IntCounter,
//! }
//!
//! /// Metrics shared by every service of the process.
//! #[derive(Metrics)]
//! #[metrics(service = "demo_pool")]
//! pub struct PoolMetrics {
//!     /// Connections open
//!     pub connections: IntGauge,
//! }
//!
//! testing::assert_sets_clean(&[DemoMetrics::METRICS, PoolMetrics::METRICS]);
//!
//! let registry = Registry::new();
//! DemoMetrics::register(&registry).unwrap();
//! PoolMetrics::register(&registry).unwrap();
//! testing::assert_registry_clean(&registry);
//! ```
//!
//! The rules are those of `#[derive(Metrics)]`, from the same engine (`rsky-metrics-naming`);
//! the README's "Naming rules" section lists them.
//!
//! A team adds its own rules with a [`Linter`] (`Linter::new().with_rule(RequiredPrefix::new([...]))`),
//! which offers each helper below with those rules added.
//!
//! Prometheus's own linter is a second opinion on a real scrape: [`promtool_check`] pipes text
//! into `promtool check metrics` and [`assert_promtool_clean`] panics on any finding.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::Registry;
use rsky_metrics_naming as naming;

use crate::{MetricDesc, MetricKind};

pub use rsky_metrics_naming::{CustomRule, Family, Finding, RequiredPrefix, Rule, Target};

fn naming_kind(kind: MetricKind) -> naming::Kind {
    kind
}

/// Checks metric sets (each a `Set::METRICS` catalog) against every naming rule, and against each
/// other: two families that write the same series, directly or through suffixes (a histogram `x`
/// in one set and a counter `x_count` in another), are a [`Rule::FamilyClash`]. Empty means clean.
pub fn check_sets(sets: &[&[MetricDesc]]) -> Vec<Finding> {
    check_sets_with(&naming::Linter::new(), sets)
}

fn check_sets_with(linter: &naming::Linter, sets: &[&[MetricDesc]]) -> Vec<Finding> {
    let descs: Vec<&MetricDesc> = sets.iter().flat_map(|set| set.iter()).collect();
    let mut findings = Vec::new();
    for desc in &descs {
        let family = naming::Family {
            service: None,
            name: desc.name,
            kind: naming_kind(desc.kind),
            labels: desc.labels,
            buckets: (desc.kind == MetricKind::Histogram).then_some(desc.buckets),
            unit: desc.unit,
            help: Some(desc.help),
        };
        for mut finding in linter.check_family(&family) {
            finding.message = format!("{} (field `{}`)", finding.message, desc.field);
            findings.push(finding);
        }
    }
    let pairs: Vec<(&str, naming::Kind)> = descs
        .iter()
        .map(|d| (d.name, naming_kind(d.kind)))
        .collect();
    for collision in naming::collisions(&pairs) {
        let mut finding = collision.finding;
        finding.message = format!(
            "{} (field `{}` collides with field `{}`)",
            finding.message, descs[collision.second].field, descs[collision.first].field
        );
        findings.push(finding);
    }
    findings
}

/// Lints Prometheus text exposition (what `/metrics` serves): every family's name against the
/// naming rules, its `# TYPE` and `# HELP`, label names, duplicate series, families split in two,
/// and clashes between families. Findings point at [`Target::Line`]. Empty means clean.
///
/// A gauge named `..._info` counts as an info metric, as `{service}_build_info` is.
pub fn lint_exposition(text: &str) -> Vec<Finding> {
    naming::lint_exposition(text)
}

/// Lints what `registry` would serve on `/metrics` (see [`lint_exposition`]).
pub fn lint_registry(registry: &Registry) -> Vec<Finding> {
    lint_exposition(&crate::encode_text(registry))
}

fn fail_with(what: &str, findings: &[Finding], context: Option<&str>) {
    if findings.is_empty() {
        return;
    }
    let mut message = format!("{what}: {} naming problem(s)\n", findings.len());
    for finding in findings {
        message.push_str(&format!("  - {finding}\n"));
    }
    if let Some(context) = context {
        message.push_str("in:\n");
        message.push_str(context);
    }
    panic!("{message}");
}

/// Panics, listing every finding of [`check_sets`], unless the sets are clean.
#[track_caller]
pub fn assert_sets_clean(sets: &[&[MetricDesc]]) {
    fail_with("metric sets", &check_sets(sets), None);
}

/// Panics, listing every finding of [`lint_exposition`] and the text, unless it is clean.
#[track_caller]
pub fn assert_exposition_clean(text: &str) {
    fail_with("exposition", &lint_exposition(text), Some(text));
}

/// Panics, listing every finding of [`lint_registry`] and the text, unless it is clean.
#[track_caller]
pub fn assert_registry_clean(registry: &Registry) {
    assert_exposition_clean(&crate::encode_text(registry));
}

/// The naming rules plus a team's own, for every helper of this module: [`Linter::new`] checks
/// what the free functions ([`check_sets`], [`lint_exposition`], ...) check, and
/// [`Linter::with_rule`] adds a [`CustomRule`], for example a [`RequiredPrefix`]:
///
/// ```
/// use rsky_metrics_runtime::testing::{Linter, RequiredPrefix};
/// use rsky_metrics_runtime::{IntGauge, Metrics, Registry};
///
/// /// Metrics of the queue worker.
/// #[derive(Metrics)]
/// #[metrics(service = "worker")]
/// pub struct WorkerMetrics {
///     /// Items waiting
///     pub queue_length: IntGauge,
/// }
///
/// let linter = Linter::new().with_rule(RequiredPrefix::new(["ingester_", "indexer_"]));
/// let findings = linter.check_sets(&[WorkerMetrics::METRICS]);
/// assert_eq!(findings[0].rule.id(), "required-prefix");
///
/// let ours = Linter::new().with_rule(RequiredPrefix::new(["worker_"]));
/// ours.assert_sets_clean(&[WorkerMetrics::METRICS]);
/// let registry = Registry::new();
/// WorkerMetrics::register(&registry).unwrap();
/// ours.assert_registry_clean(&registry);
/// ```
#[derive(Debug, Default)]
pub struct Linter {
    inner: naming::Linter,
}

impl Linter {
    /// The built-in rules only (what the free functions check).
    pub fn new() -> Self {
        Self::default()
    }

    /// The linter with a team's `rule` added, run on every family after the built-in rules.
    #[must_use]
    pub fn with_rule(self, rule: impl CustomRule + 'static) -> Self {
        Self {
            inner: self.inner.with_rule(rule),
        }
    }

    /// [`check_sets`] with the team's rules.
    pub fn check_sets(&self, sets: &[&[MetricDesc]]) -> Vec<Finding> {
        check_sets_with(&self.inner, sets)
    }

    /// [`lint_exposition`] with the team's rules.
    pub fn lint_exposition(&self, text: &str) -> Vec<Finding> {
        self.inner.lint_exposition(text)
    }

    /// [`lint_registry`] with the team's rules.
    pub fn lint_registry(&self, registry: &Registry) -> Vec<Finding> {
        self.lint_exposition(&crate::encode_text(registry))
    }

    /// [`assert_sets_clean`] with the team's rules.
    #[track_caller]
    pub fn assert_sets_clean(&self, sets: &[&[MetricDesc]]) {
        fail_with("metric sets", &self.check_sets(sets), None);
    }

    /// [`assert_exposition_clean`] with the team's rules.
    #[track_caller]
    pub fn assert_exposition_clean(&self, text: &str) {
        fail_with("exposition", &self.lint_exposition(text), Some(text));
    }

    /// [`assert_registry_clean`] with the team's rules.
    #[track_caller]
    pub fn assert_registry_clean(&self, registry: &Registry) {
        self.assert_exposition_clean(&crate::encode_text(registry));
    }
}

/// The `promtool` that [`promtool_check`] runs: `$PROMTOOL` when set, else `promtool` on `PATH`.
fn promtool_program() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned())
}

/// Pipes `text` (Prometheus text exposition, e.g. a `/metrics` body) into
/// `promtool check metrics`. `Ok` when promtool exits 0 and prints nothing; otherwise `Err` with
/// what it printed (its findings), or its exit status when it printed nothing.
///
/// Runs `$PROMTOOL` when that is set, else `promtool` from `PATH`.
///
/// # Panics
///
/// When promtool cannot be run at all (not installed, not executable), so that a missing tool is
/// never mistaken for findings: the message says to install it (Debian's `prometheus` package,
/// which the test command installs) or to point `PROMTOOL` at it.
pub fn promtool_check(text: &str) -> Result<(), String> {
    let program = promtool_program();
    let mut child = Command::new(&program)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run `{program} check metrics` ({err}): promtool must be installed (the \
                 test command installs Debian's `prometheus` package) or PROMTOOL must name it"
            )
        });
    // promtool may stop reading early (e.g. on a parse error) and close its stdin: what it says
    // about the text is in its output, so a failed write is not the finding.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("waiting for `{program} check metrics` failed: {err}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match (output.status.success(), said.trim().is_empty()) {
        (true, true) => Ok(()),
        (_, false) => Err(said),
        (false, true) => Err(format!(
            "promtool exited with {} and said nothing",
            output.status
        )),
    }
}

/// Panics, with promtool's findings and the text, unless `promtool check metrics` finds nothing
/// wrong with `text` (see [`promtool_check`], which also says how a missing promtool is reported).
#[track_caller]
pub fn assert_promtool_clean(text: &str) {
    if let Err(findings) = promtool_check(text) {
        panic!("promtool check metrics found problems:\n{findings}\nin:\n{text}");
    }
}
