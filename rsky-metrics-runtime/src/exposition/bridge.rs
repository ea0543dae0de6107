//! The bridge for collectors that are not derived (process metrics, `{service}_build_info`,
//! other crates' metrics, prometheus' own `MetricVec`s declared in a set): read from the records
//! prometheus gathers, written in either format.

use prometheus::core::Collector;
use prometheus::proto::{self, MetricFamily, MetricType};

use super::openmetrics::{family_name, has_sum};
use super::text::{escape_label_value, write_float, write_help, write_le};
use super::{EncodeMetric, FamilyWriter, Format};

/// Reading prometheus' records the same way whether its `protobuf` feature is on (the records are
/// protobuf-generated: `Counter::value()`, reached through a `MessageField`) or off (its plain
/// model: `Counter::get_value()`). Cargo features are additive, so any crate in a user's graph
/// may turn it on.
///
/// Each value is read through two local traits that name the two getters, each implemented by
/// calling the other name: an inherent method always wins over a trait method, so in either model
/// the call lands on the getter that exists, and the trait that stands in for the missing one
/// forwards to it (no recursion: one of the two names is always inherent).
mod compat {
    use prometheus::proto::{Counter, Gauge};

    // One of the two is unused in either model.
    #[allow(dead_code)]
    pub(super) trait ValueByName {
        fn value(&self) -> f64;
    }

    #[allow(dead_code)]
    pub(super) trait ValueByGetter {
        fn get_value(&self) -> f64;
    }

    macro_rules! both_names {
        ($($ty:ty),*) => {$(
            impl ValueByName for $ty {
                #[allow(unconditional_recursion)]
                fn value(&self) -> f64 {
                    self.get_value()
                }
            }

            impl ValueByGetter for $ty {
                #[allow(unconditional_recursion)]
                fn get_value(&self) -> f64 {
                    self.value()
                }
            }
        )*};
    }
    both_names!(Counter, Gauge);

    /// The value of a counter record (a `&MessageField<Counter>` with `protobuf` coerces here).
    pub(super) fn counter_value(counter: &Counter) -> f64 {
        counter.value()
    }

    /// The value of a gauge record.
    pub(super) fn gauge_value(gauge: &Gauge) -> f64 {
        gauge.value()
    }
}

// --- Encoding prometheus' own families (collectors that are not ours) ---------------------------

fn label_pairs_text(pairs: &[proto::LabelPair]) -> String {
    let mut out = String::new();
    for (index, pair) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(pair.name());
        out.push_str("=\"");
        escape_label_value(&mut out, pair.value());
        out.push('"');
    }
    out
}

fn with_extra_label(labels: &str, name: &str, value: &str) -> String {
    let mut out = String::with_capacity(labels.len() + name.len() + value.len() + 4);
    out.push_str(labels);
    if !labels.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    escape_label_value(&mut out, value);
    out.push('"');
    out
}

/// Writes one sample line of a family that prometheus gathered.
fn proto_sample(
    out: &mut Vec<u8>,
    name: &str,
    suffix: &str,
    labels: &str,
    value: f64,
    timestamp_ms: i64,
    format: Format,
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() {
        out.push(b'{');
        out.extend_from_slice(labels.as_bytes());
        out.push(b'}');
    }
    out.push(b' ');
    write_float(out, value);
    if timestamp_ms != 0 {
        out.push(b' ');
        match format {
            Format::Text => {
                out.extend_from_slice(itoa::Buffer::new().format(timestamp_ms).as_bytes())
            }
            // OpenMetrics timestamps are in seconds.
            Format::OpenMetrics => write_float(out, timestamp_ms as f64 / 1000.0),
        }
    }
    out.push(b'\n');
}

