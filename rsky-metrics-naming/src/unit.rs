//! Rules on units: abbreviated and non-base units in names, and a declared `unit`.
//!
//! The unit table is promlint's (client_golang `promlint/validations/units.go`): every base unit,
//! every non-base unit it knows with its base unit, and every SI and binary prefix applied to every
//! one of them. A few entries go beyond it (singular and percent forms, `secs`, the correct binary
//! prefix `mebi` next to promlint's `mibi`); the README lists them.

use crate::finding::{Finding, Kind, Pending, Rule, Target};
use crate::name::{stem, suggest_name};

/// The base units a name or a declared `unit` may use (`metres` is promlint's other spelling of
/// `meters`; `ratio` is for fractions).
pub const BASE_UNITS: &[&str] = &[
    "seconds", "bytes", "meters", "metres", "grams", "joules", "volts", "amperes", "kelvin",
    "celsius", "ratio",
];

/// SI and binary prefixes: any of them before a unit makes it non-base. `mibi` is promlint's
/// spelling, `mebi` the standard one; both are listed.
pub const UNIT_PREFIXES: &[&str] = &[
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mebi", "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

/// Abbreviated units and the base unit to use instead (promlint's list, plus `secs`).
pub const UNIT_ABBREVIATIONS: &[(&str, &str)] = &[
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

/// Spelled-out units that are not base units, and their base unit: promlint's table (time,
/// temperature, length, data, energy, mass) first, then the project's additions.
pub const NON_BASE_UNITS: &[(&str, &str)] = &[
    ("minutes", "seconds"),
    ("hours", "seconds"),
    ("days", "seconds"),
    ("weeks", "seconds"),
    ("kelvins", "kelvin"),
    ("fahrenheit", "celsius"),
    ("rankine", "celsius"),
    ("inches", "meters"),
    ("yards", "meters"),
    ("miles", "meters"),
    ("bits", "bytes"),
    ("calories", "joules"),
    ("pounds", "grams"),
    ("ounces", "grams"),
    // Beyond promlint: singular forms and percentages.
    ("minute", "seconds"),
    ("hour", "seconds"),
    ("day", "seconds"),
    ("week", "seconds"),
    ("bit", "bytes"),
    ("percent", "ratio"),
    ("percentage", "ratio"),
];

/// Singular units that take a prefix (`millisecond`, `kilobyte`), beyond promlint.
const SINGULAR_UNITS: &[(&str, &str)] = &[
    ("second", "seconds"),
    ("byte", "bytes"),
    ("meter", "meters"),
    ("metre", "metres"),
    ("gram", "grams"),
    ("joule", "joules"),
    ("volt", "volts"),
    ("ampere", "amperes"),
    ("amp", "amperes"),
];

/// The base unit of a spelled-out unit without a prefix (a base unit maps to itself).
fn unit_base(unit: &str) -> Option<&'static str> {
    if let Some(base) = BASE_UNITS.iter().find(|b| **b == unit && **b != "ratio") {
        return Some(base);
    }
    NON_BASE_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, base)| *base)
}

/// The base unit of a segment that is a prefixed unit (`milliseconds` -> `seconds`,
/// `kilocelsius` -> `celsius`, `megabits` -> `bytes`).
fn prefixed_base(segment: &str) -> Option<&'static str> {
    UNIT_PREFIXES.iter().find_map(|p| {
        let rest = segment.strip_prefix(p)?;
        unit_base(rest).or_else(|| {
            SINGULAR_UNITS
                .iter()
                .find(|(u, _)| *u == rest)
                .map(|(_, base)| *base)
        })
    })
}

/// Why `segment` (lower-cased) is not a base unit and which base unit replaces it. Abbreviations
/// count only where `abbreviations` is set (not in a name's first segment, as in promlint).
fn classify(segment: &str, abbreviations: bool) -> Option<(Rule, &'static str)> {
    if abbreviations {
        if let Some((_, base)) = UNIT_ABBREVIATIONS.iter().find(|(a, _)| *a == segment) {
            return Some((Rule::AbbreviatedUnit, base));
        }
    }
    if let Some((_, base)) = NON_BASE_UNITS.iter().find(|(u, _)| *u == segment) {
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
        if out.last().map(|s| s.to_ascii_lowercase()) != Some(segment.to_ascii_lowercase()) {
            out.push(segment);
        }
    }
    let mut fixed = out.join("_");
    if kind == Kind::Counter {
        fixed.push_str("_total");
    }
    fixed
}

