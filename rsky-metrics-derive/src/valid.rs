//! Checks of a parsed model. Every problem is recorded in the context with its own span, so one
//! compile reports them all; `expand` runs only on a model that passed.

use crate::ast::{Input, Kind, SUPPORTED_TYPES};
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
    if input.fields.is_empty() {
        cx.error_spanned_by(input.ident, "a metric set needs at least one metric field");
    }
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
        let name = service
            .as_deref()
            .map(|service| crate::ast::full_name(service, &field.base_name(), metric_type.kind()));
        let shown = name.as_deref().unwrap_or("?");
        match &field.doc {
            None => cx.error_spanned_by(
                field.ident,
                format!(
                    "metric `{shown}` has no help text: add a doc comment (`/// What it counts`) on field `{}`; it becomes the metric's HELP",
                    field.ident
                ),
            ),
            Some(doc) if doc.text.is_empty() => cx.error_at(
                doc.span,
                format!("metric `{shown}` has an empty doc comment: write what it measures; it becomes the metric's HELP"),
            ),
            Some(_) => {}
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
            _ => {}
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
            if buckets.value.is_empty() {
                cx.error_at(buckets.span, format!("metric `{shown}`: `buckets` is empty; list at least one upper bound, or remove `buckets` for the default ones"));
            }
            for bucket in &buckets.value {
                if !bucket.value.is_finite() {
                    cx.error_at(bucket.span, format!("metric `{shown}`: bucket bound `{}` is not a finite number; the `+Inf` bucket is implicit, list finite upper bounds only", bucket.text));
                }
            }
            for pair in buckets.value.windows(2) {
                if pair[0].value.is_finite()
                    && pair[1].value.is_finite()
                    && pair[1].value <= pair[0].value
                {
                    cx.error_at(pair[1].span, format!("metric `{shown}`: bucket bounds must be strictly increasing, but `{}` follows `{}`", pair[1].text, pair[0].text));
                }
            }
        }
    }
}
