//! Rules on metric and service names: characters, `_total`, reserved suffixes, type words.

use crate::finding::{Finding, Kind, Rule, Target};
use crate::unit;

/// What is wrong with an identifier's characters, if anything, in words.
pub(crate) fn character_problem(name: &str) -> Option<String> {
    let Some(first) = name.chars().next() else {
        return Some("is empty".to_owned());
    };
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Some(if bad == ':' {
            "contains `:`, which is reserved for recording rules".to_owned()
        } else if bad.is_ascii_uppercase() {
            "has upper-case letters (camelCase)".to_owned()
        } else {
            format!("contains {bad:?}; only `a-z`, `0-9` and `_` are allowed")
        });
    }
    if first == '_' {
        return Some("starts with `_`, which OpenMetrics reserves".to_owned());
    }
    if first.is_ascii_digit() {
        return Some("starts with a digit; start with a letter".to_owned());
    }
    if name.contains("__") {
        return Some("contains `__`, which Prometheus reserves".to_owned());
    }
    if name.ends_with('_') {
        return Some("ends in `_`".to_owned());
    }
    None
}

/// The snake_case form of `name`: camelCase split, invalid characters replaced, `__` and edge `_`
/// removed; `metric` if nothing is left.
pub fn to_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower_or_digit = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower_or_digit {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower_or_digit = false;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            prev_lower_or_digit = true;
        } else {
            out.push('_');
            prev_lower_or_digit = false;
        }
    }
    let mut collapsed = out
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if collapsed.starts_with(|c: char| c.is_ascii_digit()) {
        collapsed.insert(0, 'm');
        collapsed.insert(1, '_');
    }
    if collapsed.is_empty() {
        collapsed.push_str("metric");
    }
    collapsed
}

/// Checks a service (namespace) name.
pub fn check_service(service: &str) -> Vec<Finding> {
    match character_problem(service) {
        None => Vec::new(),
        Some(problem) => vec![Finding::new(
            Rule::ServiceCharacters,
            service,
            Target::Service,
            format!("the service name {problem}; a service is snake_case (`^[a-z][a-z0-9_]*$`) and starts every metric name"),
        )
        .fix(format!("use `{}`", to_snake_case(service)))],
    }
}

/// The name without the `_total` of a counter (the OpenMetrics family name).
pub fn stem(name: &str, kind: Kind) -> &str {
    match kind {
        Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// Checks a full metric name (`{service}_{field}` plus `_total` for counters) for a family of
/// type `kind`: characters, `_total`, reserved suffixes, type words and units.
pub fn check_name(name: &str, kind: Kind) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(problem) = character_problem(name) {
        out.push(
            Finding::new(
                Rule::NameCharacters,
                name,
                Target::Name,
                format!("the name {problem}; metric names match `^[a-z][a-z0-9_]*$` without `__` or a trailing `_`"),
            )
            .fix(format!("rename it `{}`", to_snake_case(name))),
        );
    }
    check_total(name, kind, &mut out);
    check_reserved_suffixes(name, kind, &mut out);
    check_type_words(name, kind, &mut out);
    unit::check_name_units(name, kind, &mut out);
    out
}

fn check_total(name: &str, kind: Kind, out: &mut Vec<Finding>) {
    match kind {
        Kind::Counter if !name.ends_with("_total") => out.push(
            Finding::new(
                Rule::TotalSuffix,
                name,
                Target::Name,
                "a counter's name ends in `_total`",
            )
            .fix(format!("rename it `{name}_total`")),
        ),
        Kind::Counter => {
            let stem = stem(name, kind);
            if stem.ends_with("_total") {
                out.push(
                    Finding::new(
                        Rule::TotalSuffix,
                        name,
                        Target::Name,
                        "`_total` is doubled; a counter ends in one `_total`",
                    )
                    .fix(format!("rename it `{stem}`")),
                );
            }
        }
        _ => {
            if let Some(base) = name.strip_suffix("_total") {
                out.push(
                    Finding::new(
                        Rule::TotalSuffix,
                        name,
                        Target::Name,
                        format!(
                            "`_total` is for counters only, and this is {}",
                            kind.with_article()
                        ),
                    )
                    .fix(format!("rename it `{base}`, or make it a counter")),
                );
            }
        }
    }
}

/// Suffixes and the types whose series they name.
const RESERVED: &[(&str, &str)] = &[
    ("_count", "the count series of histograms and summaries"),
    ("_sum", "the sum series of histograms and summaries"),
    ("_bucket", "the bucket series of histograms"),
    (
        "_created",
        "the creation-time series of counters, histograms and summaries",
    ),
];

fn check_reserved_suffixes(name: &str, kind: Kind, out: &mut Vec<Finding>) {
    let stem = stem(name, kind);
    for (suffix, owner) in RESERVED {
        // A counter's stem may end in `_count` (`x_count_total` writes no `x_count` series);
        // only `_created` would be ambiguous there.
        if kind == Kind::Counter && *suffix != "_created" {
            continue;
        }
        if let Some(base) = stem.strip_suffix(suffix) {
            let fixed = match kind {
                Kind::Counter => format!("{base}_total"),
                _ => base.to_owned(),
            };
            out.push(
                Finding::new(
                    Rule::ReservedSuffix,
                    name,
                    Target::Name,
                    format!(
                        "{} must not end in `{suffix}`, which is reserved for {owner}",
                        kind.with_article()
                    ),
                )
                .fix(format!("rename it, for example `{fixed}`")),
            );
        }
    }
    match (kind, stem.strip_suffix("_info")) {
        (Kind::Info, None) => out.push(
            Finding::new(
                Rule::ReservedSuffix,
                name,
                Target::Name,
                "an info metric's name ends in `_info`",
            )
            .fix(format!("rename it `{name}_info`")),
        ),
        (Kind::Info, Some(_)) | (_, None) => {}
        (_, Some(base)) => out.push(
            Finding::new(
                Rule::ReservedSuffix,
                name,
                Target::Name,
                format!(
                    "`_info` is for info metrics only, and this is {}",
                    kind.with_article()
                ),
            )
            .fix(format!("rename it, for example `{base}`")),
        ),
    }
}

const TYPE_WORDS: &[&str] = &["counter", "gauge", "histogram", "summary", "untyped"];

fn check_type_words(name: &str, kind: Kind, out: &mut Vec<Finding>) {
    let segments: Vec<&str> = stem(name, kind).split('_').collect();
    for word in segments.iter().filter(|s| TYPE_WORDS.contains(s)) {
        let kept: Vec<&str> = segments.iter().copied().filter(|s| s != word).collect();
        let mut fixed = kept.join("_");
        if kind == Kind::Counter {
            fixed.push_str("_total");
        }
        out.push(
            Finding::new(
                Rule::TypeInName,
                name,
                Target::Name,
                format!("`{word}` is a metric type; the type is in `# TYPE`, not in the name"),
            )
            .fix(format!("rename it `{fixed}`")),
        );
    }
}
