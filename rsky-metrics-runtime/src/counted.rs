//! Runtime support of `#[counted]`: what counts as an error, which metric types may fill which
//! role, and the guards that account for every exit of a call (return, `?`, panic, and an async
//! future dropped before it completed).
//!
//! The generated code only calls into this module; the guards are `#[inline]` so a counted call
//! costs the increments themselves.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::pin;
use std::time::Instant;

use prometheus::core::{Atomic, GenericCounter, GenericGauge};
use prometheus::Histogram;

use crate::family::{Family, Series};
use crate::labels::{CountAs, LabelSet, PanicLabel};

/// Tells `#[counted(errors = ...)]` whether a function's return value is an error.
///
/// Implemented for every `Result` (and so for `std::io::Result`, `anyhow::Result` and any other
/// alias of it). Implement it for a return type of your own to count its failures:
///
/// ```
/// use rsky_metrics_runtime::{counted, CountOutcome, IntCounter, Metrics};
///
/// /// What a lookup found.
/// pub enum Lookup {
///     Found(u64),
///     Missing,
///     Failed,
/// }
///
/// impl CountOutcome for Lookup {
///     fn is_error(&self) -> bool {
///         matches!(self, Lookup::Failed)
///     }
/// }
///
/// #[derive(Metrics)]
/// #[metrics(service = "outcome_doc")]
/// pub struct LookupMetrics {
///     /// Lookups made
///     pub lookups: IntCounter,
///     /// Lookups that failed
///     pub lookup_errors: IntCounter,
/// }
///
/// #[counted(LookupMetrics, events = lookups, errors = lookup_errors)]
/// fn lookup(key: u64) -> Lookup {
///     match key {
///         0 => Lookup::Failed,
///         1 => Lookup::Missing,
///         _ => Lookup::Found(key),
///     }
/// }
///
/// lookup(0);
/// lookup(1);
/// lookup(2);
/// let metrics = LookupMetrics::global();
/// assert_eq!(metrics.lookups.get(), 3);
/// assert_eq!(metrics.lookup_errors.get(), 1);
/// ```
#[diagnostic::on_unimplemented(
    message = "`#[counted(errors = ...)]` cannot tell whether a `{Self}` is an error",
    label = "`errors` counts returns that are errors, and this return type is not a `Result`",
    note = "return a `Result`, implement `rsky_metrics_runtime::CountOutcome` for your return type, or remove `errors`"
)]
pub trait CountOutcome {
    /// Whether this value is a failed call, counted by `errors`.
    fn is_error(&self) -> bool;
}

impl<T, E> CountOutcome for Result<T, E> {
    #[inline]
    fn is_error(&self) -> bool {
        self.is_err()
    }
}

/// A metric that `events` and `errors` can count on: `IntCounter` or `Counter`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a counter: `#[counted]` counts `events` and `errors` on an `IntCounter` or a `Counter`",
    label = "this field must be an `IntCounter` or a `Counter`",
    note = "pass a counter field of the set, or declare this field as `IntCounter`; gauges go to `in_flight`, histograms to `duration`"
)]
pub trait CounterLike {
    /// Adds one.
    fn inc(&self);
}

impl<P: Atomic> CounterLike for GenericCounter<P> {
    #[inline]
    fn inc(&self) {
        GenericCounter::inc(self)
    }
}

/// A metric that `errors` can count on: `IntCounter`, `Counter`, or a typed counter family
/// (`IntCounterFamily<L>`, `CounterFamily<L>`) that counts each error under its kind.
///
/// A call that panics counts as an error: +1 on a counter, +1 under the label type's
/// `#[label(panic)]` value on a family (see [`PanicLabel`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot count errors: `#[counted]` counts `errors` on an `IntCounter`, a `Counter` or a typed counter family",
    label = "this field must be an `IntCounter`, a `Counter`, an `IntCounterFamily<L>` or a `CounterFamily<L>`",
    note = "pass a counter field of the set; gauges go to `in_flight`, histograms to `duration`"
)]
pub trait ErrorCounter {
    /// Counts a call that panicked.
    fn count_panic(&self);
}

impl<P: Atomic> ErrorCounter for GenericCounter<P> {
    #[inline]
    fn count_panic(&self) {
        GenericCounter::inc(self)
    }
}

