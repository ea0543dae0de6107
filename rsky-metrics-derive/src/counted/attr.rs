//! Parsing of `#[counted(...)]` arguments into [`Args`]. Unknown and repeated keys are recorded in
//! the context; whether the model is complete is for `valid` to judge.

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser as _};
use syn::{Expr, Ident, LitStr, Path, Token, Type};

use crate::ctxt::Ctxt;

/// The keys that name a field of the set.
pub const ROLES: [&str; 4] = ["events", "errors", "in_flight", "duration"];

const KEYS: &str = "`events`, `errors`, `in_flight`, `duration`, `metrics` and `crate`";

/// Where the metric set comes from.
pub enum Source {
    /// `#[counted(MySet, ...)]`: `<MySet as MetricSet>::global()`.
    Type(Box<Type>),
    /// `#[counted(metrics = <expr>, ...)]`: evaluated once per call, on entry.
    Expr(Box<Expr>),
}

/// `key = field`, or the shorthand `key` for a field of the same name.
pub struct Role {
    pub key: Ident,
    pub field: Ident,
}

/// The parsed arguments of one `#[counted(...)]`.
#[derive(Default)]
pub struct Args {
    pub source: Option<Source>,
    pub events: Option<Role>,
    pub errors: Option<Role>,
    pub in_flight: Option<Role>,
    pub duration: Option<Role>,
    pub krate: Option<Path>,
}

impl Args {
    /// Parses the arguments; `None` when they are not even a comma-separated list of arguments
    /// (the syntax error is then in the context).
    pub fn parse(cx: &Ctxt, tokens: TokenStream) -> Option<Args> {
        let parser = |input: ParseStream| parse_args(cx, input);
        match parser.parse2(tokens) {
            Ok(args) => Some(args),
            Err(err) => {
                cx.syn_error(err);
                None
            }
        }
    }
}

fn parse_args(cx: &Ctxt, input: ParseStream) -> syn::Result<Args> {
    let mut args = Args::default();
    let mut first = true;
    while !input.is_empty() {
        if input.peek(Token![crate]) && input.peek2(Token![=]) {
            let key: Token![crate] = input.parse()?;
            input.parse::<Token![=]>()?;
            let path = if input.peek(LitStr) {
                input.parse::<LitStr>()?.parse::<Path>()?
            } else {
                Path::parse_mod_style(input)?
            };
            if args.krate.is_some() {
                cx.error_spanned_by(key, "duplicate `crate`: give the runtime's path once");
            }
            args.krate = Some(path);
            // `crate = ...` may come before the metric set.
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
            continue;
        } else if input.peek(Ident) && input.peek2(Token![=]) {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            if key == "metrics" {
                let expr: Expr = input.parse()?;
                set_source(cx, &mut args, &key, Source::Expr(Box::new(expr)));
            } else if ROLES.iter().any(|role| key == role) {
                let field: Ident = input.parse().map_err(|err| {
                    syn::Error::new(
                        err.span(),
                        format!("`{key} = ...` takes the name of a field of the metric set, for example `{key} = my_field`"),
                    )
                })?;
                set_role(cx, &mut args, Role { key, field });
            } else {
                cx.error_spanned_by(&key, unknown_key(&key));
                // Skip the value so that the keys after it are still checked.
                input.parse::<Expr>()?;
            }
        } else if input.peek(Ident)
            && (input.peek2(Token![,]) || peek_last(input))
            && is_role(input)
        {
            let key: Ident = input.parse()?;
            let field = key.clone();
            set_role(cx, &mut args, Role { key, field });
        } else if first {
            let ty: Type = input.parse().map_err(|err| {
                syn::Error::new(
                    err.span(),
                    "#[counted] takes the metric set first: its type (`#[counted(MySet, events = calls)]`) or `metrics = <expr>`",
                )
            })?;
            args.source = Some(Source::Type(Box::new(ty)));
        } else if input.peek(Ident) && (input.peek2(Token![,]) || peek_last(input)) {
            let key: Ident = input.parse()?;
            cx.error_spanned_by(&key, unknown_key(&key));
        } else {
            return Err(input.error(format!(
                "expected `key = value` here; #[counted] takes the metric set first, then {KEYS}"
            )));
        }
        first = false;
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(args)
}

fn peek_last(input: ParseStream) -> bool {
    let fork = input.fork();
    fork.parse::<Ident>().is_ok() && fork.is_empty()
}

fn is_role(input: ParseStream) -> bool {
    input
        .fork()
        .parse::<Ident>()
        .is_ok_and(|ident| ROLES.iter().any(|role| ident == role))
}

fn unknown_key(key: &Ident) -> String {
    format!("unknown #[counted] key `{key}`; the keys are {KEYS}")
}

fn set_source(cx: &Ctxt, args: &mut Args, key: &Ident, source: Source) {
    if args.source.is_some() {
        cx.error_spanned_by(
            key,
            "the metric set is given twice: use either its type first or `metrics = <expr>`, not both",
        );
    }
    args.source = Some(source);
}

fn set_role(cx: &Ctxt, args: &mut Args, role: Role) {
    let slot = match role.key.to_string().as_str() {
        "events" => &mut args.events,
        "errors" => &mut args.errors,
        "in_flight" => &mut args.in_flight,
        _ => &mut args.duration,
    };
    if slot.is_some() {
        cx.error_spanned_by(
            &role.key,
            format!("duplicate `{}`: give each key once", role.key),
        );
    }
    *slot = Some(role);
}

/// The span of the whole attribute, for problems that no single argument carries.
pub fn attribute_span() -> Span {
    Span::call_site()
}
