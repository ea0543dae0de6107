//! A linter with a team's own rules on top of the built-in ones.

use std::fmt;

use crate::exposition::lint_with;
use crate::family::{check_family, Family};
use crate::finding::{Finding, Rule, Target};

/// A team's own naming rule, run by a [`Linter`] on each family after the built-in rules.
///
/// A rule sees one family as a [`Family`]: from a declared set, everything the declaration says;
/// from exposition text, the name, the type, the help and the label names of its samples (`le`
/// of buckets and `quantile` of summaries left out), with no service, unit or buckets.
///
/// ```
/// use rsky_metrics_naming::{CustomRule, Family, Finding, Linter, Rule, Target};
///
/// /// Every gauge says what it holds in its help text.
/// struct GaugeHelpSaysWhat;
///
/// impl CustomRule for GaugeHelpSaysWhat {
///     fn id(&self) -> &'static str {
///         "gauge-help-length"
///     }
///     fn check(&self, family: &Family<'_>) -> Vec<Finding> {
///         let short = family.help.is_some_and(|h| h.split_whitespace().count() < 2);
///         if !short {
///             return Vec::new();
///         }
///         vec![Finding::new(Rule::Custom(self.id()), family.name, Target::Help, "the help text is one word")
///             .fix("say what is measured, and in which unit")]
///     }
/// }
///
/// let linter = Linter::new().with_rule(GaugeHelpSaysWhat);
/// let findings = linter.lint_exposition("# HELP svc_queue Queue\n# TYPE svc_queue gauge\nsvc_queue 1\n");
/// assert_eq!(findings[0].rule.id(), "gauge-help-length");
/// ```
pub trait CustomRule: Send + Sync {
    /// The rule's stable id, shown in brackets after each of its findings; use it as
    /// `Rule::Custom(self.id())` in the findings.
    fn id(&self) -> &'static str;

    /// The rule's findings about `family` (empty: the family passes).
    fn check(&self, family: &Family<'_>) -> Vec<Finding>;
}

/// Every family's name starts with one of the team's prefixes (`ingester_`, `backfiller_`, ...):
/// a ready-made [`CustomRule`], and the example of one.
///
/// ```
/// use rsky_metrics_naming::{Linter, RequiredPrefix};
///
/// let linter = Linter::new().with_rule(RequiredPrefix::new(["ingester_", "indexer_"]));
/// let text = "# HELP queue_length Items waiting\n# TYPE queue_length gauge\nqueue_length 1\n";
/// let findings = linter.lint_exposition(text);
/// assert_eq!(findings[0].rule.id(), "required-prefix");
/// assert_eq!(
///     findings[0].to_string(),
///     "metric `queue_length`: the name does not start with a required prefix (`ingester_`, `indexer_`); \
///      rename it, for example `ingester_queue_length` (line 1) [required-prefix]"
/// );
/// ```
#[derive(Clone, Debug)]
pub struct RequiredPrefix {
    prefixes: Vec<String>,
}

impl RequiredPrefix {
    /// A rule that accepts a name starting with any one of `prefixes`.
    pub fn new<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            prefixes: prefixes.into_iter().map(Into::into).collect(),
        }
    }
}

impl CustomRule for RequiredPrefix {
    fn id(&self) -> &'static str {
        "required-prefix"
    }

    fn check(&self, family: &Family<'_>) -> Vec<Finding> {
        if self.prefixes.iter().any(|p| family.name.starts_with(p)) {
            return Vec::new();
        }
        let listed = self
            .prefixes
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut finding = Finding::new(
            Rule::Custom(self.id()),
            family.name,
            Target::Name,
            format!("the name does not start with a required prefix ({listed})"),
        );
        match self.prefixes.first() {
            Some(prefix) => {
                let fixed = format!("{prefix}{}", family.name);
                finding = finding
                    .fix(format!("rename it, for example `{fixed}`"))
                    .rename(fixed);
            }
            None => finding = finding.fix("list at least one prefix in `RequiredPrefix::new`"),
        }
        vec![finding]
    }
}

/// The naming rules (every built-in rule, promlint's included) plus a team's own
/// ([`Linter::with_rule`]). [`Linter::new`] alone checks exactly what [`lint_exposition`] and
/// [`check_family`] do.
///
/// [`lint_exposition`]: crate::lint_exposition
#[derive(Default)]
pub struct Linter {
    rules: Vec<Box<dyn CustomRule>>,
}

impl Linter {
    /// The built-in rules only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The linter with `rule` added: it runs on every family, after the built-in rules.
    #[must_use]
    pub fn with_rule(mut self, rule: impl CustomRule + 'static) -> Self {
        self.rules.push(Box::new(rule));
        self
    }

    /// The ids of the team's rules, in the order they were added.
    pub fn custom_rules(&self) -> Vec<&'static str> {
        self.rules.iter().map(|r| r.id()).collect()
    }

    /// Every built-in rule a declaration decides ([`check_family`]), then the team's rules.
    pub fn check_family(&self, family: &Family<'_>) -> Vec<Finding> {
        let mut out = check_family(family);
        for rule in &self.rules {
            out.extend(rule.check(family));
        }
        out
    }

    /// [`lint_exposition`](crate::lint_exposition), then the team's rules on each family; their
    /// findings point at the family's first line.
    pub fn lint_exposition(&self, text: &str) -> Vec<Finding> {
        lint_with(text, &self.rules)
    }
}

impl fmt::Debug for Linter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Linter")
            .field("custom_rules", &self.custom_rules())
            .finish()
    }
}
