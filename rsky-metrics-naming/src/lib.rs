//! The metric naming rules of rsky-metrics, on plain strings.
//!
//! One engine serves two callers: `#[derive(Metrics)]` turns each [`Finding`] into a compile error
//! spanned on the part of the declaration its [`Target`] names, and the runtime's `testing` module
//! turns findings about real `/metrics` text into test failures. Every rule has a stable
//! [`Rule::id`] and every finding says what is wrong and how to fix it; a fix that renames names
//! a corrected name ([`Finding::rename`]) that passes every rule, not only the one broken.
//!
//! The rules include every default validation of promlint (client_golang's
//! `prometheus/testutil/promlint`, the linter of `promtool check metrics`), its unit table
//! ([`NON_BASE_UNITS`], [`UNIT_PREFIXES`], [`UNIT_ABBREVIATIONS`]) included. A team adds its own
//! rules with a [`Linter`] and a [`CustomRule`] such as [`RequiredPrefix`].
//!
//! ```
//! use rsky_metrics_naming::{check_name, Kind, Rule};
//!
//! let findings = check_name("svc_latency_ms", Kind::Gauge);
//! assert_eq!(findings[0].rule, Rule::AbbreviatedUnit);
//! assert_eq!(
//!     findings[0].to_string(),
//!     "metric `svc_latency_ms`: \"ms\" is an abbreviated unit; use base units: `svc_latency_seconds` [abbreviated-unit]"
//! );
//! assert!(check_name("svc_latency_seconds", Kind::Histogram).is_empty());
//! ```

mod exposition;
mod family;
mod finding;
mod linter;
mod name;
mod unit;

pub use exposition::lint_exposition;
pub use family::{
    check_buckets, check_family, check_help, check_labels, collisions, describe_owned,
    format_bound, owned_series, suggest_label, Collision, Family,
};
pub use finding::{Finding, Kind, Rule, Target};
pub use linter::{CustomRule, Linter, RequiredPrefix};
pub use name::{check_name, check_service, stem, suggest_name, to_snake_case};
pub use unit::{check_unit, BASE_UNITS, NON_BASE_UNITS, UNIT_ABBREVIATIONS, UNIT_PREFIXES};

/// The exposed name of a declared family: `{service}_{base}`, plus `_total` for counters unless
/// `base` already ends in `_total`.
pub fn full_name(service: &str, base: &str, kind: Kind) -> String {
    let mut name = format!("{service}_{base}");
    if kind == Kind::Counter && !name.ends_with("_total") {
        name.push_str("_total");
    }
    name
}
