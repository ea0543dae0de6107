//! `#[counted]`: counts a function's calls, errors, in-flight work and duration.
//!
//! Three rooms, data flowing one way: [`attr`] parses the arguments and [`func`] the function
//! into a model, [`valid`] checks both and collects every problem, [`expand`] wraps the body of a
//! function that passed.

mod attr;
mod expand;
mod func;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ctxt::Ctxt;

pub fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let args = attr::Args::parse(&cx, args);
    let func = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(item) => Some(func::Func::from_syn(item)),
        Err(_) => {
            cx.error_spanned_by(
                &item,
                "#[counted] goes on a function with a body: a free function, a method in an `impl` block, or a trait method with a default body",
            );
            None
        }
    };
    if let (Some(args), Some(func)) = (&args, &func) {
        valid::check(&cx, args, func);
    }
    match cx.check() {
        Ok(()) => {
            let (args, func) = args
                .zip(func)
                .expect("models exist when no error was recorded");
            Ok(expand::expand(&args, &func))
        }
        // The function stays as written, so that its callers do not add errors of their own.
        Err(err) => {
            let errors = err.to_compile_error();
            Ok(quote!(#errors #item))
        }
    }
}
