//! `#[counted]` on every path a call can take: return, `?`, early `return`, panic, an async
//! future dropped before completion, and many calls at once.
//!
//! Each test counts on a set of its own (registered in a private registry and passed with
//! `metrics = ...`), so tests running in parallel do not see each other's calls.

use std::future::Future;
use std::num::ParseIntError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rsky_metrics_runtime::{
    counted, CountOutcome, Histogram, IntCounter, IntGauge, Metrics, Registry,
};

/// Metrics of the functions under test.
#[derive(Metrics)]
#[metrics(service = "counted_test")]
pub struct CallMetrics {
    /// Calls made
    pub calls: IntCounter,
    /// Calls that failed
    pub failures: IntCounter,
    /// Calls in progress
    pub active: IntGauge,
    /// Time a call took
    pub call_seconds: Histogram,
}

fn fresh() -> &'static CallMetrics {
    let registry = Registry::new();
    let set = CallMetrics::register(&registry).expect("a new registry has no clashes");
    Box::leak(Box::new(set))
}

/// What a test reads back: calls, failures, in flight, observed durations.
fn seen(m: &CallMetrics) -> (u64, u64, i64, u64) {
    (
        m.calls.get(),
        m.failures.get(),
        m.active.get(),
        m.call_seconds.get_sample_count(),
    )
}

#[counted(metrics = m, events = calls, errors = failures, in_flight = active, duration = call_seconds)]
fn parse(m: &CallMetrics, input: &str) -> Result<u32, ParseIntError> {
    assert_eq!(m.active.get(), 1, "in flight while the body runs");
    let value: u32 = input.trim().parse()?;
    if value == 0 {
        return Ok(0);
    }
    Ok(value * 2)
}

#[derive(Debug, PartialEq)]
struct TooBig(u32);

#[counted(metrics = m, events = calls, errors = failures, in_flight = active, duration = call_seconds)]
fn check(m: &CallMetrics, value: u32) -> Result<u32, TooBig> {
    if value > 10 {
        return Err(TooBig(value));
    }
    Ok(value)
}

#[counted(metrics = m, events = calls, errors = failures, in_flight = active, duration = call_seconds)]
fn explode(m: &CallMetrics, message: &str) -> Result<(), TooBig> {
    if !message.is_empty() {
        panic!("{message}");
    }
    Ok(())
}

#[test]
fn ok_counts_one_event_and_no_error() {
    let m = fresh();
    assert_eq!(parse(m, "21"), Ok(42));
    assert_eq!(seen(m), (1, 0, 0, 1));
}

#[test]
fn err_through_question_mark_counts_an_error() {
    let m = fresh();
    assert!(parse(m, "not a number").is_err());
    assert_eq!(seen(m), (1, 1, 0, 1));
}

#[test]
fn early_return_ok_is_not_an_error() {
    let m = fresh();
    assert_eq!(parse(m, "0"), Ok(0));
    assert_eq!(seen(m), (1, 0, 0, 1));
}

#[test]
fn early_return_err_counts_an_error() {
    let m = fresh();
    assert_eq!(check(m, 11), Err(TooBig(11)));
    assert_eq!(check(m, 3), Ok(3));
    assert_eq!(seen(m), (2, 1, 0, 2));
}

#[test]
fn panic_counts_an_error_restores_in_flight_and_is_reraised() {
    let m = fresh();
    let caught = catch_unwind(|| explode(m, "boom"));
    let payload = caught.expect_err("the panic reaches the caller");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("boom")
    );
    // A panicked call did not return: no duration is observed for it.
    assert_eq!(seen(m), (1, 1, 0, 0));
}

#[test]
fn duration_is_observed_once_per_completed_call() {
    let m = fresh();
    for input in ["1", "x", "0", "7"] {
        let _ = parse(m, input);
    }
    assert_eq!(m.call_seconds.get_sample_count(), 4);
    assert!(m.call_seconds.get_sample_sum() >= 0.0);
}

#[test]
fn events_only_counts_calls_even_for_errors() {
    #[counted(metrics = m, events = calls)]
    fn only_events(m: &CallMetrics, fail: bool) -> Result<(), ()> {
        if fail {
            Err(())
        } else {
            Ok(())
        }
    }
    let m = fresh();
    let _ = only_events(m, true);
    let _ = only_events(m, false);
    assert_eq!(seen(m), (2, 0, 0, 0));
}

#[test]
fn a_panic_without_errors_still_restores_in_flight() {
    #[counted(metrics = m, events = calls, in_flight = active)]
    fn unwinds(m: &CallMetrics) {
        panic!("no errors counter here");
    }
    let m = fresh();
    assert!(catch_unwind(|| unwinds(m)).is_err());
    assert_eq!(seen(m), (1, 0, 0, 0));
}