impl<L: PanicLabel, M: Series + CounterLike> ErrorCounter for Family<L, M> {
    #[inline]
    fn count_panic(&self) {
        self[L::PANIC].inc()
    }
}

/// How `errors` counts what a call returned: a counter adds one when it is an error
/// ([`CountOutcome`]); a typed family adds one under the label the error converts into
/// ([`CountAs`]).
#[diagnostic::on_unimplemented(
    message = "`#[counted(errors = ...)]` cannot count a `{R}` on a `{Self}`",
    label = "the return type whose errors `errors` counts",
    note = "a counter counts returns that are errors (a `Result`, or a type implementing `CountOutcome`); a typed family counts the `Err` of a `Result` whose error type implements `CountAs<L>`"
)]
pub trait CountError<R: ?Sized> {
    /// Counts `returned` when it is an error.
    fn count_error(&self, returned: &R);
}

impl<P: Atomic, R: CountOutcome + ?Sized> CountError<R> for GenericCounter<P> {
    #[inline]
    fn count_error(&self, returned: &R) {
        if returned.is_error() {
            GenericCounter::inc(self)
        }
    }
}

impl<L: LabelSet, M: Series + CounterLike, T, E: CountAs<L>> CountError<Result<T, E>>
    for Family<L, M>
{
    #[inline]
    fn count_error(&self, returned: &Result<T, E>) {
        if let Err(error) = returned {
            self[error.count_as()].inc()
        }
    }
}

/// A metric that `in_flight` can track calls on: `IntGauge` or `Gauge`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a gauge: `#[counted]` tracks `in_flight` on an `IntGauge` or a `Gauge`",
    label = "this field must be an `IntGauge` or a `Gauge`",
    note = "pass a gauge field of the set, or declare this field as `IntGauge`; counters go to `events` and `errors`, histograms to `duration`"
)]
pub trait GaugeLike {
    /// Adds one.
    fn inc(&self);
    /// Subtracts one.
    fn dec(&self);
}

impl<P: Atomic> GaugeLike for GenericGauge<P> {
    #[inline]
    fn inc(&self) {
        GenericGauge::inc(self)
    }

    #[inline]
    fn dec(&self) {
        GenericGauge::dec(self)
    }
}

/// A metric that `duration` can observe call durations on: a `Histogram` (in seconds).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a histogram: `#[counted]` observes `duration` on a `Histogram`",
    label = "this field must be a `Histogram`",
    note = "pass a histogram field of the set (in seconds, e.g. `handle_seconds: Histogram`); counters go to `events` and `errors`, gauges to `in_flight`"
)]
pub trait DurationLike {
    /// What is kept from entry to exit: the start time, or nothing when no duration is observed.
    type Started: Copy;
    /// Called on entry.
    fn start(&self) -> Self::Started;
    /// Called on return with what [`start`](Self::start) gave.
    fn observe_since(&self, started: Self::Started);
}

impl DurationLike for Histogram {
    type Started = Instant;

    #[inline]
    fn start(&self) -> Instant {
        Instant::now()
    }

    #[inline]
    fn observe_since(&self, started: Instant) {
        self.observe(started.elapsed().as_secs_f64());
    }
}

/// Stands for a role that an attribute leaves out (`errors`, `in_flight` or `duration`): every
/// operation on it does nothing and compiles away.
#[derive(Clone, Copy, Debug, Default)]
pub struct Absent;

/// The one [`Absent`] that generated code borrows.
pub static ABSENT: Absent = Absent;

impl CounterLike for Absent {
    #[inline(always)]
    fn inc(&self) {}
}

impl ErrorCounter for Absent {
    #[inline(always)]
    fn count_panic(&self) {}
}

impl GaugeLike for Absent {
    #[inline(always)]
    fn inc(&self) {}

    #[inline(always)]
    fn dec(&self) {}
}

impl DurationLike for Absent {
    type Started = ();

    #[inline(always)]
    fn start(&self) {}

    #[inline(always)]
    fn observe_since(&self, _: ()) {}
}

/// Checks, at the field's span, that `events`/`errors` is a counter.
#[inline(always)]
pub fn counter<C: CounterLike>(metric: &C) -> &C {
    metric
}

/// The `errors` role of a call: the field, and the same field as what counts a panic.
pub struct Errors<'m, E> {
    metric: &'m E,
    panic: &'m (dyn ErrorCounter + Sync),
}

