#![doc = include_str!("../README.md")]

// The derive follows three rooms, data flowing one way: `ast` parses the input into a typed model,
// `valid` checks the model, collects every problem and returns the resolved set (each family's
// full name, kind, labels and buckets), `expand` generates code from that set only. After an
// error the set's items are still emitted (with bodies that never run), so a bad metric name
// gives its own error and no follow-on errors at the set's uses. `labels` derives the label
// types of typed families; `counted` is the attribute, in the same three rooms.

mod ast;
mod attr;
mod counted;
mod ctxt;
mod expand;
mod labels;
mod valid;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Declares a service's metrics as a struct.
///
/// Defined in `rsky-metrics-derive`; use it through `rsky-metrics-runtime`, which re-exports it and
/// documents it in full: every key, its type, an example and the error it gives
/// ([`rsky_metrics_runtime::Metrics`](https://docs.rs/rsky-metrics-runtime/latest/rsky_metrics_runtime/derive.Metrics.html)).
#[proc_macro_derive(Metrics, attributes(metrics, metric))]
pub fn derive_metrics(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}

/// Makes a fieldless enum one label, its variants the label's values.
///
/// Defined in `rsky-metrics-derive`; use it through `rsky-metrics-runtime`, which re-exports it and
/// documents it in full: every key, its type, an example and the error it gives
/// ([`rsky_metrics_runtime::LabelValue`](https://docs.rs/rsky-metrics-runtime/latest/rsky_metrics_runtime/derive.LabelValue.html)).
#[proc_macro_derive(LabelValue, attributes(label))]
pub fn derive_label_value(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    labels::derive_value(&input).into()
}

/// Makes a struct of label enums a set of labels named after its fields.
///
/// Defined in `rsky-metrics-derive`; use it through `rsky-metrics-runtime`, which re-exports it and
/// documents it in full: every key, its type, an example and the error it gives
/// ([`rsky_metrics_runtime::LabelSet`](https://docs.rs/rsky-metrics-runtime/latest/rsky_metrics_runtime/derive.LabelSet.html)).
#[proc_macro_derive(LabelSet, attributes(label))]
pub fn derive_label_set(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    labels::derive_set(&input).into()
}

/// Counts a function's calls, errors, in-flight work and duration.
///
/// Defined in `rsky-metrics-derive`; use it through `rsky-metrics-runtime`, which re-exports it and
/// documents it in full: every key, its type, an example and the error it gives
/// ([`rsky_metrics_runtime::counted`](https://docs.rs/rsky-metrics-runtime/latest/rsky_metrics_runtime/attr.counted.html)).
#[proc_macro_attribute]
pub fn counted(args: TokenStream, item: TokenStream) -> TokenStream {
    counted::expand(args.into(), item.into())
        .unwrap_or_else(|err| err.to_compile_error())
        .into()
}
