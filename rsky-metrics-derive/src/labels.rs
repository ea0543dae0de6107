//! `#[derive(LabelValue)]` (a fieldless enum is one label and its values) and
//! `#[derive(LabelSet)]` (a struct of label types is several labels, named after its fields).
//!
//! Same three rooms as the metric set, in one file since the model is small: `parse_*` builds the
//! model (collecting problems in a [`Ctxt`]), `check_*` judges it, `expand_*` writes the impls. After
//! an error, [`fallback`] still emits the impls so that a family using the type shows no
//! follow-on "not a label set" error.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use rsky_metrics_naming::{self as naming, Kind};
use syn::spanned::Spanned as _;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, LitStr, Type};

use crate::ctxt::Ctxt;

/// `#[label(...)]` on the enum or struct.
#[derive(Default)]
struct ContainerAttr {
    name: Option<LitStr>,
    krate: Option<syn::Path>,
}

/// One value of a label enum.
struct Value<'a> {
    ident: &'a Ident,
    /// The exposed value: the `rename` or the variant's snake_case.
    value: String,
    rename: Option<LitStr>,
    panic: Option<Span>,
}

fn krate(attr: &ContainerAttr) -> TokenStream {
    match &attr.krate {
        Some(path) => quote!(#path),
        None => quote!(::rsky_metrics_runtime),
    }
}

fn container_attr(cx: &Ctxt, attrs: &[Attribute], takes_name: bool) -> ContainerAttr {
    let mut out = ContainerAttr::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("label")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") && takes_name {
                out.name = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                match lit.parse::<syn::Path>() {
                    Ok(path) => out.krate = Some(path),
                    Err(_) => cx.error_spanned_by(
                        &lit,
                        "`crate` is the path of the runtime crate, for example `crate = \"::rsky_metrics_runtime\"`",
                    ),
                }
            } else if takes_name {
                return Err(meta.error(
                    "unknown `label` key; on the enum it takes `name = \"...\"` (the label's name) and `crate = \"...\"`",
                ));
            } else {
                return Err(meta.error(
                    "unknown `label` key; on a label set it takes `crate = \"...\"` (label names are the field names)",
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

fn variant_attr(cx: &Ctxt, attrs: &[Attribute]) -> (Option<LitStr>, Option<Span>) {
    let mut rename = None;
    let mut panic = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("label")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                rename = Some(meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("panic") {
                panic = Some(meta.path.span());
            } else {
                return Err(meta.error(
                    "unknown `label` key; on a variant it takes `rename = \"...\"` (the exposed value) and `panic` (what `#[counted]` counts a panic as)",
                ));
            }
            Ok(())
        });
        if let Err(err) = result {
            cx.syn_error(err);
        }
    }
    (rename, panic)
}

/// Reports naming findings about label names, each at the span of its name.
fn check_names(cx: &Ctxt, ty: &Ident, names: &[(String, Span)]) {
    let plain: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    // Rules of every family; a histogram's reserved `le` is checked where the type is used.
    for finding in naming::check_labels(&ty.to_string(), Kind::Counter, &plain) {
        let span = match finding.target {
            naming::Target::Label(index) => names.get(index).map(|(_, s)| *s),
            _ => None,
        }
        .unwrap_or_else(|| ty.span());
        let fix = finding
            .fix
            .as_deref()
            .map(|f| format!("; {f}"))
            .unwrap_or_default();
        // A label type has no metric kind: say why `le`/`quantile` are refused for every family.
        let message = match finding.target {
            naming::Target::Label(index) if finding.rule == naming::Rule::LabelReservedForType => {
                format!(
                    "label \"{}\" is reserved: histograms write `le` for their bucket bounds and summaries `quantile` for their quantiles, so no label type may name it",
                    plain.get(index).copied().unwrap_or_default()
                )
            }
            _ => finding.message.clone(),
        };
        cx.error_at(
            span,
            format!("label type `{ty}`: {message}{fix} [{}]", finding.rule.id()),
        );
    }
}

pub fn derive_value(node: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let attr = container_attr(&cx, &node.attrs, true);
    let krate = krate(&attr);
    let ident = &node.ident;
    let values = parse_values(&cx, node);
    let name = match &attr.name {
        Some(lit) => (lit.value(), lit.span()),
        None => (naming::to_snake_case(&ident.to_string()), ident.span()),
    };
    check_names(&cx, ident, std::slice::from_ref(&name));
    check_values(&cx, ident, &values);
    match cx.check() {
        Ok(()) => expand_value(&krate, ident, &name.0, &values),
        Err(err) => {
            let mut tokens = fallback(&krate, node);
            tokens.extend(quote! {
                #[automatically_derived]
                impl #krate::LabelValue for #ident {
                    const LABEL_NAME: &'static str = "";
                    const VALUES: &'static [&'static str] = &[];
                }
            });
            tokens.extend(err.to_compile_error());
            tokens
        }
    }
}