/// Encodes families that prometheus gathered (from collectors that are not ours) in `format`.
pub fn encode_families(families: &[MetricFamily], format: Format, out: &mut Vec<u8>) {
    for family in families {
        if family.get_metric().is_empty() {
            continue;
        }
        let kind = family.get_field_type();
        if kind == MetricType::UNTYPED {
            // prometheus' two record models (with and without its `protobuf` feature) share no
            // way to read an untyped value, and its own TextEncoder refuses such a family too.
            continue;
        }
        let full = family.name();
        let name = family_name(full, kind == MetricType::COUNTER, format);
        let type_name = match (kind, format) {
            (MetricType::COUNTER, _) => "counter",
            (MetricType::GAUGE, _) => "gauge",
            (MetricType::HISTOGRAM, _) => "histogram",
            (MetricType::SUMMARY, _) => "summary",
            (MetricType::UNTYPED, Format::Text) => "untyped",
            (MetricType::UNTYPED, Format::OpenMetrics) => "unknown",
        };
        write_help(out, name, family.help(), format);
        out.extend_from_slice(b"# TYPE ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(type_name.as_bytes());
        out.push(b'\n');
        for metric in family.get_metric() {
            let labels = label_pairs_text(metric.get_label());
            let ts = metric.timestamp_ms();
            match kind {
                MetricType::COUNTER => {
                    // OpenMetrics: the sample of counter family `x` is `x_total`.
                    let suffix = if format == Format::OpenMetrics {
                        "_total"
                    } else {
                        ""
                    };
                    let value = compat::counter_value(metric.get_counter());
                    proto_sample(out, name, suffix, &labels, value, ts, format);
                }
                MetricType::GAUGE => {
                    let value = compat::gauge_value(metric.get_gauge());
                    proto_sample(out, name, "", &labels, value, ts, format);
                }
                // Unreachable: untyped families are skipped above.
                MetricType::UNTYPED => {}
                MetricType::HISTOGRAM => {
                    let histogram = metric.get_histogram();
                    let count = histogram.get_sample_count();
                    for bucket in histogram.get_bucket() {
                        let bound = bucket.upper_bound();
                        if bound == f64::INFINITY {
                            continue;
                        }
                        let mut le = Vec::new();
                        write_le(&mut le, bound, format);
                        let le = String::from_utf8_lossy(&le);
                        let bucket_labels = with_extra_label(&labels, "le", &le);
                        let value = bucket.cumulative_count() as f64;
                        proto_sample(out, name, "_bucket", &bucket_labels, value, ts, format);
                    }
                    let inf = with_extra_label(&labels, "le", "+Inf");
                    proto_sample(out, name, "_bucket", &inf, count as f64, ts, format);
                    let sum = histogram.get_sample_sum();
                    let lowest = histogram.get_bucket().first().map(|b| b.upper_bound());
                    if has_sum(format, lowest, sum) {
                        proto_sample(out, name, "_sum", &labels, sum, ts, format);
                        proto_sample(out, name, "_count", &labels, count as f64, ts, format);
                    }
                }
                MetricType::SUMMARY => {
                    let summary = metric.get_summary();
                    for quantile in summary.get_quantile() {
                        let mut q = Vec::new();
                        write_le(&mut q, quantile.quantile(), format);
                        let q = String::from_utf8_lossy(&q);
                        let quantile_labels = with_extra_label(&labels, "quantile", &q);
                        let value = quantile.value();
                        proto_sample(out, name, "", &quantile_labels, value, ts, format);
                    }
                    let sum = summary.sample_sum();
                    proto_sample(out, name, "_sum", &labels, sum, ts, format);
                    let count = summary.sample_count() as f64;
                    proto_sample(out, name, "_count", &labels, count, ts, format);
                }
            }
        }
    }
}

/// Writes the samples of families that prometheus gathered for one of our metrics (a prometheus
/// `MetricVec` declared in a set): the header is the wrapper's.
fn encode_collected(collector: &dyn Collector, out: &mut FamilyWriter<'_>) {
    for family in collector.collect() {
        for metric in family.get_metric() {
            let labels = label_pairs_text(metric.get_label());
            match family.get_field_type() {
                MetricType::COUNTER => {
                    out.sample_f64(&labels, compat::counter_value(metric.get_counter()))
                }
                MetricType::GAUGE => {
                    out.sample_f64(&labels, compat::gauge_value(metric.get_gauge()))
                }
                MetricType::HISTOGRAM => out.histogram_proto(&labels, metric.get_histogram()),
                MetricType::UNTYPED | MetricType::SUMMARY => {}
            }
        }
    }
}

// --- prometheus' metric types ------------------------------------------------------------------

impl EncodeMetric for prometheus::IntCounter {
    fn encode(&self, out: &mut FamilyWriter<'_>) {
        out.sample_u64("", self.get());
    }
}

impl EncodeMetric for prometheus::Counter {
    fn encode(&self, out: &mut FamilyWriter<'_>) {
        out.sample_f64("", self.get());
    }
}

impl EncodeMetric for prometheus::IntGauge {
    fn encode(&self, out: &mut FamilyWriter<'_>) {
        out.sample_i64("", self.get());
    }
}

impl EncodeMetric for prometheus::Gauge {
    fn encode(&self, out: &mut FamilyWriter<'_>) {
        out.sample_f64("", self.get());
    }
}

impl EncodeMetric for prometheus::Histogram {
    fn encode(&self, out: &mut FamilyWriter<'_>) {
        // prometheus exposes a histogram's buckets only through its `Metric` record.
        let metric = prometheus::core::Metric::metric(self);
        out.histogram_proto("", metric.get_histogram());
    }
}

/// prometheus' own `MetricVec`s (`prometheus::IntCounterVec`, ...) cannot list their series
/// without building their `MetricFamily`: a set that declares one still works, through that.
macro_rules! collected_vec {
    ($($ty:ident),*) => {$(
        impl EncodeMetric for prometheus::$ty {
            fn encode(&self, out: &mut FamilyWriter<'_>) {
                encode_collected(self, out);
            }
        }
    )*};
}
collected_vec!(
    IntCounterVec,
    CounterVec,
    IntGaugeVec,
    GaugeVec,
    HistogramVec
);
