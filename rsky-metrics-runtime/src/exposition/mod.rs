//! Encoding metric families straight from their values into the exposition text formats.
//!
//! A family that a derive declares implements [`EncodeMetric`]: given a [`FamilyWriter`] for its
//! name, kind and the negotiated [`Format`], it writes one sample line (or one histogram series)
//! per series. Label sets are rendered once, when a series is created, with [`render_labels`];
//! the writer only copies them, and numbers are written with `itoa`/`ryu`.
//!
//! [`encode`] renders a whole [`Registry`]: the registry owns the families of its
//! `#[derive(Metrics)]` sets, and the encoder walks them in registration order (a set's fields in
//! declaration order), writing each one's `# HELP`/`# TYPE` lines (rendered once, at
//! registration) and its samples straight from its values; then every other collector of the
//! registry (process metrics, `{service}_build_info`, other crates' metrics), from the records
//! its inner prometheus registry gathers. [`Registry::gather`] builds the derived families'
//! records on demand, so `TextEncoder` users see every family too.
//!
//! The module is split by concern: `negotiate` (which format, whether gzip), `text` (the writer
//! both text formats share), `openmetrics` (what OpenMetrics 1.0 writes differently), `bridge`
//! (collectors that are not derived: read from what prometheus gathers) and `stream` (the body
//! cut into chunks while it is encoded).

mod bridge;
mod negotiate;
mod openmetrics;
mod stream;
mod text;

use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;

use crate::{MetricDesc, Registry};

