#![doc = include_str!("../README.md")]

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
