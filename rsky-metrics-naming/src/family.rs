//! Rules on the rest of a declaration (labels, buckets, help) and across families (clashes).

use std::collections::HashMap;

use crate::finding::{Finding, Kind, Rule, Target};
use crate::name::{check_name_with, check_service, to_snake_case};
use crate::unit::check_unit;

/// Checks the label names of `metric`, a family of type `kind`. Findings point at
/// [`Target::Label`] with the label's index.
pub fn check_labels(metric: &str, kind: Kind, labels: &[&str]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (index, label) in labels.iter().enumerate() {
        let at = Target::Label(index);
        if label.starts_with("__") {
            out.push(
                Finding::new(
                    Rule::LabelReserved,
                    metric,
                    at,
                    format!("label \"{label}\" starts with `__`, which Prometheus reserves for its own labels"),
                )
                .fix(format!("name it `{}`", suggest_label(label)))
                .rename(suggest_label(label)),
            );
        } else if label.starts_with('_') {
            out.push(
                Finding::new(
                    Rule::LabelReserved,
                    metric,
                    at,
                    format!("label \"{label}\" starts with `_`, which OpenMetrics reserves"),
                )
                .fix(format!("name it `{}`", suggest_label(label)))
                .rename(suggest_label(label)),
            );
        } else if let Some(problem) = label_problem(label) {
            out.push(
                Finding::new(
                    Rule::LabelCharacters,
                    metric,
                    at,
                    format!("label \"{label}\" {problem}; label names match `^[a-z][a-z0-9_]*$`"),
                )
                .fix(format!("name it `{}`", suggest_label(label)))
                .rename(suggest_label(label)),
            );
        }
        if labels[..index].contains(label) {
            out.push(
                Finding::new(
                    Rule::LabelDuplicate,
                    metric,
                    at,
                    format!(
                        "label \"{label}\" is listed twice; a label name appears once per metric"
                    ),
                )
                .fix("remove the second one"),
            );
        }
        // promlint: `le` on anything but a histogram, `quantile` on anything but a summary. A
        // declared label never takes them: a histogram or summary writes them itself.
        let reserved = match (*label, kind) {
            ("le", Kind::Histogram) => Some(
                "is reserved on histograms, where it holds each bucket's upper bound".to_owned(),
            ),
            ("quantile", Kind::Summary) => {
                Some("is reserved on summaries, where it holds each quantile".to_owned())
            }
            ("le", _) => Some(format!(
                "is reserved for the bucket bounds of histograms, and this is {}",
                kind.with_article()
            )),
            ("quantile", _) => Some(format!(
                "is reserved for the quantiles of summaries, and this is {}",
                kind.with_article()
            )),
            _ => None,
        };
        if let Some(why) = reserved {
            out.push(
                Finding::new(
                    Rule::LabelReservedForType,
                    metric,
                    at,
                    format!("label \"{label}\" {why}"),
                )
                .fix(format!(
                    "name it for what it holds, for example `{label}_class`"
                ))
                .rename(format!("{label}_class")),
            );
        }
    }
    out
}

/// The label name a finding suggests for `label`: snake_case, without a reserved prefix, and not
/// `le` or `quantile`.
pub fn suggest_label(label: &str) -> String {
    let snake = to_snake_case(label);
    match snake.as_str() {
        "le" | "quantile" => format!("{snake}_class"),
        _ => snake,
    }
}

/// What is wrong with a label name's characters (the reserved prefixes are their own rule).
fn label_problem(label: &str) -> Option<String> {
    let Some(first) = label.chars().next() else {
        return Some("is empty".to_owned());
    };
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Some(if bad.is_ascii_uppercase() {
            "has upper-case letters (camelCase)".to_owned()
        } else {
            format!("contains {bad:?}")
        });
    }
    first
        .is_ascii_digit()
        .then(|| "starts with a digit".to_owned())
}

/// Formats a bound as a reader would write it (`+Inf`, `-Inf`, `NaN`, `0.5`).
pub fn format_bound(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value:?}")
    }
}

/// Checks a histogram's bucket bounds: non-empty, finite, no `+Inf`, strictly increasing.
/// Findings point at [`Target::Bucket`] with the bound's index, or at [`Target::Buckets`].
pub fn check_buckets(metric: &str, buckets: &[f64]) -> Vec<Finding> {
    let mut out = Vec::new();
    if buckets.is_empty() {
        out.push(
            Finding::new(Rule::BucketsEmpty, metric, Target::Buckets, "`buckets` is empty; a histogram needs at least one upper bound")
                .fix("list upper bounds, for example `buckets = [0.005, 0.05, 0.5, 5.0]`, or remove `buckets` for the default ones"),
        );
    }
    for (index, value) in buckets.iter().enumerate() {
        if *value == f64::INFINITY {
            out.push(
                Finding::new(
                    Rule::BucketInf,
                    metric,
                    Target::Bucket(index),
                    "bucket bound `+Inf` is listed, but the `+Inf` bucket is implicit",
                )
                .fix("remove it; every histogram has a `+Inf` bucket"),
            );
        } else if !value.is_finite() {
            out.push(
                Finding::new(
                    Rule::BucketNotFinite,
                    metric,
                    Target::Bucket(index),
                    format!(
                        "bucket bound `{}` is not a finite number",
                        format_bound(*value)
                    ),
                )
                .fix("list finite upper bounds only; the `+Inf` bucket is implicit"),
            );
        }
    }
    for (index, pair) in buckets.windows(2).enumerate() {
        if pair[0].is_finite() && pair[1].is_finite() && pair[1] <= pair[0] {
            out.push(
                Finding::new(
                    Rule::BucketOrder,
                    metric,
                    Target::Bucket(index + 1),
                    format!(
                        "bucket bounds must be strictly increasing, but `{}` follows `{}`",
                        format_bound(pair[1]),
                        format_bound(pair[0])
                    ),
                )
                .fix("sort the bounds and remove repeated ones"),
            );
        }
    }
    out
}