pub use bridge::encode_families;
pub use negotiate::{accepts_gzip, Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
pub(crate) use stream::{encode_chunked, Flush};
pub(crate) use text::{labels_of_line, render_line};
pub use text::{render_labels, write_header, EncodeMetric, FamilyWriter};

use text::rendered_le;

/// The `# HELP`/`# TYPE` (`# UNIT`) lines and `le` values of one family, rendered once per format.
struct Rendered {
    text: Box<[u8]>,
    openmetrics: Box<[u8]>,
    le_text: Box<[Box<str>]>,
    le_openmetrics: Box<[Box<str>]>,
}

/// A family of a `#[derive(Metrics)]` set as its [`Registry`] holds it.
pub(crate) trait Derived: Send + Sync {
    /// Writes the family (its header, rendered at registration, and its series) in `format`;
    /// nothing when it has no series.
    fn write(&self, out: &mut Vec<u8>, format: Format, flush: Option<&mut Flush>);
    /// The family as prometheus records it, for [`Registry::gather`].
    fn collect(&self) -> Vec<MetricFamily>;
}

/// A derived family with its `# HELP`/`# TYPE` lines and `le` values rendered once.
#[derive(Clone)]
pub(crate) struct Fast<M> {
    metric: M,
    desc: &'static MetricDesc,
    rendered: Arc<Rendered>,
}

impl<M: Collector + EncodeMetric> Fast<M> {
    pub(crate) fn new(metric: M, desc: &'static MetricDesc) -> Self {
        let header = |format| {
            let mut out = Vec::new();
            write_header(&mut out, desc, format);
            out.into_boxed_slice()
        };
        let rendered = Rendered {
            text: header(Format::Text),
            openmetrics: header(Format::OpenMetrics),
            le_text: rendered_le(desc.buckets, Format::Text),
            le_openmetrics: rendered_le(desc.buckets, Format::OpenMetrics),
        };
        Self {
            metric,
            desc,
            rendered: Arc::new(rendered),
        }
    }

    fn write(&self, out: &mut Vec<u8>, format: Format, flush: Option<&mut Flush>) {
        let start = out.len();
        let (header, le) = match format {
            Format::Text => (&self.rendered.text, &self.rendered.le_text),
            Format::OpenMetrics => (&self.rendered.openmetrics, &self.rendered.le_openmetrics),
        };
        out.extend_from_slice(header);
        let samples = out.len();
        let mut writer = FamilyWriter::new(out, self.desc, format);
        writer.le = Some(le);
        writer.flush = flush;
        self.metric.encode(&mut writer);
        // A flush happens only after a series.
        let flushed = writer.flushed > 0;
        if !flushed && out.len() == samples {
            // As prometheus' gather(): a family without series is left out.
            out.truncate(start);
        }
    }
}

impl<M: Collector + EncodeMetric> Derived for Fast<M> {
    fn write(&self, out: &mut Vec<u8>, format: Format, flush: Option<&mut Flush>) {
        Fast::write(self, out, format, flush);
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.metric.collect()
    }
}

/// Encodes everything `registry` holds in `format`, as `/metrics` serves it: the families of
/// `#[derive(Metrics)]` sets straight from their values, every other collector through
/// `gather()`. An OpenMetrics body ends with `# EOF`.
pub fn encode(registry: &Registry, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(registry, format, &mut out);
    out
}

/// [`encode`] into a buffer (cleared first), so a server can reuse its allocation.
pub fn encode_into(registry: &Registry, format: Format, out: &mut Vec<u8>) {
    out.clear();
    encode_with(registry, format, out, None);
}

fn encode_with(registry: &Registry, format: Format, out: &mut Vec<u8>, mut flush: Option<Flush>) {
    // Derived families first, in registration (field) order, then every other collector; the
    // inner registry's gather() holds only claims for derived families, which collect nothing.
    for family in registry.families() {
        family.write(out, format, flush.as_mut());
    }
    let others = registry.prometheus().gather();
    encode_families(&others, format, out);
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

#[cfg(test)]
mod tests {
    use super::text::write_le;
    use super::*;
    use crate::MetricKind;

    static DESC: MetricDesc = MetricDesc {
        field: "requests",
        name: "demo_requests_total",
        help: "Requests handled",
        kind: MetricKind::Counter,
        value: crate::ValueType::Int,
        labels: &[],
        label_values: &[],
        buckets: &[],
        unit: None,
    };

    #[test]
    fn derived_families_are_written_from_their_values_and_gather_builds_them_on_demand() {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new(DESC.name, DESC.help).unwrap();
        counter.inc_by(5);
        registry.add_families(vec![Arc::new(Fast::new(counter, &DESC))]);
        assert_eq!(
            String::from_utf8(encode(&registry, Format::Text)).unwrap(),
            "# HELP demo_requests_total Requests handled\n# TYPE demo_requests_total counter\ndemo_requests_total 5\n"
        );
        // The inner registry holds none of it; gather() builds the record.
        assert!(registry.prometheus().gather().is_empty());
        assert_eq!(registry.gather().len(), 1);
    }

    #[test]
    fn openmetrics_has_no_sum_where_it_forbids_one() {
        let written = |bounds: &[f64], sum: f64, format: Format| {
            let mut out = Vec::new();
            static HIST: MetricDesc = MetricDesc {
                name: "demo_seconds",
                kind: MetricKind::Histogram,
                ..DESC
            };
            let mut writer = FamilyWriter::new(&mut out, &HIST, format);
            writer.histogram("", bounds, &vec![1; bounds.len()], sum, 1);
            String::from_utf8(out).unwrap()
        };
        let om = Format::OpenMetrics;
        assert!(written(&[0.5, 1.0], 0.25, om).contains("demo_seconds_sum 0.25\n"));
        assert!(!written(&[-1.0, 1.0], 0.25, om).contains("_sum"));
        assert!(!written(&[-1.0, 1.0], 0.25, om).contains("_count"));
        assert!(!written(&[0.5, 1.0], -0.25, om).contains("_sum"));
        assert!(written(&[-1.0, 1.0], -0.25, Format::Text).contains("demo_seconds_sum -0.25\n"));
    }

    #[test]
    fn a_chunked_encode_is_the_whole_encode_cut_at_line_ends() {
        static REQUESTS: MetricDesc = MetricDesc {
            labels: &["peer"],
            ..DESC
        };
        static EMPTY: MetricDesc = MetricDesc {
            field: "idle",
            name: "demo_idle_total",
            labels: &["peer"],
            ..DESC
        };
        let registry = Registry::new();
        let requests = crate::IntCounterVec::from_desc(&REQUESTS).unwrap();
        for i in 0..500u64 {
            requests.with_label_values(&[format!("peer {i}")]).inc_by(i);
        }
        // A family without series between chunks is still left out.
        let idle = crate::IntCounterVec::from_desc(&EMPTY).unwrap();
        registry.add_families(vec![
            Arc::new(Fast::new(requests, &REQUESTS)),
            Arc::new(Fast::new(idle, &EMPTY)),
        ]);
        for format in [Format::Text, Format::OpenMetrics] {
            let chunks = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let emitted = std::rc::Rc::clone(&chunks);
            let last = encode_chunked(&registry, format, 1000, move |chunk| {
                emitted.borrow_mut().push(chunk);
            });
            let chunks = chunks.take();
            assert!(chunks.len() > 10, "{} chunks", chunks.len());
            for chunk in &chunks {
                assert!(chunk.len() >= 1000 && chunk.ends_with(b"\n"));
            }
            let joined: Vec<u8> = chunks.into_iter().flatten().chain(last).collect();
            assert_eq!(
                String::from_utf8(joined).unwrap(),
                String::from_utf8(encode(&registry, format)).unwrap()
            );
        }
    }

    #[test]
    fn openmetrics_le_values_are_canonical() {
        let le = |bound: f64| {
            let mut out = Vec::new();
            write_le(&mut out, bound, Format::OpenMetrics);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(le(1.0), "1.0");
        assert_eq!(le(0.25), "0.25");
        assert_eq!(le(0.00001), "1e-05");
        assert_eq!(le(1_500_000.0), "1.5e+06");
        assert_eq!(le(-2.0), "-2.0");
        assert_eq!(le(f64::INFINITY), "+Inf");
    }
}
