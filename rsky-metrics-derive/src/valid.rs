//! Checks of a parsed model. Every problem is recorded in the context with its own span, so one
//! compile reports them all; `expand` runs only on a model that passed.
//!
//! The naming rules themselves live in `rsky-metrics-naming`, shared with the runtime's test
//! helpers; this module feeds them a declaration and turns each finding into an error spanned on
//! the field name or the attribute literal at fault.

use proc_macro2::Span;
use rsky_metrics_naming::{self as naming, Finding, Rule, Target};

use crate::ast::{Field, Input, Kind, SUPPORTED_TYPES};
use crate::ctxt::Ctxt;

pub fn check(cx: &Ctxt, input: &Input) {
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
        let kind = naming_kind(metric_type.kind());
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
        match (&field.attr.labels, metric_type.is_vec()) {
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
        if let Some(buckets) = &field.attr.buckets {
            if metric_type.kind() != Kind::Histogram {
                cx.error_at(
                    buckets.span,
                    format!(
                        "metric `{shown}` is a {}: only histograms take `buckets`",
                        metric_type.kind().as_str()
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
}

fn naming_kind(kind: Kind) -> naming::Kind {
    match kind {
        Kind::Counter => naming::Kind::Counter,
        Kind::Gauge => naming::Kind::Gauge,
        Kind::Histogram => naming::Kind::Histogram,
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