#[test]
fn the_metrics_expression_is_evaluated_once_per_call() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static LOOKUPS: AtomicUsize = AtomicUsize::new(0);
    fn lookup(m: &'static CallMetrics) -> &'static CallMetrics {
        LOOKUPS.fetch_add(1, Ordering::SeqCst);
        m
    }
    #[counted(metrics = lookup(m), events = calls, errors = failures, in_flight = active, duration = call_seconds)]
    fn looked_up(m: &'static CallMetrics) -> Result<(), ()> {
        Err(())
    }
    let m = fresh();
    let _ = looked_up(m);
    let _ = looked_up(m);
    assert_eq!(LOOKUPS.load(Ordering::SeqCst), 2);
    assert_eq!(seen(m), (2, 2, 0, 2));
}

/// A return type of this crate, counted as failed by its own rule.
#[derive(Debug, PartialEq)]
enum Delivery {
    Sent,
    Bounced,
}

impl CountOutcome for Delivery {
    fn is_error(&self) -> bool {
        *self == Delivery::Bounced
    }
}

#[test]
fn a_count_outcome_type_decides_what_is_an_error() {
    #[counted(metrics = m, events = calls, errors = failures)]
    fn deliver(m: &CallMetrics, ok: bool) -> Delivery {
        if ok {
            Delivery::Sent
        } else {
            Delivery::Bounced
        }
    }
    let m = fresh();
    assert_eq!(deliver(m, true), Delivery::Sent);
    assert_eq!(deliver(m, false), Delivery::Bounced);
    assert_eq!(seen(m), (2, 1, 0, 0));
}

struct Ingester {
    metrics: &'static CallMetrics,
    frames: Vec<u32>,
}

impl Ingester {
    #[counted(metrics = self.metrics, events = calls, errors = failures, in_flight = active)]
    fn peek(&self) -> Result<u32, &'static str> {
        self.frames.last().copied().ok_or("empty")
    }

    #[counted(metrics = self.metrics, events = calls, errors = failures, in_flight = active)]
    fn push(&mut self, frame: &str) -> Result<usize, ParseIntError> {
        self.frames.push(frame.parse()?);
        Ok(self.frames.len())
    }

    #[counted(metrics = self.metrics, events = calls, errors = failures, in_flight = active)]
    fn finish(self) -> Result<Vec<u32>, &'static str> {
        if self.frames.is_empty() {
            return Err("nothing ingested");
        }
        Ok(self.frames)
    }
}

#[test]
fn methods_taking_self_in_every_way_are_counted() {
    let m = fresh();
    let mut ingester = Ingester {
        metrics: m,
        frames: Vec::new(),
    };
    assert_eq!(ingester.peek(), Err("empty"));
    assert_eq!(ingester.push("5"), Ok(1));
    assert!(ingester.push("five").is_err());
    assert_eq!(ingester.peek(), Ok(5));
    assert_eq!(ingester.finish(), Ok(vec![5]));
    assert_eq!(seen(m), (5, 2, 0, 0));
}

#[test]
fn generic_functions_with_impl_trait_are_counted() {
    #[counted(metrics = m, events = calls, errors = failures, in_flight = active)]
    fn total<'a, T>(m: &CallMetrics, items: impl IntoIterator<Item = &'a T>) -> Result<u64, String>
    where
        T: Into<u64> + Copy + 'a,
    {
        let sum: u64 = items.into_iter().map(|&x| x.into()).sum();
        if sum == 0 {
            Err("nothing to add".to_owned())
        } else {
            Ok(sum)
        }
    }
    let m = fresh();
    assert_eq!(total(m, &[1u32, 2, 3]), Ok(6));
    assert!(total::<u8>(m, &[]).is_err());
    assert_eq!(seen(m), (2, 1, 0, 0));
}

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[counted(metrics = m, events = calls, errors = failures, in_flight = active, duration = call_seconds)]
async fn receive(
    m: &CallMetrics,
    rx: tokio::sync::oneshot::Receiver<&'static str>,
) -> Result<u32, ParseIntError> {
    let frame = rx.await.unwrap_or("closed");
    if frame == "panic" {
        panic!("bad frame");
    }
    let value: u32 = frame.parse()?;
    Ok(value)
}

#[test]
fn async_ok_and_err_are_counted_when_the_future_completes() {
    let m = fresh();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime starts");
    runtime.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send("12");
        assert_eq!(receive(m, rx).await, Ok(12));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send("twelve");
        assert!(receive(m, rx).await.is_err());
    });
    assert_eq!(seen(m), (2, 1, 0, 2));
}

#[test]
fn async_call_starts_at_its_first_poll_and_stays_in_flight_while_suspended() {
    let m = fresh();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut call = pin!(receive(m, rx));
    assert_eq!(
        seen(m),
        (0, 0, 0, 0),
        "nothing happens before the first poll"
    );
    assert!(poll_once(call.as_mut()).is_pending());
    assert_eq!(seen(m), (1, 0, 1, 0));
    let _ = tx.send("3");
    assert_eq!(poll_once(call.as_mut()), Poll::Ready(Ok(3)));
    assert_eq!(seen(m), (1, 0, 0, 1));
}

