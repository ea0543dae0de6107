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

use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::proto::{self, MetricFamily, MetricType};

use crate::{MetricDesc, MetricKind, Registry};

/// The text format a scrape asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

/// The content type of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics 1.0 text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Format {
    /// The `Content-Type` of a body in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// The format to answer a request whose `Accept` header is `accept` with: OpenMetrics 1.0
    /// when the highest-weighted acceptable media type is `application/openmetrics-text` (of
    /// version 1.0.0, or without a version), else the Prometheus text format (also for a missing
    /// or unparsable header, and for `*/*`). Types with `q=0` are not acceptable.
    ///
    /// Prometheus sends `application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best: Option<(f32, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            let mut version: Option<String> = None;
            for param in parts {
                let Some((key, value)) = param.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => q = value.parse().unwrap_or(0.0),
                    "version" => version = Some(value.to_owned()),
                    _ => {}
                }
            }
            if q <= 0.0 || q.is_nan() {
                continue;
            }
            let format = match media.as_str() {
                "application/openmetrics-text" => match version.as_deref() {
                    None | Some("1.0.0") => Format::OpenMetrics,
                    // 0.0.1 is the draft Prometheus also accepts; we only write 1.0.0.
                    Some(_) => continue,
                },
                "text/plain" => match version.as_deref() {
                    None | Some("0.0.4") => Format::Text,
                    Some(_) => continue,
                },
                "*/*" | "text/*" => Format::Text,
                _ => continue,
            };
            // The first range of the highest weight wins.
            if best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, format)| format)
    }
}

/// A metric that writes its own series into an exposition.
pub trait EncodeMetric {
    /// Writes every series of the family (not its `# HELP`/`# TYPE` lines).
    fn encode(&self, out: &mut FamilyWriter<'_>);
}

/// Writes the samples of one family, in one format.
pub struct FamilyWriter<'a> {
    out: &'a mut Vec<u8>,
    desc: &'a MetricDesc,
    format: Format,
    /// `le` values of `desc.buckets`, rendered once for this format.
    le: Option<&'a [Box<str>]>,
    /// Where full chunks go, in a chunked encode.
    flush: Option<&'a mut Flush>,
    /// Bytes handed to `flush` so far.
    flushed: usize,
}

impl<'a> FamilyWriter<'a> {
    /// A writer of `desc`'s samples into `out`.
    pub fn new(out: &'a mut Vec<u8>, desc: &'a MetricDesc, format: Format) -> Self {
        Self {
            out,
            desc,
            format,
            le: None,
            flush: None,
            flushed: 0,
        }
    }

    /// After each series: in a chunked encode, a full buffer leaves as one chunk (so a chunk
    /// always ends with a whole line).
    #[inline]
    fn series_done(&mut self) {
        if let Some(flush) = self.flush.as_deref_mut() {
            if self.out.len() >= flush.at {
                self.flushed += self.out.len();
                flush.emit(self.out);
            }
        }
    }

