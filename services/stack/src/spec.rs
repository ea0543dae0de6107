//! The metric names fixed by the services' spec: every one must be on the dashboard.

use rsky_testkit::spec::BY_SERVICE;

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

/// Every metric the spec names, in the spec's order (the lists of [`rsky_testkit::spec`]; the
/// spec's counters are the names ending in `_total`, every other one is a gauge).
pub fn spec_metrics() -> Vec<SpecMetric> {
    BY_SERVICE
        .iter()
        .flat_map(|(service, names)| {
            names.iter().map(move |name| SpecMetric {
                service,
                kind: if name.ends_with("_total") {
                    "counter"
                } else {
                    "gauge"
                },
                name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_names_56_metrics_of_three_services_43_counters_and_13_gauges() {
        let metrics = spec_metrics();
        assert_eq!(metrics.len(), 56);
        for m in &metrics {
            assert!(m.name.starts_with(&format!("{}_", m.service)), "{m:?}");
        }
        let counters = metrics.iter().filter(|m| m.kind == "counter").count();
        assert_eq!((counters, metrics.len() - counters), (43, 13));
        assert!(metrics.contains(&SpecMetric {
            service: "indexer",
            kind: "gauge",
            name: "indexer_pending_messages",
        }));
    }
}
