//! Procedural macros of rsky-metrics. Use them through `rsky-metrics-runtime`, which re-exports them
//! together with the metric types the generated code needs.
//!
//! The derive follows three rooms, data flowing one way: [`ast`] parses the input into a typed
//! model, [`valid`] checks the model, collects every problem and returns the resolved set (each
//! family's full name, kind, labels and buckets), [`expand`] generates code from that set only.
//! After an error the set's items are still emitted (with bodies that never run), so a bad
//! metric name gives its own error and no follow-on errors at the set's uses. [`labels`] derives
//! the label types of typed families.

mod ast;
mod attr;
mod counted;
mod ctxt;
mod expand;
mod labels;
mod valid;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Declares a service's metrics as a struct: see `rsky_metrics_runtime::Metrics`.
#[proc_macro_derive(Metrics, attributes(metrics, metric))]
pub fn derive_metrics(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}

/// Makes a fieldless enum one label, its variants the label's values: see
/// `rsky_metrics_runtime::LabelValue`.
#[proc_macro_derive(LabelValue, attributes(label))]
pub fn derive_label_value(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    labels::derive_value(&input).into()
}

/// Makes a struct of label enums a set of labels named after its fields: see
/// `rsky_metrics_runtime::LabelSet`.
#[proc_macro_derive(LabelSet, attributes(label))]
pub fn derive_label_set(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    labels::derive_set(&input).into()
}

/// Counts a function's calls, errors, in-flight work and duration: see `rsky_metrics_runtime::counted`.
#[proc_macro_attribute]
pub fn counted(args: TokenStream, item: TokenStream) -> TokenStream {
    counted::expand(args.into(), item.into())
        .unwrap_or_else(|err| err.to_compile_error())
        .into()
}
