//! The metric names fixed by the services' spec: every one must be on the dashboard.

/// The spec's list, one `service<TAB>kind<TAB>name` a line (copied from specs/services.md,
/// "The metrics each service exports", so that a plain clone has it).
const SPEC_METRICS: &str = include_str!("../spec-metrics.tsv");

/// One metric that the spec names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecMetric {
    /// `ingester`, `backfiller` or `indexer`.
    pub service: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    /// The exposed family name.
    pub name: &'static str,
}

/// Every metric the spec names, in the spec's order.
pub fn spec_metrics() -> Vec<SpecMetric> {
    SPEC_METRICS
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let mut fields = line.split('\t');
            Some(SpecMetric {
                service: fields.next()?,
                kind: fields.next()?,
                name: fields.next()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_names_56_metrics_of_three_services() {
        let metrics = spec_metrics();
        assert_eq!(metrics.len(), 56);
        for m in &metrics {
            assert!(m.name.starts_with(&format!("{}_", m.service)), "{m:?}");
            assert_eq!(m.kind == "counter", m.name.ends_with("_total"), "{m:?}");
        }
    }
}
