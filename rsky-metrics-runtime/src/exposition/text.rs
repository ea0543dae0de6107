//! The writer both text formats share: sample lines, label sets, `# HELP`/`# TYPE` lines and
//! numbers (`itoa`/`ryu`). What OpenMetrics writes differently is in `openmetrics`.

use prometheus::proto;

use super::openmetrics::{family_name, has_sum, write_canonical_le, write_unit};
use super::stream::Flush;
use super::Format;
use crate::{MetricDesc, MetricKind};

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
    pub(super) le: Option<&'a [Box<str>]>,
    /// Where full chunks go, in a chunked encode.
    pub(super) flush: Option<&'a mut Flush>,
    /// Bytes handed to `flush` so far.
    pub(super) flushed: usize,
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

pub(super) fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub(super) fn write_help(out: &mut Vec<u8>, name: &str, help: &str, format: Format) {
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
        write_unit(out, name, unit);
    }
}

#[inline]
pub(super) fn write_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A sample value: integers as integers, others in the shortest form that reads back exactly.
pub(super) fn write_float(out: &mut Vec<u8>, value: f64) {
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
pub(super) fn write_le(out: &mut Vec<u8>, bound: f64, format: Format) {
    use std::io::Write as _;
    if !bound.is_finite() {
        write_float(out, bound);
        return;
    }
    match format {
        Format::Text => {
            let _ = write!(out, "{bound}");
        }
        Format::OpenMetrics => write_canonical_le(out, bound),
    }
}

pub(super) fn rendered_le(bounds: &[f64], format: Format) -> Box<[Box<str>]> {
    bounds
        .iter()
        .map(|bound| {
            let mut text = Vec::new();
            write_le(&mut text, *bound, format);
            String::from_utf8_lossy(&text).into()
        })
        .collect()
}
