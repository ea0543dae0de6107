//! Checks of a parsed model. Every problem is recorded in the context with its own span, so one
//! compile reports them all. What the checks resolve (each family's full name, kind, labels and
//! buckets) is returned as a [`Set`]; `expand` reads only that, and runs only when no problem was
//! recorded.
//!
//! The naming rules themselves live in `rsky-metrics-naming`, shared with the runtime's test
//! helpers; this module feeds them a declaration and turns each finding into an error spanned on
//! the field name or the attribute literal at fault.

use proc_macro2::Span;
use rsky_metrics_naming::{self as naming, Finding, Kind, Rule, Target};
use syn::{Ident, Type};

use crate::ast::{Field, Input, SUPPORTED_TYPES};
use crate::ctxt::Ctxt;

/// The most label combinations a typed family may have unless its field says otherwise with
/// `#[metric(max_series = N)]`: every combination is a series from the first scrape.
pub const DEFAULT_MAX_SERIES: u64 = 1_000;

/// A metric set as resolved by the checks: what `expand` generates code from.
pub struct Set<'a> {
    pub service: String,
    pub families: Vec<Family<'a>>,
}

/// One declared family, resolved.
pub struct Family<'a> {
    pub field: &'a Ident,
    pub ty: &'a Type,
    /// The exposed name, `{service}_{field or name}` (+ `_total`).
    pub name: String,
    pub help: String,
    pub kind: Kind,
    /// Integer values (`IntCounter`, ...) rather than floats.
    pub int: bool,
    pub labels: Labels<'a>,
    /// A histogram's bounds; `None` for prometheus's default buckets (and other kinds).
    pub buckets: Option<Vec<f64>>,
    pub unit: Option<String>,
}

/// How a family is labeled.
pub enum Labels<'a> {
    /// No labels.
    None,
    /// String labels of a `...Vec`, by name.
    Names(Vec<String>),
    /// A typed family: its label type, and the most combinations it may have (with the span to
    /// report an excess at).
    Typed {
        ty: &'a Type,
        max_series: u64,
        span: Span,
    },
}

