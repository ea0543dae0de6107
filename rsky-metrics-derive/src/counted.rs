//! `#[counted]`: placeholder until the attribute lands; it leaves the function unchanged.

use proc_macro2::TokenStream;

pub fn expand(_args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    Ok(item)
}
