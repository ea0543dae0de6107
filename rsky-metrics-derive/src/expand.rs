//! Code generation for `#[derive(Metrics)]`, from the set that `valid` resolved.
//!
//! When the checks found problems, [`fallback`] still emits the set's items (with bodies that are
//! never run, since the compile fails), so the user sees each real error once and no follow-on
//! "no function `global`" at every use of the set.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use rsky_metrics_naming::Kind;
use syn::{DeriveInput, Ident};

use crate::ast::Input;
use crate::ctxt::Ctxt;
use crate::valid::{Family, Labels, Set};

pub fn derive(node: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let input = Input::from_syn(&cx, node);
    let krate = match input.as_ref().and_then(|i| i.attr.krate.as_ref()) {
        Some(path) => quote!(#path),
        None => quote!(::rsky_metrics_runtime),
    };
    let set = input.as_ref().map(|input| crate::valid::check(&cx, input));
    match (cx.check(), set) {
        (Ok(()), Some(set)) => expand(&node.ident, &krate, &set),
        (Err(err), _) => {
            let mut tokens = fallback(&node.ident, &krate);
            tokens.extend(err.to_compile_error());
            tokens
        }
        // `from_syn` records an error whenever it returns no model.
        (Ok(()), None) => fallback(&node.ident, &krate),
    }
}

fn expand(ident: &Ident, krate: &TokenStream, set: &Set) -> TokenStream {
    let service = &set.service;
    let set_name = ident.to_string();

    let descs = set.families.iter().map(|f| desc(krate, f));
    let field_idents: Vec<_> = set.families.iter().map(|f| f.field).collect();
    let locals: Vec<_> = set
        .families
        .iter()
        .map(|f| format_ident!("__metric_{}", f.field))
        .collect();
    let types = set.families.iter().map(|f| f.ty);
    let indices = 0..set.families.len();
    let limits = set.families.iter().filter_map(|f| series_limit(krate, f));

    quote! {
        #(#limits)*

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

/// The set's items with bodies that never run, emitted beside the errors of an input that failed
/// the checks.
fn fallback(ident: &Ident, krate: &TokenStream) -> TokenStream {
    quote! {
        #[automatically_derived]
        #[allow(unreachable_code)]
        impl #ident {
            pub const METRICS: &'static [#krate::MetricDesc] = &[];

            pub fn register(_: &#krate::Registry) -> ::core::result::Result<Self, #krate::Error> {
                ::core::unimplemented!("the metric set failed to compile")
            }

            pub fn global() -> &'static Self {
                ::core::unimplemented!("the metric set failed to compile")
            }
        }

        #[automatically_derived]
        impl #krate::MetricSet for #ident {
            const SERVICE: &'static str = "";
            const METRICS: &'static [#krate::MetricDesc] = &[];

            fn register(_: &#krate::Registry) -> ::core::result::Result<Self, #krate::Error> {
                ::core::unimplemented!("the metric set failed to compile")
            }

            fn global() -> &'static Self {
                ::core::unimplemented!("the metric set failed to compile")
            }
        }
    }
}

/// For a typed family, a constant that fails to compile, at the field, when its label type has
/// more combinations than the field allows.
fn series_limit(krate: &TokenStream, family: &Family) -> Option<TokenStream> {
    let Labels::Typed {
        ty,
        max_series,
        span,
    } = &family.labels
    else {
        return None;
    };
    let message = format!(
        "metric `{}` has more than {max_series} label combinations, and every combination is a series from the first scrape: use fewer label values, a string-labeled `...Vec` for open-ended values, or raise the limit with `#[metric(max_series = N)]`",
        family.name
    );
    let le_message = format!(
        "metric `{}` is a histogram and its label type names a label `le`, which histograms reserve for each bucket's upper bound: name the field for what it holds, for example `le_class` [label-reserved-for-type]",
        family.name
    );
    let le_check = (family.kind == Kind::Histogram).then(|| {
        quote_spanned! {*span=>
            ::core::assert!(
                !#krate::__private::labels_contain(<#ty as #krate::LabelSet>::LABEL_NAMES, "le"),
                #le_message
            );
        }
    });
    let repeat_message = format!(
        "metric `{}` names a label twice: a tuple of label types takes each enum once; to use one enum for two labels, derive `LabelSet` on a struct whose fields name them [label-duplicate]",
        family.name
    );
    Some(quote_spanned! {*span=>
        const _: () = {
            ::core::assert!(
                (<#ty as #krate::LabelSet>::CARDINALITY as u64) <= #max_series,
                #message
            );
            ::core::assert!(
                !#krate::__private::labels_repeat(<#ty as #krate::LabelSet>::LABEL_NAMES),
                #repeat_message
            );
            #le_check
        };
    })
}

fn desc(krate: &TokenStream, family: &Family) -> TokenStream {
    let Family {
        field,
        name,
        help,
        kind,
        ..
    } = family;
    let field_name = field.to_string();
    let kind_tokens = match kind {
        Kind::Counter => quote!(#krate::MetricKind::Counter),
        Kind::Gauge => quote!(#krate::MetricKind::Gauge),
        _ => quote!(#krate::MetricKind::Histogram),
    };
    let value = if family.int {
        quote!(#krate::ValueType::Int)
    } else {
        quote!(#krate::ValueType::Float)
    };
    let (labels, label_values) = match &family.labels {
        Labels::None => (quote!(&[]), quote!(&[])),
        Labels::Names(names) => (quote!(&[#(#names),*]), quote!(&[])),
        Labels::Typed { ty, .. } => {
            // Spanned at the type, so a type that is not a label set is reported there.
            let span = syn::spanned::Spanned::span(ty);
            (
                quote_spanned!(span=> <#ty as #krate::LabelSet>::LABEL_NAMES),
                quote_spanned!(span=> <#ty as #krate::LabelSet>::LABEL_VALUES),
            )
        }
    };
    let buckets = match (&family.buckets, kind) {
        (Some(buckets), _) => quote!(&[#(#buckets),*]),
        (None, Kind::Histogram) => quote!(#krate::DEFAULT_BUCKETS),
        _ => quote!(&[]),
    };
    let unit = match &family.unit {
        Some(unit) => quote!(::core::option::Option::Some(#unit)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #krate::MetricDesc {
            field: #field_name,
            name: #name,
            help: #help,
            kind: #kind_tokens,
            value: #value,
            labels: #labels,
            label_values: #label_values,
            buckets: #buckets,
            unit: #unit,
        }
    }
}