/// Checks, at the field's span, that `errors` can count errors. The panic counter is kept as a
/// trait object (called only while a panic unwinds), so that a field failing this check is
/// reported here once, not again at every use of the call guard.
#[inline(always)]
pub fn errors<E: ErrorCounter + Sync>(metric: &E) -> Errors<'_, E> {
    Errors {
        metric,
        panic: metric,
    }
}

/// Counts what a call returned on `errors`; called with the span of the function's return type so
/// that a return type that cannot be counted is reported there.
#[inline(always)]
pub fn count_error<E: CountError<R>, R: ?Sized>(errors: &E, returned: &R) {
    errors.count_error(returned)
}

/// Checks, at the field's span, that `in_flight` is a gauge.
#[inline(always)]
pub fn gauge<G: GaugeLike>(metric: &G) -> &G {
    metric
}

/// Checks, at the field's span, that `duration` is a histogram.
#[inline(always)]
pub fn histogram<H: DurationLike>(metric: &H) -> &H {
    metric
}

/// Calls the body of a synchronous function, with its return type given so that `?` and
/// `return` inside infer exactly as in the original function.
#[inline(always)]
pub fn call<R, F: FnOnce() -> R>(body: F) -> R {
    body()
}

/// Gives an async body its output type up front, so that `?` and `return` inside infer exactly
/// as in the original `async fn`.
#[inline(always)]
pub fn future<R, F: Future<Output = R>>(body: F) -> F {
    body
}

/// One call in progress: entered when the function starts, settled when it returns, and if it
/// never returns (a panic, or an async future dropped before completion), settled by `Drop`.
pub struct Call<'m, E, G: GaugeLike, H: DurationLike> {
    errors: &'m E,
    panic: &'m (dyn ErrorCounter + Sync),
    in_flight: &'m G,
    duration: &'m H,
    started: H::Started,
    /// Set while the body runs: from entry to return for a synchronous call, during each poll
    /// for an async one. A call dropped with it set was left by a panic unwinding out of its
    /// body; one dropped without it was cancelled (an async future dropped between polls, even
    /// by another panic unwinding outside the body).
    in_body: bool,
}

impl<'m, E, G: GaugeLike, H: DurationLike> Call<'m, E, G, H> {
    /// Counts the call and starts tracking it: `events` +1, `in_flight` +1, the clock started.
    #[inline(always)]
    pub fn enter<C: CounterLike>(
        events: &C,
        errors: Errors<'m, E>,
        in_flight: &'m G,
        duration: &'m H,
    ) -> Self {
        events.inc();
        in_flight.inc();
        Call {
            errors: errors.metric,
            panic: errors.panic,
            in_flight,
            duration,
            started: duration.start(),
            in_body: true,
        }
    }

    /// The `errors` role, for counting what the call returned before [`exit`](Self::exit).
    #[inline(always)]
    pub fn errors(&self) -> &'m E {
        self.errors
    }

    /// Settles a call that returned (its errors already counted): `in_flight` -1, the duration
    /// observed.
    #[inline(always)]
    pub fn exit(self) {
        // Settled here, so `Drop` (which settles calls that never returned) must not run.
        let call = ManuallyDrop::new(self);
        call.in_flight.dec();
        call.duration.observe_since(call.started);
    }

    /// Runs an async body to completion, counts its output with `count`, and settles the call;
    /// if the returned future is dropped first, `Drop` settles it: `in_flight` -1, and `errors`
    /// +1 only when the body panicked.
    pub async fn run<F, O>(mut self, body: F, count: O) -> F::Output
    where
        F: Future,
        O: FnOnce(&E, &F::Output),
    {
        self.in_body = false;
        let mut body = pin!(body);
        let output = std::future::poll_fn(|cx| {
            self.in_body = true;
            let poll = body.as_mut().poll(cx);
            // Not reached when the body panics: `in_body` stays set for `Drop` to see.
            self.in_body = false;
            poll
        })
        .await;
        count(self.errors, &output);
        self.exit();
        output
    }
}

impl<E, G: GaugeLike, H: DurationLike> Drop for Call<'_, E, G, H> {
    /// Settles a call that did not return: its body panicked (this runs while unwinding), or its
    /// async future was dropped before completion (cancelled, which is not an error).
    fn drop(&mut self) {
        if self.in_body {
            self.panic.count_panic();
        }
        self.in_flight.dec();
    }
}