#[test]
fn async_future_dropped_mid_await_restores_in_flight_without_an_error() {
    let m = fresh();
    let (_tx, rx) = tokio::sync::oneshot::channel();
    {
        let mut call = Box::pin(receive(m, rx));
        assert!(poll_once(call.as_mut()).is_pending());
        assert_eq!(m.active.get(), 1);
    }
    assert_eq!(seen(m), (1, 0, 0, 0));
}

#[test]
fn async_panic_counts_an_error_restores_in_flight_and_is_reraised() {
    let m = fresh();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut call = Box::pin(receive(m, rx));
    assert!(poll_once(call.as_mut()).is_pending());
    let _ = tx.send("panic");
    let caught = catch_unwind(AssertUnwindSafe(|| poll_once(call.as_mut())));
    let payload = caught.expect_err("the panic reaches the poller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"bad frame"));
    drop(call);
    assert_eq!(seen(m), (1, 1, 0, 0));
}

#[test]
fn async_panic_in_a_spawned_task_counts_an_error() {
    let m = fresh();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime starts");
    let joined = runtime.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send("panic");
        tokio::spawn(receive(m, rx)).await
    });
    assert!(joined.expect_err("the task panicked").is_panic());
    assert_eq!(seen(m), (1, 1, 0, 0));
}

#[test]
fn a_suspended_call_dropped_by_another_panic_is_cancelled_not_failed() {
    let m = fresh();
    let (_tx, rx) = tokio::sync::oneshot::channel();
    let mut call = Box::pin(receive(m, rx));
    assert!(poll_once(call.as_mut()).is_pending());
    let caught = catch_unwind(AssertUnwindSafe(move || {
        let _held = call;
        panic!("a sibling failed");
    }));
    assert!(caught.is_err());
    assert_eq!(seen(m), (1, 0, 0, 0));
}

/// `parse` without its in-flight check: threads sharing one set have several calls in flight.
#[counted(metrics = m, events = calls, errors = failures, in_flight = active, duration = call_seconds)]
fn parse_shared(m: &CallMetrics, input: &str) -> Result<u32, ParseIntError> {
    input.trim().parse()
}

#[test]
fn concurrent_calls_from_threads_add_up() {
    let m = fresh();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..1000u32 {
                    let input = if (t + i) % 10 == 0 {
                        "x".to_owned()
                    } else {
                        i.to_string()
                    };
                    let _ = parse_shared(m, &input);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no thread panics");
    }
    // (t + i) % 10 == 0 for exactly 100 of each thread's 1000 calls.
    assert_eq!(seen(m), (4000, 400, 0, 4000));
}

#[test]
fn concurrent_calls_from_tasks_add_up() {
    let m = fresh();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a multi-thread runtime starts");
    let in_flight_peak = runtime.block_on(async {
        let gate = Arc::new(tokio::sync::Barrier::new(51));
        let mut tasks = Vec::new();
        for i in 0..50u32 {
            let gate = Arc::clone(&gate);
            tasks.push(tokio::spawn(async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let call = tokio::spawn(receive(m, rx));
                gate.wait().await;
                let _ = tx.send(if i % 5 == 0 { "x" } else { "1" });
                call.await
            }));
        }
        // Every call has been spawned; let them all reach their await before releasing them.
        while m.calls.get() < 50 {
            tokio::task::yield_now().await;
        }
        let peak = m.active.get();
        gate.wait().await;
        for task in tasks {
            let _ = task.await;
        }
        peak
    });
    assert_eq!(in_flight_peak, 50);
    assert_eq!(seen(m), (50, 10, 0, 50));
}

/// A set reached through its type: `global()` resolves it.
#[derive(Metrics)]
#[metrics(service = "counted_global_test")]
pub struct GlobalMetrics {
    /// Calls made
    pub handled: IntCounter,
    /// Calls that failed
    pub handle_errors: IntCounter,
}

#[counted(GlobalMetrics, events = handled, errors = handle_errors)]
fn handle(fail: bool) -> std::io::Result<()> {
    if fail {
        return Err(std::io::Error::other("refused"));
    }
    Ok(())
}

#[test]
fn the_type_form_counts_on_the_global_set() {
    let before = (
        GlobalMetrics::global().handled.get(),
        GlobalMetrics::global().handle_errors.get(),
    );
    assert!(handle(true).is_err());
    assert!(handle(false).is_ok());
    let after = (
        GlobalMetrics::global().handled.get(),
        GlobalMetrics::global().handle_errors.get(),
    );
    assert_eq!((after.0 - before.0, after.1 - before.1), (2, 1));
}
