//! Parsing of the `#[metrics(...)]` container attribute, the `#[metric(...)]` field attribute and
//! doc comments. Nothing here judges values; `valid` does.

use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::{Attribute, Expr, ExprArray, ExprLit, ExprUnary, Lit, LitInt, LitStr, UnOp};

use crate::ctxt::Ctxt;

/// `#[metrics(service = "...", crate = "...")]`.
#[derive(Default)]
pub struct ContainerAttr {
    pub service: Option<LitStr>,
    pub krate: Option<syn::Path>,
}

/// `#[metric(name = "...", labels = [...], buckets = [...], unit = "...", max_series = N)]`.
#[derive(Default)]
pub struct FieldAttr {
    pub name: Option<LitStr>,
    pub max_series: Option<LitInt>,
    pub labels: Option<Spanned<Vec<LitStr>>>,
    pub buckets: Option<Spanned<Vec<Bucket>>>,
    pub unit: Option<LitStr>,
}

/// A value with the span of the attribute part it came from.
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// One histogram bucket bound as written.
pub struct Bucket {
    pub value: f64,
    pub span: Span,
    pub text: String,
}

/// The doc comment of an item: its lines trimmed and joined with spaces, and the span of the
/// first line.
pub struct Doc {
    pub text: String,
    pub span: Span,
}

pub fn container(cx: &Ctxt, attrs: &[Attribute]) -> ContainerAttr {
    let mut out = ContainerAttr::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("metrics")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("service") {
                let lit: LitStr = meta.value()?.parse()?;
                if out.service.is_some() {
                    cx.error_spanned_by(&lit, "duplicate `service`: give `#[metrics(service = \"...\")]` once");
                }
                out.service = Some(lit);
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                match lit.parse::<syn::Path>() {
                    Ok(path) => out.krate = Some(path),
                    Err(_) => cx.error_spanned_by(
                        &lit,
                        format!(
                            "`crate = {:?}` is not a path; write the path of the runtime crate, for example `crate = \"::rsky_metrics_runtime\"`",
                            lit.value()
                        ),
                    ),
                }
            } else {
                return Err(meta.error(
                    "unknown `metrics` key; the container attribute takes `service = \"...\"` and `crate = \"...\"`",
                ));
            }
            Ok(())
        });
        if let Err(err) = result {
            cx.syn_error(err);
        }
    }
    out
}

pub fn field(cx: &Ctxt, attrs: &[Attribute]) -> FieldAttr {
    let mut out = FieldAttr::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("metric")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
            match key.as_str() {
                "name" => {
                    let lit: LitStr = meta.value()?.parse()?;
                    set_once(cx, &mut out.name, lit, "name");
                }
                "unit" => {
                    let lit: LitStr = meta.value()?.parse()?;
                    set_once(cx, &mut out.unit, lit, "unit");
                }
                "max_series" => {
                    let lit: LitInt = meta.value()?.parse()?;
                    if out.max_series.is_some() {
                        cx.error_spanned_by(&lit, "duplicate `max_series`: give it once");
                    }
                    out.max_series = Some(lit);
                }
                "labels" => {
                    let array: ExprArray = meta.value()?.parse()?;
                    let labels = string_array(&array)?;
                    if out.labels.is_some() {
                        cx.error_spanned_by(&array, "duplicate `labels`: list every label in one `labels = [...]`");
                    }
                    out.labels = Some(Spanned { value: labels, span: array.span() });
                }
                "buckets" => {
                    let array: ExprArray = meta.value()?.parse()?;
                    let buckets = bucket_array(&array)?;
                    if out.buckets.is_some() {
                        cx.error_spanned_by(&array, "duplicate `buckets`: list every bound in one `buckets = [...]`");
                    }
                    out.buckets = Some(Spanned { value: buckets, span: array.span() });
                }
                _ => {
                    return Err(meta.error(
                        "unknown `metric` key; the field attribute takes `name = \"...\"`, `labels = [\"...\"]`, `buckets = [...]`, `unit = \"...\"` and `max_series = N`",
                    ))
                }
            }
            Ok(())
        });
        if let Err(err) = result {
            cx.syn_error(err);
        }
    }
    out
}

fn set_once(cx: &Ctxt, slot: &mut Option<LitStr>, lit: LitStr, key: &str) {
    if slot.is_some() {
        cx.error_spanned_by(&lit, format!("duplicate `{key}`: give it once"));
    }
    *slot = Some(lit);
}

fn string_array(array: &ExprArray) -> syn::Result<Vec<LitStr>> {
    array
        .elems
        .iter()
        .map(|elem| match elem {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => Ok(s.clone()),
            other => Err(syn::Error::new_spanned(
                other,
                "label names are string literals: `labels = [\"outcome\", \"stream\"]`",
            )),
        })
        .collect()
}

fn bucket_array(array: &ExprArray) -> syn::Result<Vec<Bucket>> {
    array.elems.iter().map(bucket).collect()
}

fn bucket(expr: &Expr) -> syn::Result<Bucket> {
    let value = bucket_value(expr).ok_or_else(|| {
        syn::Error::new_spanned(
            expr,
            "bucket bounds are number literals: `buckets = [0.005, 0.05, 0.5, 5.0]`",
        )
    })?;
    Ok(Bucket {
        value,
        span: expr.span(),
        text: quote::quote!(#expr).to_string().replace(' ', ""),
    })
}

fn bucket_value(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>().ok(),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => bucket_value(expr).map(|v| -v),
        Expr::Path(path) => {
            let last = path.path.segments.last()?.ident.to_string();
            match last.as_str() {
                "INFINITY" => Some(f64::INFINITY),
                "NEG_INFINITY" => Some(f64::NEG_INFINITY),
                "NAN" => Some(f64::NAN),
                _ => None,
            }
        }
        Expr::Paren(p) => bucket_value(&p.expr),
        Expr::Group(g) => bucket_value(&g.expr),
        _ => None,
    }
}

pub fn doc(attrs: &[Attribute]) -> Option<Doc> {
    let mut lines = Vec::new();
    let mut span = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) = &nv.value
            {
                span.get_or_insert_with(|| attr.span());
                let line = s.value();
                let line = line.trim();
                if !line.is_empty() {
                    lines.push(line.to_owned());
                }
            }
        }
    }
    span.map(|span| Doc {
        text: lines.join(" "),
        span,
    })
}