    /// The family being written.
    pub fn desc(&self) -> &MetricDesc {
        self.desc
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// One counter or gauge sample with an integer value. `labels` is a label set rendered by
    /// [`render_labels`], or `""` for none.
    pub fn sample_u64(&mut self, labels: &str, value: u64) {
        self.line_start(b"", labels);
        write_u64(self.out, value);
        self.out.push(b'\n');
        self.series_done();
    }

    /// As [`sample_u64`](Self::sample_u64), with the start of the line (`name{labels} `, or
    /// `name ` without labels) rendered once by the family: one copy per series.
    #[inline]
    pub(crate) fn line_u64(&mut self, line: &str, value: u64) {
        let mut digits = itoa::Buffer::new();
        self.line_value(line, digits.format(value).as_bytes());
    }

    /// As [`line_u64`](Self::line_u64), for a signed value.
    #[inline]
    pub(crate) fn line_i64(&mut self, line: &str, value: i64) {
        let mut digits = itoa::Buffer::new();
        self.line_value(line, digits.format(value).as_bytes());
    }

    /// As [`line_u64`](Self::line_u64), for a float value.
    #[inline]
    pub(crate) fn line_f64(&mut self, line: &str, value: f64) {
        self.out.extend_from_slice(line.as_bytes());
        write_float(self.out, value);
        self.out.push(b'\n');
        self.series_done();
    }

    #[inline]
    fn line_value(&mut self, line: &str, value: &[u8]) {
        self.out.reserve(line.len() + value.len() + 1);
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(value);
        self.out.push(b'\n');
        self.series_done();
    }

    /// One gauge sample with a signed integer value.
    pub fn sample_i64(&mut self, labels: &str, value: i64) {
        self.line_start(b"", labels);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.out.push(b'\n');
        self.series_done();
    }

    /// One counter or gauge sample with a float value (`NaN`, `+Inf`, `-Inf` included).
    pub fn sample_f64(&mut self, labels: &str, value: f64) {
        self.line_start(b"", labels);
        write_float(self.out, value);
        self.out.push(b'\n');
        self.series_done();
    }

    /// One histogram series: `cumulative[i]` observations were at most `bounds[i]`; the `+Inf`
    /// bucket is `count`.
    pub fn histogram(
        &mut self,
        labels: &str,
        bounds: &[f64],
        cumulative: &[u64],
        sum: f64,
        count: u64,
    ) {
        let rendered = self
            .le
            .filter(|le| le.len() == bounds.len() && bounds == self.desc.buckets);
        for (index, (bound, observed)) in bounds.iter().zip(cumulative).enumerate() {
            match rendered {
                Some(le) => self.bucket_line(labels, Le::Rendered(&le[index]), *observed),
                None => self.bucket_line(labels, Le::Bound(*bound), *observed),
            }
        }
        self.bucket_line(labels, Le::Rendered("+Inf"), count);
        if has_sum(self.format, bounds.first().copied(), sum) {
            self.line_start(b"_sum", labels);
            write_float(self.out, sum);
            self.out.push(b'\n');
            self.line_start(b"_count", labels);
            write_u64(self.out, count);
            self.out.push(b'\n');
        }
        self.series_done();
    }

    /// A histogram series read from prometheus' own record of it.
    pub(crate) fn histogram_proto(&mut self, labels: &str, histogram: &proto::Histogram) {
        let count = histogram.get_sample_count();
        for bucket in histogram.get_bucket() {
            let bound = bucket.upper_bound();
            if bound == f64::INFINITY {
                continue;
            }
            self.bucket_line(labels, Le::Bound(bound), bucket.cumulative_count());
        }
        self.bucket_line(labels, Le::Rendered("+Inf"), count);
        let sum = histogram.get_sample_sum();
        let lowest = histogram.get_bucket().first().map(|b| b.upper_bound());
        if has_sum(self.format, lowest, sum) {
            self.line_start(b"_sum", labels);
            write_float(self.out, sum);
            self.out.push(b'\n');
            self.line_start(b"_count", labels);
            write_u64(self.out, count);
            self.out.push(b'\n');
        }
        self.series_done();
    }

    fn bucket_line(&mut self, labels: &str, le: Le<'_>, observed: u64) {
        self.out.extend_from_slice(self.desc.name.as_bytes());
        self.out.extend_from_slice(b"_bucket{");
        if !labels.is_empty() {
            self.out.extend_from_slice(labels.as_bytes());
            self.out.push(b',');
        }
        self.out.extend_from_slice(b"le=\"");
        match le {
            Le::Rendered(text) => self.out.extend_from_slice(text.as_bytes()),
            Le::Bound(bound) => write_le(self.out, bound, self.format),
        }
        self.out.extend_from_slice(b"\"} ");
        write_u64(self.out, observed);
        self.out.push(b'\n');
    }

    #[inline]
    fn line_start(&mut self, suffix: &[u8], labels: &str) {
        self.out.extend_from_slice(self.desc.name.as_bytes());
        self.out.extend_from_slice(suffix);
        if !labels.is_empty() {
            self.out.push(b'{');
            self.out.extend_from_slice(labels.as_bytes());
            self.out.push(b'}');
        }
        self.out.push(b' ');
    }
}

/// Whether a histogram series writes its `_sum` (and `_count`) lines. OpenMetrics 1.0 forbids a
/// `_sum` for a histogram with a negative bucket bound (`lowest`, the first one) and, the sum being
/// a counter, a negative or NaN sum; its `_count` appears if and only if the `_sum` does (the `+Inf`
/// bucket still gives the count). The Prometheus text format always has both.
fn has_sum(format: Format, lowest: Option<f64>, sum: f64) -> bool {
    match format {
        Format::Text => true,
        Format::OpenMetrics => lowest.is_none_or(|bound| bound >= 0.0) && sum >= 0.0,
    }
}

enum Le<'a> {
    Rendered(&'a str),
    Bound(f64),
}

/// The start of a sample line of family `name` with the label set `labels` (rendered by
/// [`render_labels`]): `name{labels} `, or `name ` without labels.
pub(crate) fn render_line(name: &str, labels: &str) -> String {
    let mut line = String::with_capacity(name.len() + labels.len() + 3);
    line.push_str(name);
    if !labels.is_empty() {
        line.push('{');
        line.push_str(labels);
        line.push('}');
    }
    line.push(' ');
    line
}

/// The label set of a line rendered by [`render_line`] for a family named `name_len` bytes.
pub(crate) fn labels_of_line(line: &str, name_len: usize) -> &str {
    line.get(name_len + 1..line.len().saturating_sub(2))
        .unwrap_or("")
}

/// Renders a label set as it stands between `{` and `}`: `a="x",b="y"`, with `\`, `"` and
/// newlines in values escaped.
pub fn render_labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(&mut out, value);
        out.push('"');
    }
    out
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The family name as a format writes it in `# HELP`/`# TYPE`: OpenMetrics names a counter
/// family without its `_total`.
fn family_name(name: &str, counter: bool, format: Format) -> &str {
    match format {
        Format::OpenMetrics if counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

fn write_help(out: &mut Vec<u8>, name: &str, help: &str, format: Format) {
    if help.is_empty() {
        // As prometheus' TextEncoder: no help, no line.
        return;
    }
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    for c in help.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '"' if format == Format::OpenMetrics => out.extend_from_slice(b"\\\""),
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'\n');
}

/// Writes `# HELP`, `# TYPE` and, in OpenMetrics when the family name ends in `_{unit}`,
/// `# UNIT` of `desc`.
pub fn write_header(out: &mut Vec<u8>, desc: &MetricDesc, format: Format) {
    let name = family_name(desc.name, desc.kind == MetricKind::Counter, format);
    write_help(out, name, desc.help, format);
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(desc.kind.as_str().as_bytes());
    out.push(b'\n');
    if let (Format::OpenMetrics, Some(unit)) = (format, desc.unit) {
        // OpenMetrics requires the family name to end in the unit; otherwise the unit is left out.
        let suffixed = name
            .strip_suffix(unit)
            .is_some_and(|rest| rest.ends_with('_'));
        if !unit.is_empty() && suffixed {
            out.extend_from_slice(b"# UNIT ");
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(unit.as_bytes());
            out.push(b'\n');
        }
    }
}

#[inline]
fn write_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A sample value: integers as integers, others in the shortest form that reads back exactly.
fn write_float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if value == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if value == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else if value == 0.0 && value.is_sign_negative() {
        out.extend_from_slice(b"-0");
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        out.extend_from_slice(itoa::Buffer::new().format(value as i64).as_bytes());
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    }
}

