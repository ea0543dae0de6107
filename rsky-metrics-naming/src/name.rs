//! Rules on metric and service names: characters, `_total`, reserved suffixes, type words,
//! `_timestamp_seconds`; and the rename that passes them all ([`suggest_name`]).

use crate::finding::{Finding, Kind, Pending, Rule, Target};
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
/// type `kind`: characters, `_total`, reserved suffixes, type words, `_timestamp_seconds` and
/// units. Every suggested rename ([`Finding::rename`], and the name in the fix) passes every one
/// of these rules.
pub fn check_name(name: &str, kind: Kind) -> Vec<Finding> {
    check_name_with(name, kind, None)
}

/// [`check_name`], with renames that also pass [`check_unit`](crate::check_unit) for `unit`.
pub(crate) fn check_name_with(name: &str, kind: Kind, unit: Option<&str>) -> Vec<Finding> {
    name_pending(name, kind)
        .into_iter()
        .map(|p| p.finish(|r| suggest_name(r, kind, unit)))
        .collect()
}

/// `name` with every naming rule applied: the name [`check_name`] suggests (and, with a `unit`,
/// [`check_unit`](crate::check_unit) too). A clean name comes back unchanged.
///
/// ```
/// use rsky_metrics_naming::{suggest_name, Kind};
///
/// assert_eq!(suggest_name("svc_Latency_MS_HISTOGRAM", Kind::Histogram, None), "svc_latency_seconds");
/// assert_eq!(suggest_name("svc_cpu", Kind::Counter, Some("seconds")), "svc_cpu_seconds_total");
/// ```
pub fn suggest_name(name: &str, kind: Kind, unit: Option<&str>) -> String {
    let mut current = name.to_owned();
    // Each step undoes one broken rule; a name needs at most a few.
    for _ in 0..32 {
        let mut pending = name_pending(&current, kind);
        if let Some(unit) = unit {
            pending.extend(unit::unit_pending(&current, kind, unit));
        }
        let next = pending
            .into_iter()
            .find_map(|p| p.renames.into_iter().next().filter(|r| *r != current));
        match next {
            Some(next) => current = next,
            None => break,
        }
    }
    current
}

/// The findings of [`check_name`], each with the rename that only undoes its own rule.
fn name_pending(name: &str, kind: Kind) -> Vec<Pending> {
    let mut out = Vec::new();
    if let Some(problem) = character_problem(name) {
        let fixed = to_snake_case(name);
        out.push(Pending::new(
            Finding::new(
                Rule::NameCharacters,
                name,
                Target::Name,
                format!("the name {problem}; metric names match `^[a-z][a-z0-9_]*$` without `__` or a trailing `_`"),
            )
            .fix(format!("rename it `{fixed}`")),
            vec![fixed],
        ));
    }
    check_total(name, kind, &mut out);
    check_reserved_suffixes(name, kind, &mut out);
    check_type_words(name, kind, &mut out);
    check_timestamp(name, kind, &mut out);
    unit::check_name_units(name, kind, &mut out);
    out
}

/// A finding with one local rename, written in its fix as `` rename it `...` `` plus `tail`.
fn renamed(rule: Rule, name: &str, message: String, fixed: String, tail: &str) -> Pending {
    let lead = if rule == Rule::ReservedSuffix && !fixed.ends_with("_info") {
        "rename it, for example"
    } else {
        "rename it"
    };
    Pending::new(
        Finding::new(rule, name, Target::Name, message).fix(format!("{lead} `{fixed}`{tail}")),
        vec![fixed],
    )
}

