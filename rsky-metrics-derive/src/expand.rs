//! Code generation for `#[derive(Metrics)]`, from a model that `valid` accepted.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::DeriveInput;

use crate::ast::{full_name, Field, Input, Kind, MetricType};
use crate::ctxt::Ctxt;

pub fn derive(node: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let input = Input::from_syn(&cx, node);
    if let Some(input) = &input {
        crate::valid::check(&cx, input);
    }
    cx.check()?;
    let input = input.expect("a model exists when no error was recorded");
    Ok(expand(&input))
}

fn expand(input: &Input) -> TokenStream {
    let ident = input.ident;
    let krate = match &input.attr.krate {
        Some(path) => quote!(#path),
        None => quote!(::rsky_metrics_runtime),
    };
    let service = input.attr.service.as_ref().expect("validated").value();
    let set_name = ident.to_string();

    let descs = input.fields.iter().map(|f| desc(&krate, &service, f));
    let field_idents: Vec<_> = input.fields.iter().map(|f| f.ident).collect();
    let locals: Vec<_> = input
        .fields
        .iter()
        .map(|f| format_ident!("__metric_{}", f.ident))
        .collect();
    let types = input.fields.iter().map(|f| f.ty);
    let indices = 0..input.fields.len();

    quote! {
        #[automatically_derived]
        impl #ident {
            /// Every metric of this set: name, help, type, labels and buckets, in field order.
            pub const METRICS: &'static [#krate::MetricDesc] = &[#(#descs),*];

            /// Creates this set's metrics and registers each in `registry`. On a clash nothing of
            /// this set stays registered, and the error names the metric and what it clashes with.
            pub fn register(registry: &#krate::Registry) -> ::core::result::Result<Self, #krate::Error> {
                let mut registrar = #krate::__private::Registrar::new(registry, #set_name);
                #(
                    let #locals: #types = registrar.add(&Self::METRICS[#indices])?;
                )*
                registrar.finish();
                ::core::result::Result::Ok(Self { #(#field_idents: #locals),* })
            }

            /// The process-wide set, registered in the default registry on first use.
            ///
            /// # Panics
            /// When a metric of this set clashes with one already in the default registry; the
            /// message names the metric and the clash.
            pub fn global() -> &'static Self {
                static GLOBAL: #krate::__private::OnceCell<#ident> = #krate::__private::OnceCell::new();
                GLOBAL.get_or_init(|| {
                    #krate::__private::register_global(#ident::register)
                })
            }
        }

        #[automatically_derived]
        impl #krate::MetricSet for #ident {
            const SERVICE: &'static str = #service;
            const METRICS: &'static [#krate::MetricDesc] = <#ident>::METRICS;

            fn register(registry: &#krate::Registry) -> ::core::result::Result<Self, #krate::Error> {
                <#ident>::register(registry)
            }

            fn global() -> &'static Self {
                <#ident>::global()
            }
        }
    }
}

fn desc(krate: &TokenStream, service: &str, field: &Field) -> TokenStream {
    let metric_type = field.metric_type.expect("validated");
    let kind = metric_type.kind();
    let name = full_name(service, &field.base_name(), kind);
    let help = field
        .doc
        .as_ref()
        .map(|d| d.text.clone())
        .unwrap_or_default();
    let field_name = field.ident.to_string();
    let kind_tokens = match kind {
        Kind::Counter => quote!(#krate::MetricKind::Counter),
        Kind::Gauge => quote!(#krate::MetricKind::Gauge),
        Kind::Histogram => quote!(#krate::MetricKind::Histogram),
    };
    let value = match metric_type {
        MetricType::IntCounter
        | MetricType::IntCounterVec
        | MetricType::IntGauge
        | MetricType::IntGaugeVec => {
            quote!(#krate::ValueType::Int)
        }
        _ => quote!(#krate::ValueType::Float),
    };
    let labels: Vec<String> = field
        .attr
        .labels
        .as_ref()
        .map(|l| l.value.iter().map(|s| s.value()).collect())
        .unwrap_or_default();
    let buckets = match (&field.attr.buckets, kind) {
        (Some(buckets), Kind::Histogram) => {
            let values = buckets.value.iter().map(|b| b.value);
            quote!(&[#(#values),*])
        }
        (None, Kind::Histogram) => quote!(#krate::DEFAULT_BUCKETS),
        _ => quote!(&[]),
    };
    let unit = match &field.attr.unit {
        Some(unit) => {
            let unit = unit.value();
            quote!(::core::option::Option::Some(#unit))
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #krate::MetricDesc {
            field: #field_name,
            name: #name,
            help: #help,
            kind: #kind_tokens,
            value: #value,
            labels: &[#(#labels),*],
            buckets: #buckets,
            unit: #unit,
        }
    }
}