fn parse_values<'a>(cx: &Ctxt, node: &'a DeriveInput) -> Vec<Value<'a>> {
    if !node.generics.params.is_empty() {
        cx.error_spanned_by(
            &node.generics,
            "#[derive(LabelValue)] does not support generics: a label is a plain fieldless enum",
        );
    }
    let Data::Enum(data) = &node.data else {
        cx.error_spanned_by(
            &node.ident,
            "#[derive(LabelValue)] needs a fieldless enum, one variant per label value: `enum ErrorKind { Redis, Decode }`; to combine several labels, derive `LabelSet` on a struct of label enums",
        );
        return Vec::new();
    };
    if data.variants.is_empty() {
        cx.error_spanned_by(
            &node.ident,
            "a label enum needs at least one variant: each variant is one value of the label",
        );
    }
    data.variants
        .iter()
        .map(|variant| {
            if !matches!(variant.fields, Fields::Unit) {
                cx.error_spanned_by(
                    &variant.fields,
                    format!(
                        "variant `{}` has fields, but a label value is a fieldless variant: remove the fields (a label holds one of a fixed set of values)",
                        variant.ident
                    ),
                );
            }
            let (rename, panic) = variant_attr(cx, &variant.attrs);
            let value = match &rename {
                Some(lit) => lit.value(),
                None => naming::to_snake_case(&variant.ident.to_string()),
            };
            Value {
                ident: &variant.ident,
                value,
                rename,
                panic,
            }
        })
        .collect()
}

fn check_values(cx: &Ctxt, ty: &Ident, values: &[Value]) {
    let span_of = |v: &Value| {
        v.rename
            .as_ref()
            .map_or_else(|| v.ident.span(), |l| l.span())
    };
    for (index, value) in values.iter().enumerate() {
        if value.value.is_empty() {
            cx.error_at(
                span_of(value),
                format!(
                    "label type `{ty}`: variant `{}` is renamed to the empty string, which Prometheus reads as the label being absent; give it a non-empty value",
                    value.ident
                ),
            );
        }
        if let Some(first) = values[..index].iter().find(|v| v.value == value.value) {
            cx.error_at(
                span_of(value),
                format!(
                    "label type `{ty}`: variants `{}` and `{}` both have the value \"{}\", so their series could not be told apart; rename one with `#[label(rename = \"...\")]`",
                    first.ident, value.ident, value.value
                ),
            );
        }
    }
    let mut panics = values.iter().filter_map(|v| v.panic);
    panics.next();
    for extra in panics {
        cx.error_at(
            extra,
            format!("label type `{ty}`: more than one variant is marked `panic`; a panic counts under one value, so mark one"),
        );
    }
}