fn check_total(name: &str, kind: Kind, out: &mut Vec<Pending>) {
    match kind {
        Kind::Counter if !name.ends_with("_total") => out.push(renamed(
            Rule::TotalSuffix,
            name,
            "a counter's name ends in `_total`".to_owned(),
            format!("{name}_total"),
            "",
        )),
        Kind::Counter => {
            let stem = stem(name, kind);
            if stem.ends_with("_total") {
                out.push(renamed(
                    Rule::TotalSuffix,
                    name,
                    "`_total` is doubled; a counter ends in one `_total`".to_owned(),
                    stem.to_owned(),
                    "",
                ));
            }
        }
        _ => {
            if let Some(base) = name.strip_suffix("_total") {
                out.push(renamed(
                    Rule::TotalSuffix,
                    name,
                    format!(
                        "`_total` is for counters only, and this is {}",
                        kind.with_article()
                    ),
                    base.to_owned(),
                    ", or make it a counter",
                ));
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

fn check_reserved_suffixes(name: &str, kind: Kind, out: &mut Vec<Pending>) {
    let stem = stem(name, kind);
    for (suffix, owner) in RESERVED {
        // A counter's stem may end in `_count` (`x_count_total` writes no `x_count` series); only
        // `_created` would be ambiguous there. A counter named `x_count` without `_total` is
        // flagged, as promlint does; its fix is the counter's `x_count_total`.
        let fixed = match kind {
            Kind::Counter if *suffix == "_created" => {
                stem.strip_suffix(suffix).map(|b| format!("{b}_total"))
            }
            Kind::Counter => name.ends_with(suffix).then(|| format!("{name}_total")),
            _ => stem.strip_suffix(suffix).map(str::to_owned),
        };
        if let Some(fixed) = fixed {
            out.push(renamed(
                Rule::ReservedSuffix,
                name,
                format!(
                    "{} must not end in `{suffix}`, which is reserved for {owner}",
                    kind.with_article()
                ),
                fixed,
                "",
            ));
        }
    }
    match (kind, stem.strip_suffix("_info")) {
        (Kind::Info, None) => out.push(renamed(
            Rule::ReservedSuffix,
            name,
            "an info metric's name ends in `_info`".to_owned(),
            format!("{name}_info"),
            "",
        )),
        (Kind::Info, Some(_)) | (_, None) => {}
        (_, Some(base)) => out.push(renamed(
            Rule::ReservedSuffix,
            name,
            format!(
                "`_info` is for info metrics only, and this is {}",
                kind.with_article()
            ),
            match kind {
                Kind::Counter => format!("{base}_total"),
                _ => base.to_owned(),
            },
            "",
        )),
    }
}

const TYPE_WORDS: &[&str] = &["counter", "gauge", "histogram", "summary", "untyped"];

fn check_type_words(name: &str, kind: Kind, out: &mut Vec<Pending>) {
    // As promlint: a type word after the first segment (the service), in any case.
    let segments: Vec<&str> = stem(name, kind).split('_').collect();
    let is_type = |s: &str| TYPE_WORDS.contains(&s.to_ascii_lowercase().as_str());
    let mut seen: Vec<String> = Vec::new();
    for word in segments.iter().skip(1).filter(|s| is_type(s)) {
        let lower = word.to_ascii_lowercase();
        if seen.contains(&lower) {
            continue;
        }
        let kept: Vec<&str> = segments
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == 0 || s.to_ascii_lowercase() != lower)
            .map(|(_, s)| *s)
            .collect();
        let mut fixed = kept.join("_");
        if kind == Kind::Counter {
            fixed.push_str("_total");
        }
        out.push(renamed(
            Rule::TypeInName,
            name,
            format!("`{word}` is a metric type; the type is in `# TYPE`, not in the name"),
            fixed,
            "",
        ));
        seen.push(lower);
    }
}

fn check_timestamp(name: &str, kind: Kind, out: &mut Vec<Pending>) {
    // promlint flags counters, histograms and summaries (not untyped metrics); a counter's stem
    // is checked, so `x_timestamp_seconds_total` is flagged too.
    if !matches!(kind, Kind::Counter | Kind::Histogram | Kind::Summary) {
        return;
    }
    let Some(base) = stem(name, kind).strip_suffix("_timestamp_seconds") else {
        return;
    };
    let mut fixed = format!("{base}_seconds");
    if kind == Kind::Counter {
        fixed.push_str("_total");
    }
    out.push(Pending::new(
        Finding::new(
            Rule::TimestampSuffix,
            name,
            Target::Name,
            format!(
                "{} must not end in `_timestamp_seconds`: a timestamp is a gauge's value",
                kind.with_article()
            ),
        )
        .fix(format!(
            "make it a gauge, or rename it `{fixed}` if it measures durations"
        )),
        vec![fixed],
    ));
}