pub(crate) fn check_name_units(name: &str, kind: Kind, out: &mut Vec<Pending>) {
    // Abbreviations are not looked for in the first segment: it is the service, and a service
    // called `s` or `m` is a name, not a unit. Spelled-out units are, as promlint does.
    // Segments are compared lower-cased, so `_MB` and `_Milliseconds` are found too.
    for (index, segment) in stem(name, kind).split('_').enumerate() {
        let lower = segment.to_ascii_lowercase();
        let Some((rule, base)) = classify(&lower, index > 0) else {
            continue;
        };
        let fixed = replace_segment(name, kind, index, base);
        let pending = match (rule, lower.as_str()) {
            (Rule::AbbreviatedUnit, "m") => {
                let minutes = replace_segment(name, kind, index, "seconds");
                Pending::new(
                    Finding::new(rule, name, Target::Name, "\"m\" is an abbreviated unit").fix(
                        format!("use base units: `{fixed}` for meters, or `{minutes}` for minutes"),
                    ),
                    vec![fixed, minutes],
                )
            }
            (Rule::AbbreviatedUnit, _) => Pending::new(
                Finding::new(
                    rule,
                    name,
                    Target::Name,
                    format!("\"{segment}\" is an abbreviated unit"),
                )
                .fix(format!("use base units: `{fixed}`")),
                vec![fixed],
            ),
            (_, "percent" | "percentage") => Pending::new(
                Finding::new(
                    rule,
                    name,
                    Target::Name,
                    format!("\"{segment}\" is not a base unit; fractions are ratios from 0 to 1"),
                )
                .fix(format!("use `{fixed}` and record 0.25 for 25%")),
                vec![fixed],
            ),
            _ => Pending::new(
                Finding::new(
                    rule,
                    name,
                    Target::Name,
                    format!("\"{segment}\" is not a base unit"),
                )
                .fix(format!("use base units: `{fixed}`")),
                vec![fixed],
            ),
        };
        out.push(pending);
    }
}

/// The unit findings with their local renames (not yet made to pass every rule).
pub(crate) fn unit_pending(name: &str, kind: Kind, unit: &str) -> Vec<Pending> {
    let mut out = Vec::new();
    if !BASE_UNITS.contains(&unit) {
        let base = classify(&unit.to_ascii_lowercase(), true).map(|(_, base)| base);
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
        out.push(Pending::new(finding, Vec::new()));
        return out;
    }
    if kind == Kind::Info {
        // OpenMetrics: an info metric has no unit; its value is always 1.
        out.push(Pending::new(
            Finding::new(
                Rule::UnitSuffix,
                name,
                Target::Unit,
                format!("an info metric has no unit (its value is always 1), but unit \"{unit}\" is declared"),
            )
            .fix("remove `unit`"),
            Vec::new(),
        ));
        return out;
    }
    let stem = stem(name, kind);
    if !stem.ends_with(&format!("_{unit}")) {
        let mut fixed = format!("{stem}_{unit}");
        if kind == Kind::Counter {
            fixed.push_str("_total");
        }
        out.push(Pending::new(
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
            vec![fixed],
        ));
    }
    out
}

/// Checks a declared unit (`#[metric(unit = "...")]`): it is a base unit, and the name ends in
/// `_<unit>` (before `_total` for counters). A suggested rename passes every rule, the unit's
/// included.
pub fn check_unit(name: &str, kind: Kind, unit: &str) -> Vec<Finding> {
    unit_pending(name, kind, unit)
        .into_iter()
        .map(|p| p.finish(|r| suggest_name(r, kind, Some(unit))))
        .collect()
}
