//! The counted function as a model: its item, how its body runs (synchronously, as an
//! `async fn`, or as the boxed async block that `#[async_trait]` leaves), and what it returns.

use proc_macro2::TokenTree;
use quote::ToTokens;
use syn::{
    Expr, ExprAsync, GenericArgument, ItemFn, PathArguments, ReturnType, Stmt, Type, TypeParamBound,
};

/// How the body of the function runs.
pub enum Shape {
    /// A plain `fn`: the body runs in the call.
    Sync,
    /// An `async fn`: the body runs in the future it returns.
    Async,
    /// A `fn` that `#[async_trait]` rewrote: its body ends in `Box::pin(async move { ... })`,
    /// and that async block is the original body.
    AsyncTrait,
}

pub struct Func {
    pub item: ItemFn,
    pub shape: Shape,
    /// What a call finally produces (the future's output for async shapes); `None` for `()`.
    pub output: Option<Type>,
}

impl Func {
    pub fn from_syn(item: ItemFn) -> Func {
        let declared = match &item.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some((**ty).clone()),
        };
        let (shape, output) = if item.sig.asyncness.is_some() {
            (Shape::Async, declared)
        } else if let Some(output) = declared
            .as_ref()
            .and_then(boxed_future_output)
            .filter(|_| async_trait_block(&item).is_some())
        {
            (Shape::AsyncTrait, Some(output))
        } else {
            (Shape::Sync, declared)
        };
        let output = output.filter(|ty| !is_unit(ty));
        Func {
            item,
            shape,
            output,
        }
    }
}

fn is_unit(ty: &Type) -> bool {
    match ty {
        Type::Tuple(tuple) => tuple.elems.is_empty(),
        Type::Paren(paren) => is_unit(&paren.elem),
        _ => false,
    }
}

/// Whether `ty` mentions `impl Trait` anywhere, so that it cannot be written in an expression.
pub fn has_impl_trait(ty: &Type) -> bool {
    fn scan(tokens: proc_macro2::TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => scan(group.stream()),
            _ => false,
        })
    }
    scan(ty.to_token_stream())
}

/// `X` in `Pin<Box<dyn Future<Output = X> + Send + 'a>>`, the return type `#[async_trait]`
/// gives an `async fn`.
fn boxed_future_output(ty: &Type) -> Option<Type> {
    let pin = last_segment_args(ty, "Pin")?;
    let boxed = match pin.first()? {
        GenericArgument::Type(ty) => last_segment_args(ty, "Box")?,
        _ => return None,
    };
    let Some(GenericArgument::Type(Type::TraitObject(object))) = boxed.first() else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let segment = bound.path.segments.last()?;
        let PathArguments::AngleBracketed(args) = &segment.arguments else {
            return None;
        };
        if segment.ident != "Future" {
            return None;
        }
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(assoc.ty.clone()),
            _ => None,
        })
    })
}

fn last_segment_args<'t>(
    ty: &'t Type,
    name: &str,
) -> Option<&'t syn::punctuated::Punctuated<GenericArgument, syn::token::Comma>> {
    let Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    if segment.ident != name {
        return None;
    }
    match &segment.arguments {
        PathArguments::AngleBracketed(args) => Some(&args.args),
        _ => None,
    }
}

/// The `async move { ... }` in a body that ends in `Box::pin(async move { ... })`.
pub fn async_trait_block(item: &ItemFn) -> Option<&ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = item.block.stmts.last() else {
        return None;
    };
    let Expr::Path(callee) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = callee
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    match call.args.first()? {
        Expr::Async(block) if block.capture.is_some() => Some(block),
        _ => None,
    }
}

/// The mutable counterpart of [`async_trait_block`], for the expansion.
pub fn async_trait_block_mut(item: &mut ItemFn) -> Option<&mut ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = item.block.stmts.last_mut() else {
        return None;
    };
    match call.args.first_mut()? {
        Expr::Async(block) => Some(block),
        _ => None,
    }
}
