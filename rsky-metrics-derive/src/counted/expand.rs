//! Code generation for `#[counted]`, from arguments and a function that `valid` accepted.
//!
//! The body moves, unchanged and with its own spans, into a closure (sync) or an `async move`
//! block (async), so that `return` and `?` end the body rather than the function and every
//! outcome passes through one place. A `Call` guard settles the exits that do not return:
//! a panic, and an async future dropped before completion.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens as _};
use syn::spanned::Spanned as _;
use syn::{AttrStyle, Block, ReturnType, Type};

use super::attr::{Args, Role, Source};
use super::func::{async_trait_block_mut, has_impl_trait, Func, Shape};

pub fn expand(args: &Args, func: &Func) -> TokenStream {
    let krate = match &args.krate {
        Some(path) => quote!(#path),
        None => quote!(::rsky_metrics_runtime),
    };
    let names = Names {
        rt: quote!(#krate::__private::counted),
        set: Ident::new("__rsky_counted_set", Span::mixed_site()),
        call: Ident::new("__rsky_counted_call", Span::mixed_site()),
        result: Ident::new("__rsky_counted_result", Span::mixed_site()),
        errors: Ident::new("__rsky_counted_errors", Span::mixed_site()),
    };
    let enter = enter(args, &krate, &names);
    // Counts what the body returned on `errors`, spanned at the return type so that a return
    // type the field cannot count is reported there; nothing when `errors` is not given.
    let count = |errors: &TokenStream, value: &Ident| match (&args.errors, &func.output) {
        (Some(_), Some(output)) => {
            let rt = &names.rt;
            respan(quote!(#rt::count_error(#errors, #value);), output.span())
        }
        _ => quote!(),
    };

    let mut item = func.item.clone();
    let (outer_attrs, inner_attrs): (Vec<_>, Vec<_>) = item
        .attrs
        .drain(..)
        .partition(|attr| matches!(attr.style, AttrStyle::Outer));
    let Names {
        rt, call, result, ..
    } = &names;
    let body = match func.shape {
        Shape::Sync => {
            let block = &item.block;
            let ret = match &item.sig.output {
                ReturnType::Default => quote!(()),
                ReturnType::Type(_, ty) => nameable(ty),
            };
            let count = count(&quote!(#call.errors()), result);
            quote! {
                #enter
                let #result = #rt::call::<#ret, _>(move || #block);
                {
                    let #result = &#result;
                    #count
                }
                #call.exit();
                #result
            }
        }
        Shape::Async => {
            let ret = func.output.as_ref().map_or(quote!(()), nameable);
            let count = count(&names.errors.to_token_stream(), result);
            async_body(&names, &enter, &item.block, &ret, &count)
        }
        Shape::AsyncTrait => {
            let ret = func.output.as_ref().map_or(quote!(()), nameable);
            let count = count(&names.errors.to_token_stream(), result);
            let block =
                async_trait_block_mut(&mut item).expect("the shape was recognised from this block");
            let inner = async_body(&names, &enter, &block.block, &ret, &count);
            block.block = syn::parse_quote!({ #inner });
            let stmts = &item.block.stmts;
            quote!(#(#stmts)*)
        }
    };
    let vis = &item.vis;
    let sig = &item.sig;
    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #body
        }
    }
}

struct Names {
    /// The runtime support module.
    rt: TokenStream,
    /// The metric set, resolved once per call.
    set: Ident,
    /// The `Call` guard.
    call: Ident,
    /// What the body returned.
    result: Ident,
    /// The `errors` role, as an async body's output is counted.
    errors: Ident,
}

/// Resolves the set and enters the call: `events` +1, `in_flight` +1, the clock started. Each
/// field is reached through a kind check spanned at its name in the attribute, so that a missing
/// field or one of the wrong kind is reported there.
fn enter(args: &Args, krate: &TokenStream, names: &Names) -> TokenStream {
    let Names { rt, set, call, .. } = names;
    let source = match &args.source {
        Some(Source::Type(ty)) => quote_spanned!(ty.span()=> <#ty as #krate::MetricSet>::global()),
        Some(Source::Expr(expr)) => quote!(#expr),
        None => unreachable!("validated: the set is given"),
    };
    let field = |role: &Option<Role>, check: &str| match role {
        Some(role) => {
            let field = &role.field;
            let check = Ident::new(check, field.span());
            respan(quote!(#rt::#check(&#set.#field)), field.span())
        }
        None => quote!(&#rt::ABSENT),
    };
    let events = field(&args.events, "counter");
    let errors = match &args.errors {
        Some(_) => field(&args.errors, "errors"),
        None => quote!(#rt::errors(&#rt::ABSENT)),
    };
    let in_flight = field(&args.in_flight, "gauge");
    let duration = field(&args.duration, "histogram");
    quote! {
        let #set = #source;
        let #call = #rt::Call::enter(#events, #errors, #in_flight, #duration);
    }
}

fn async_body(
    names: &Names,
    enter: &TokenStream,
    block: &Block,
    ret: &TokenStream,
    count: &TokenStream,
) -> TokenStream {
    let Names {
        rt,
        call,
        result,
        errors,
        ..
    } = names;
    quote! {
        #enter
        #call
            .run(#rt::future::<#ret, _>(async move #block), |#errors, #result| { #count })
            .await
    }
}

/// The type as written, or `_` when it mentions `impl Trait` (which expressions cannot name).
fn nameable(ty: &Type) -> TokenStream {
    if has_impl_trait(ty) {
        quote!(_)
    } else {
        quote!(#ty)
    }
}

/// `tokens` placed at `span` (keeping each token's hygiene), so that rustc reports a problem of
/// the whole expression there: at a field name in the attribute, or at the return type.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(group.span().located_at(span));
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(tree.span().located_at(span));
            }
            tree
        })
        .collect()
}