fn expand_value(krate: &TokenStream, ident: &Ident, name: &str, values: &[Value]) -> TokenStream {
    let strings = values.iter().map(|v| &v.value);
    let variants: Vec<_> = values.iter().map(|v| v.ident).collect();
    let indices = 0..values.len();
    let count = values.len();
    let panic = values.iter().find(|v| v.panic.is_some()).map(|v| {
        let variant = v.ident;
        quote! {
            #[automatically_derived]
            impl #krate::PanicLabel for #ident {
                const PANIC: Self = #ident::#variant;
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #krate::LabelValue for #ident {
            const LABEL_NAME: &'static str = #name;
            const VALUES: &'static [&'static str] = &[#(#strings),*];
        }

        #[automatically_derived]
        impl #krate::LabelSet for #ident {
            const LABEL_NAMES: &'static [&'static str] = &[#name];
            const LABEL_VALUES: &'static [&'static [&'static str]] =
                &[<#ident as #krate::LabelValue>::VALUES];
            const CARDINALITY: usize = #count;

            #[inline]
            fn index(&self) -> usize {
                match self {
                    #(#ident::#variants => #indices,)*
                }
            }
        }

        #panic
    }
}

pub fn derive_set(node: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let attr = container_attr(&cx, &node.attrs, false);
    let krate = krate(&attr);
    let ident = &node.ident;
    if !node.generics.params.is_empty() {
        cx.error_spanned_by(
            &node.generics,
            "#[derive(LabelSet)] does not support generics: a label set is a plain struct of label enums",
        );
    }
    let fields: Vec<(&Ident, &Type)> = match &node.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named
                .named
                .iter()
                .filter_map(|f| Some((f.ident.as_ref()?, &f.ty)))
                .collect(),
            _ => {
                cx.error_spanned_by(ident, "#[derive(LabelSet)] needs a struct with named fields: each field is one label, named after the field");
                Vec::new()
            }
        },
        _ => {
            cx.error_spanned_by(ident, "#[derive(LabelSet)] works on structs of label types (`struct Labels { collection: Collection, action: Action }`); for one label's values, derive `LabelValue` on a fieldless enum");
            Vec::new()
        }
    };
    if fields.is_empty() && matches!(&node.data, Data::Struct(_)) {
        cx.error_spanned_by(
            ident,
            "a label set needs at least one field: each field is one label",
        );
    }
    let names: Vec<(String, Span)> = fields
        .iter()
        .map(|(f, _)| (f.to_string().trim_start_matches("r#").to_owned(), f.span()))
        .collect();
    check_names(&cx, ident, &names);
    match cx.check() {
        Ok(()) => expand_set(&krate, ident, &names, &fields),
        Err(err) => {
            let mut tokens = fallback(&krate, node);
            tokens.extend(err.to_compile_error());
            tokens
        }
    }
}

fn expand_set(
    krate: &TokenStream,
    ident: &Ident,
    names: &[(String, Span)],
    fields: &[(&Ident, &Type)],
) -> TokenStream {
    let names = names.iter().map(|(n, _)| n);
    // Each field's type must be a label enum; spanned at the type, so that is where rustc says so.
    let values = fields
        .iter()
        .map(|(_, ty)| quote_spanned!(ty.span()=> <#ty as #krate::LabelValue>::VALUES));
    let cards: Vec<_> = fields
        .iter()
        .map(|(_, ty)| quote_spanned!(ty.span()=> <#ty as #krate::LabelSet>::CARDINALITY))
        .collect();
    let steps = fields.iter().zip(&cards).map(
        |((field, _), card)| quote!(index = index * #card + #krate::LabelSet::index(&self.#field);),
    );
    quote! {
        #[automatically_derived]
        impl #krate::LabelSet for #ident {
            const LABEL_NAMES: &'static [&'static str] = &[#(#names),*];
            const LABEL_VALUES: &'static [&'static [&'static str]] = &[#(#values),*];
            const CARDINALITY: usize = 1 #(* #cards)*;

            #[inline]
            fn index(&self) -> usize {
                let mut index = 0;
                #(#steps)*
                index
            }
        }
    }
}

/// The `LabelSet` impl of an input that failed the checks, with no labels and a body that never
/// runs, so that families using it report nothing more.
fn fallback(krate: &TokenStream, node: &DeriveInput) -> TokenStream {
    let ident = &node.ident;
    let (impl_generics, ty_generics, where_clause) = node.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::LabelSet for #ident #ty_generics #where_clause {
            const LABEL_NAMES: &'static [&'static str] = &[];
            const LABEL_VALUES: &'static [&'static [&'static str]] = &[];
            const CARDINALITY: usize = 0;

            fn index(&self) -> usize {
                ::core::unimplemented!("the label type failed to compile")
            }
        }
    }
}