pub fn check<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Set<'a> {
    if input.generics.lt_token.is_some() || input.generics.where_clause.is_some() {
        cx.error_spanned_by(
            input.generics,
            "#[derive(Metrics)] does not support generic structs: a metric set is one concrete struct per service (`global()` needs a single static)",
        );
    }
    let service = match &input.attr.service {
        Some(service) => Some(service.value()),
        None => {
            cx.error_spanned_by(
                input.ident,
                "missing service name: add `#[metrics(service = \"my_service\")]` to the struct; every metric is named `{service}_{field}`",
            );
            None
        }
    };
    let service_ok = match (&input.attr.service, &service) {
        (Some(lit), Some(service)) => {
            let findings = naming::check_service(service);
            for finding in &findings {
                cx.error_at(lit.span(), finding);
            }
            findings.is_empty()
        }
        _ => false,
    };
    if input.fields.is_empty() {
        cx.error_spanned_by(input.ident, "a metric set needs at least one metric field");
    }
    // Families that got a name, for the clash check across fields.
    let mut families: Vec<(String, naming::Kind, &Field)> = Vec::new();
    let mut resolved = Vec::new();
    for field in &input.fields {
        let Some(metric_type) = field.metric_type else {
            cx.error_spanned_by(
                field.ty,
                format!(
                    "field `{}` has a type that is not a metric; supported types: {SUPPORTED_TYPES}",
                    field.ident
                ),
            );
            continue;
        };
        let kind = metric_type.kind();
        let name = service
            .as_deref()
            .map(|service| naming::full_name(service, &field.base_name(), kind));
        let shown = name.as_deref().unwrap_or("?");
        match &field.doc {
            None => cx.error_spanned_by(
                field.ident,
                format!(
                    "metric `{shown}` has no help text: add a doc comment (`/// What it counts`) on field `{}`; it becomes the metric's HELP [help]",
                    field.ident
                ),
            ),
            Some(doc) => report(cx, field, naming::check_help(shown, Some(&doc.text))),
        }
        if metric_type.is_family() {
            if let Some(labels) = &field.attr.labels {
                cx.error_at(
                    labels.span,
                    format!(
                        "metric `{shown}` is a {}: its label names and values come from its label type; remove `labels`",
                        metric_type.name()
                    ),
                );
            }
        } else if let Some(max) = &field.attr.max_series {
            cx.error_spanned_by(
                max,
                format!(
                    "metric `{shown}` is a {}: `max_series` limits the combinations of a typed family (`IntCounterFamily<L>`, ...); remove it",
                    metric_type.name()
                ),
            );
        }
        let max_series = match &field.attr.max_series {
            Some(lit) => {
                match lit.base10_parse::<u64>() {
                    Ok(max) if max > 0 => max,
                    _ => {
                        cx.error_spanned_by(lit, "`max_series` is a positive whole number of series: `max_series = 5000`");
                        DEFAULT_MAX_SERIES
                    }
                }
            }
            None => DEFAULT_MAX_SERIES,
        };
        match (&field.attr.labels, metric_type.is_vec()) {
            // A typed family's `labels` is reported above.
            _ if metric_type.is_family() => {}
            (None, true) => cx.error_spanned_by(
                field.ty,
                format!(
                    "metric `{shown}` is a {} and needs label names: add `#[metric(labels = [\"...\"])]`, or use `{}` for a metric without labels",
                    metric_type.name(),
                    metric_type.unlabeled().name()
                ),
            ),
            (Some(labels), false) => cx.error_at(
                labels.span,
                format!(
                    "metric `{shown}` is a {} and takes no labels: use its `...Vec` type for a labeled family, or remove `labels`",
                    metric_type.name()
                ),
            ),
            (Some(labels), true) if labels.value.is_empty() => cx.error_at(
                labels.span,
                format!("metric `{shown}` lists no labels: name at least one, or use `{}`", metric_type.unlabeled().name()),
            ),
            (Some(labels), true) => {
                let values: Vec<String> = labels.value.iter().map(|l| l.value()).collect();
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                report(cx, field, naming::check_labels(shown, kind, &values));
            }
            (None, false) => {}
        }
        let labels = match (field.label_type, &field.attr.labels) {
            (Some(ty), _) => Labels::Typed {
                ty,
                max_series,
                span: field
                    .attr
                    .max_series
                    .as_ref()
                    .map_or_else(|| field.ident.span(), |l| l.span()),
            },
            (None, Some(labels)) => Labels::Names(labels.value.iter().map(|l| l.value()).collect()),
            (None, None) => Labels::None,
        };
        if let Some(buckets) = &field.attr.buckets {
            if kind != Kind::Histogram {
                cx.error_at(
                    buckets.span,
                    format!(
                        "metric `{shown}` is a {}: only histograms take `buckets`",
                        kind.as_str()
                    ),
                );
            }
            let values: Vec<f64> = buckets.value.iter().map(|b| b.value).collect();
            report(cx, field, naming::check_buckets(shown, &values));
        }
        let Some(name) = name else { continue };
        let mut findings = naming::check_name(&name, kind);
        if !service_ok {
            // The service's own error covers its characters; the field's part may still be wrong,
            // but that shows once the service is fixed.
            findings.retain(|f| f.rule != Rule::NameCharacters);
        }
        if let Some(unit) = &field.attr.unit {
            findings.extend(naming::check_unit(&name, kind, &unit.value()));
        }
        report(cx, field, findings);
        resolved.push(Family {
            field: field.ident,
            ty: field.ty,
            name: name.clone(),
            help: field
                .doc
                .as_ref()
                .map(|d| d.text.clone())
                .unwrap_or_default(),
            kind,
            int: metric_type.is_int(),
            labels,
            buckets: field
                .attr
                .buckets
                .as_ref()
                .filter(|_| kind == Kind::Histogram)
                .map(|b| b.value.iter().map(|b| b.value).collect()),
            unit: field.attr.unit.as_ref().map(|u| u.value()),
        });
        families.push((name, kind, field));
    }
    let pairs: Vec<(&str, naming::Kind)> = families
        .iter()
        .map(|(name, kind, _)| (name.as_str(), *kind))
        .collect();
    for collision in naming::collisions(&pairs) {
        let (_, _, first) = families[collision.first];
        let (_, _, second) = families[collision.second];
        let mut finding = collision.finding;
        finding.message = format!(
            "{} (field `{}` against field `{}`)",
            finding.message, second.ident, first.ident
        );
        cx.error_at(name_span(second), finding);
    }
    Set {
        service: service.unwrap_or_default(),
        families: resolved,
    }
}

/// Where the field's name is written: its `name = "..."` literal, or the field's identifier.
fn name_span(field: &Field) -> Span {
    match &field.attr.name {
        Some(lit) => lit.span(),
        None => field.ident.span(),
    }
}

/// The span of the part of `field` a finding is about.
fn span_of(field: &Field, target: Target) -> Span {
    let labels = field.attr.labels.as_ref();
    let buckets = field.attr.buckets.as_ref();
    match target {
        Target::Unit => field.attr.unit.as_ref().map(|u| u.span()),
        Target::Label(index) => labels.and_then(|l| l.value.get(index)).map(|l| l.span()),
        Target::Bucket(index) => buckets.and_then(|b| b.value.get(index)).map(|b| b.span),
        Target::Buckets => buckets.map(|b| b.span),
        Target::Help => field.doc.as_ref().map(|d| d.span),
        Target::Name | Target::Service | Target::Line(_) => None,
    }
    .unwrap_or_else(|| name_span(field))
}

fn report(cx: &Ctxt, field: &Field, findings: Vec<Finding>) {
    for mut finding in findings {
        let quotes_bounds = matches!(finding.rule, Rule::BucketNotFinite | Rule::BucketOrder);
        if let (true, Some(buckets)) = (quotes_bounds, &field.attr.buckets) {
            // Quote bounds as the user wrote them (`f64::NAN`, `1`), not as the engine formats them.
            for bucket in &buckets.value {
                let formatted = format!("`{}`", naming::format_bound(bucket.value));
                finding.message = finding
                    .message
                    .replace(&formatted, &format!("`{}`", bucket.text));
            }
        }
        cx.error_at(span_of(field, finding.target), &finding);
    }
}