/// Checks a help text: present and non-empty after trimming.
pub fn check_help(metric: &str, help: Option<&str>) -> Vec<Finding> {
    match help {
        None => vec![Finding::new(
            Rule::Help,
            metric,
            Target::Help,
            "the metric has no help text",
        )
        .fix("describe what it measures (for a declaration: a `///` doc comment on the field)")],
        Some(text) if text.trim().is_empty() => {
            vec![
                Finding::new(Rule::Help, metric, Target::Help, "the help text is empty")
                    .fix("write what it measures; it becomes the metric's HELP"),
            ]
        }
        Some(_) => Vec::new(),
    }
}

/// One metric family as declared, for [`check_family`].
#[derive(Clone, Copy, Debug)]
pub struct Family<'a> {
    /// The service the name starts with, checked on its own when given.
    pub service: Option<&'a str>,
    /// The full exposed name (`{service}_{field}` plus `_total` for counters).
    pub name: &'a str,
    /// The family's type.
    pub kind: Kind,
    /// Label names.
    pub labels: &'a [&'a str],
    /// Bucket bounds of a histogram (`None`: the default ones).
    pub buckets: Option<&'a [f64]>,
    /// The declared unit, if any.
    pub unit: Option<&'a str>,
    /// The help text (`None`: missing).
    pub help: Option<&'a str>,
}

/// Every rule that one family's declaration decides.
pub fn check_family(family: &Family<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(service) = family.service {
        out.extend(check_service(service));
    }
    out.extend(check_name_with(family.name, family.kind, family.unit));
    if let Some(unit) = family.unit {
        out.extend(check_unit(family.name, family.kind, unit));
    }
    out.extend(check_labels(family.name, family.kind, family.labels));
    if let Some(buckets) = family.buckets {
        out.extend(check_buckets(family.name, buckets));
    }
    out.extend(check_help(family.name, family.help));
    out
}

/// The series names a family writes or reserves: a histogram `x` owns `x`, `x_bucket`, `x_sum`,
/// `x_count`, `x_created`; a counter `x_total` owns `x`, `x_total`, `x_created`.
pub fn owned_series(name: &str, kind: Kind) -> Vec<String> {
    let with = |base: &str, suffixes: &[&str]| -> Vec<String> {
        std::iter::once(base.to_owned())
            .chain(suffixes.iter().map(|s| format!("{base}{s}")))
            .collect()
    };
    match kind {
        Kind::Counter => with(
            name.strip_suffix("_total").unwrap_or(name),
            &["_total", "_created"],
        ),
        Kind::Histogram => with(name, &["_bucket", "_sum", "_count", "_created"]),
        Kind::Summary => with(name, &["_sum", "_count", "_created"]),
        Kind::Info => match name.strip_suffix("_info") {
            Some(base) => with(base, &["_info"]),
            None => with(name, &[]),
        },
        Kind::Gauge | Kind::Untyped => with(name, &[]),
    }
}

/// Two families that write (or reserve) the same series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collision {
    /// Index of the family declared first.
    pub first: usize,
    /// Index of the family declared later, which the finding is about.
    pub second: usize,
    /// The series both own.
    pub series: String,
    /// The finding, about the second family's name.
    pub finding: Finding,
}

/// Every pair of families (by index into `families`, given as name and type) that collide,
/// directly (the same name twice) or through suffixes (a histogram `x` and a counter `x_count`).
/// Each later family is reported once, against the first family it collides with.
pub fn collisions(families: &[(&str, Kind)]) -> Vec<Collision> {
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (index, (name, kind)) in families.iter().enumerate() {
        let series = owned_series(name, *kind);
        let hit = series
            .iter()
            .find_map(|s| owner.get(s).map(|first| (*first, s.clone())));
        if let Some((first, shared)) = hit {
            let (first_name, first_kind) = families[first];
            let message = if first_name == *name {
                format!("the family `{name}` is declared twice")
            } else {
                format!(
                    "it collides with {} `{first_name}`: both write or reserve the series `{shared}`",
                    first_kind.with_article(),
                )
            };
            out.push(Collision {
                first,
                second: index,
                series: shared,
                finding: Finding::new(Rule::FamilyClash, name, Target::Name, message)
                    .fix("rename one of them"),
            });
            continue;
        }
        for s in series {
            owner.entry(s).or_insert(index);
        }
    }
    out
}

/// `a histogram `x` writes `x_bucket`, `x_sum`, `x_count``, for clash messages.
pub fn describe_owned(name: &str, kind: Kind) -> String {
    let series = owned_series(name, kind);
    format!(
        "{} `{name}` owns {}",
        kind.with_article(),
        series
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