/// A bucket bound as an `le` value. The Prometheus text format gets what prometheus'
/// `TextEncoder` writes (`0.5`, `1`); OpenMetrics gets the canonical form its parsers check
/// (`0.5`, `1.0`, `1e-05`, `1e+06`), the one Go's and Python's clients write.
fn write_le(out: &mut Vec<u8>, bound: f64, format: Format) {
    use std::io::Write as _;
    if !bound.is_finite() {
        write_float(out, bound);
        return;
    }
    match format {
        Format::Text => {
            let _ = write!(out, "{bound}");
        }
        Format::OpenMetrics => {
            let magnitude = bound.abs();
            if magnitude == 0.0 || (1e-4..1e6).contains(&magnitude) {
                if bound.fract() == 0.0 {
                    let _ = write!(out, "{bound}.0");
                } else {
                    let _ = write!(out, "{bound}");
                }
            } else {
                // `1.5e6` -> `1.5e+06`, `1e-5` -> `1e-05`.
                let text = format!("{bound:e}");
                let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
                let (sign, digits) = match exponent.strip_prefix('-') {
                    Some(digits) => ('-', digits),
                    None => ('+', exponent),
                };
                let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
            }
        }
    }
}

fn rendered_le(bounds: &[f64], format: Format) -> Box<[Box<str>]> {
    bounds
        .iter()
        .map(|bound| {
            let mut text = Vec::new();
            write_le(&mut text, *bound, format);
            String::from_utf8_lossy(&text).into()
        })
        .collect()
}

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
pub(crate) fn encode_collected(collector: &dyn Collector, out: &mut FamilyWriter<'_>) {
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

// --- Derived families: the registry owns them, the encoder walks them ---------------------------

/// Hands a buffer holding at least `at` bytes on as one chunk, and goes on in a fresh one.
pub(crate) struct Flush {
    at: usize,
    emit: Box<dyn FnMut(Vec<u8>)>,
}

impl Flush {
    fn emit(&mut self, out: &mut Vec<u8>) {
        let full = std::mem::replace(out, chunk_buffer(self.at));
        (self.emit)(full);
    }
}

/// A buffer for one chunk of `at` bytes: the series that crosses `at` still fits.
fn chunk_buffer(at: usize) -> Vec<u8> {
    Vec::with_capacity(at + at / 8)
}

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

/// [`encode`] in chunks of about `chunk` bytes, each ending with a whole line: `emit` gets every
/// full chunk as soon as it is written (so a server can send it while the rest is encoded);
/// the last, shorter one is returned.
pub(crate) fn encode_chunked(
    registry: &Registry,
    format: Format,
    chunk: usize,
    emit: impl FnMut(Vec<u8>) + 'static,
) -> Vec<u8> {
    let mut out = chunk_buffer(chunk);
    let flush = Flush {
        at: chunk,
        emit: Box::new(emit),
    };
    encode_with(registry, format, &mut out, Some(flush));
    out
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

#[cfg(test)]
mod tests {
    use super::*;

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
