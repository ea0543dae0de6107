use std::fmt::Debug;

use rsky_metrics_runtime::{counted, Histogram, IntCounter, IntGauge, Metrics};

/// Metrics of the handler.
#[derive(Metrics)]
#[metrics(service = "ui")]
pub struct UiMetrics {
    /// Calls made
    pub calls: IntCounter,
    /// Calls that failed
    pub errors: IntCounter,
    /// Calls in progress
    pub active: IntGauge,
    /// Time a call took
    pub call_seconds: Histogram,
}

#[counted(UiMetrics, events = calls, errors = errors)]
fn first<'a, T, const N: usize>(items: &'a [T; N]) -> Result<&'a T, String>
where
    T: Debug,
{
    items.first().ok_or_else(|| format!("no items in {items:?}"))
}

struct Cache<K> {
    keys: Vec<K>,
}

impl<K: PartialEq> Cache<K> {
    #[counted(UiMetrics, events = calls, errors = errors)]
    fn position<Q>(&self, key: &Q) -> Result<usize, ()>
    where
        K: PartialEq<Q>,
    {
        self.keys.iter().position(|k| k == key).ok_or(())
    }
}

fn main() {
    assert_eq!(first(&[1, 2]), Ok(&1));
    assert!(first::<u8, 0>(&[]).is_err());
    let cache = Cache { keys: vec!["a".to_owned()] };
    assert_eq!(cache.position(&"a"), Ok(0));
    assert_eq!(UiMetrics::global().errors.get(), 1);
}
