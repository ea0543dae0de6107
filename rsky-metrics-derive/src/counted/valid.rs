//! Checks of a parsed `#[counted]`: what the arguments must name and what the function may be.
//! Whether the named fields exist and have the right kind is checked by rustc on the generated
//! code, at the span of each field name (see `expand`).

use super::attr::{attribute_span, Args};
use super::func::Func;
use crate::ctxt::Ctxt;

pub fn check(cx: &Ctxt, args: &Args, func: &Func) {
    if args.source.is_none() {
        cx.error_at(
            attribute_span(),
            "#[counted] needs the metric set first: its type, `#[counted(MySet, events = calls)]`, or an expression, `#[counted(metrics = self.metrics, events = calls)]`",
        );
    }
    if args.events.is_none() {
        cx.error_at(
            attribute_span(),
            "#[counted] needs `events = <counter field>`, the counter that every call increments: `#[counted(MySet, events = calls)]`",
        );
    }
    let sig = &func.item.sig;
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(
            constness,
            "#[counted] cannot count a `const fn`: metrics are updated at run time; remove `const` or the attribute",
        );
    }
    if let (Some(errors), None) = (&args.errors, &func.output) {
        cx.error_spanned_by(
            &errors.key,
            format!(
                "`errors` counts calls that return an error, but `{}` returns `()`, which cannot be one: return a `Result`, or remove `errors`",
                sig.ident
            ),
        );
    }
}
