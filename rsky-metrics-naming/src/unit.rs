//! Rules on units: abbreviated and non-base units in names, and a declared `unit`.

use crate::finding::{Finding, Kind, Rule, Target};
use crate::name::stem;

/// The base units a name or a declared `unit` may use.
pub const BASE_UNITS: &[&str] = &[
    "seconds", "bytes", "meters", "grams", "joules", "volts", "amperes", "kelvin", "celsius",
    "ratio",
];

/// SI and binary prefixes: any of them before a unit makes it non-base.
const PREFIXES: &[&str] = &[
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mebi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

/// Abbreviated units and the base unit to use instead.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("s", "seconds"),
    ("ms", "seconds"),
    ("us", "seconds"),
    ("ns", "seconds"),
    ("sec", "seconds"),
    ("secs", "seconds"),
    ("h", "seconds"),
    ("d", "seconds"),
    ("m", "meters"),
    ("b", "bytes"),
    ("kb", "bytes"),
    ("mb", "bytes"),
    ("gb", "bytes"),
    ("tb", "bytes"),
    ("pb", "bytes"),
];

/// Spelled-out units that are not base units, and their base unit.
const NON_BASE: &[(&str, &str)] = &[
    ("minute", "seconds"),
    ("minutes", "seconds"),
    ("hour", "seconds"),
    ("hours", "seconds"),
    ("day", "seconds"),
    ("days", "seconds"),
    ("week", "seconds"),
    ("weeks", "seconds"),
    ("bit", "bytes"),
    ("bits", "bytes"),
    ("percent", "ratio"),
    ("percentage", "ratio"),
];

/// The base unit of a segment that is a prefixed unit (`milliseconds` -> `seconds`).
fn prefixed_base(segment: &str) -> Option<&'static str> {
    let rest = PREFIXES.iter().find_map(|p| segment.strip_prefix(p))?;
    let rest = rest.strip_suffix('s').unwrap_or(rest);
    let base = match rest {
        "second" => "seconds",
        "byte" | "bit" => "bytes",
        "meter" | "metre" => "meters",
        "gram" => "grams",
        "joule" => "joules",
        "volt" => "volts",
        "ampere" | "amp" => "amperes",
        _ => return None,
    };
    Some(base)
}

/// Why `segment` is not a base unit and which base unit replaces it.
fn classify(segment: &str) -> Option<(Rule, &'static str)> {
    if let Some((_, base)) = ABBREVIATIONS.iter().find(|(a, _)| *a == segment) {
        return Some((Rule::AbbreviatedUnit, base));
    }
    if let Some((_, base)) = NON_BASE.iter().find(|(u, _)| *u == segment) {
        return Some((Rule::NonBaseUnit, base));
    }
    prefixed_base(segment).map(|base| (Rule::NonBaseUnit, base))
}

/// `name` with segment `index` replaced by `base` (a neighbouring copy of `base` is not repeated).
fn replace_segment(name: &str, kind: Kind, index: usize, base: &str) -> String {
    let segments: Vec<&str> = stem(name, kind).split('_').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let segment = if i == index { base } else { segment };
        if out.last() != Some(&segment) {
            out.push(segment);
        }
    }
    let mut fixed = out.join("_");
    if kind == Kind::Counter {
        fixed.push_str("_total");
    }
    fixed
}

pub(crate) fn check_name_units(name: &str, kind: Kind, out: &mut Vec<Finding>) {
    // The first segment is the service: a service called `s` or `m` is a name, not a unit.
    for (index, segment) in stem(name, kind).split('_').enumerate().skip(1) {
        let Some((rule, base)) = classify(segment) else {
            continue;
        };
        let fixed = replace_segment(name, kind, index, base);
        let finding = match (rule, segment) {
            (Rule::AbbreviatedUnit, "m") => {
                Finding::new(rule, name, Target::Name, "\"m\" is an abbreviated unit").fix(format!(
                    "use base units: `{fixed}` for meters, or `{}` for minutes",
                    replace_segment(name, kind, index, "seconds")
                ))
            }
            (Rule::AbbreviatedUnit, _) => Finding::new(
                rule,
                name,
                Target::Name,
                format!("\"{segment}\" is an abbreviated unit"),
            )
            .fix(format!("use base units: `{fixed}`")),
            (_, "percent" | "percentage") => Finding::new(
                rule,
                name,
                Target::Name,
                format!("\"{segment}\" is not a base unit; fractions are ratios from 0 to 1"),
            )
            .fix(format!("use `{fixed}` and record 0.25 for 25%")),
            _ => Finding::new(
                rule,
                name,
                Target::Name,
                format!("\"{segment}\" is not a base unit"),
            )
            .fix(format!("use base units: `{fixed}`")),
        };
        out.push(finding);
    }
}

/// Checks a declared unit (`#[metric(unit = "...")]`): it is a base unit, and the name ends in
/// `_<unit>` (before `_total` for counters).
pub fn check_unit(name: &str, kind: Kind, unit: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    if !BASE_UNITS.contains(&unit) {
        let base = classify(unit).map(|(_, base)| base);
        let mut finding = Finding::new(
            Rule::UnitNotBase,
            name,
            Target::Unit,
            format!(
                "unit \"{unit}\" is not a base unit; units are one of {}",
                BASE_UNITS.join(", ")
            ),
        );
        if let Some(base) = base {
            finding = finding.fix(format!(
                "write `unit = \"{base}\"` and record values in {base}"
            ));
        }
        out.push(finding);
        return out;
    }
    let stem = stem(name, kind);
    if !stem.ends_with(&format!("_{unit}")) {
        let mut fixed = format!("{stem}_{unit}");
        if kind == Kind::Counter {
            fixed.push_str("_total");
        }
        out.push(
            Finding::new(
                Rule::UnitSuffix,
                name,
                Target::Name,
                format!(
                    "the unit is \"{unit}\" but the name does not end in `_{unit}`{}",
                    if kind == Kind::Counter {
                        " (before `_total`)"
                    } else {
                        ""
                    }
                ),
            )
            .fix(format!("rename it `{fixed}`")),
        );
    }
    out
}
