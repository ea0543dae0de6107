//! Encoding metric families straight from their values into the exposition text formats.
//!
//! A family that a derive declares implements [`EncodeMetric`]: given a [`FamilyWriter`] for its
//! name, kind and the negotiated [`Format`], it writes one sample line (or one histogram series)
//! per series. Label sets are rendered once, when a series is created, with [`render_labels`];
//! the writer only copies them.

use std::io::Write as _;

use crate::{MetricDesc, MetricKind};

/// The text format a scrape asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
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
}

impl<'a> FamilyWriter<'a> {
    /// A writer of `desc`'s samples into `out`.
    pub fn new(out: &'a mut Vec<u8>, desc: &'a MetricDesc, format: Format) -> Self {
        Self { out, desc, format }
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
        self.line_start("", labels);
        let _ = writeln!(self.out, "{value}");
    }

    /// One gauge sample with a signed integer value.
    pub fn sample_i64(&mut self, labels: &str, value: i64) {
        self.line_start("", labels);
        let _ = writeln!(self.out, "{value}");
    }

    /// One counter or gauge sample with a float value (`NaN`, `+Inf`, `-Inf` included).
    pub fn sample_f64(&mut self, labels: &str, value: f64) {
        self.line_start("", labels);
        write_float(self.out, value);
        self.out.push(b'\n');
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
        for (bound, observed) in bounds.iter().zip(cumulative) {
            self.bucket_line(labels, *bound, *observed);
        }
        self.bucket_line(labels, f64::INFINITY, count);
        self.line_start("_sum", labels);
        write_float(self.out, sum);
        self.out.push(b'\n');
        self.line_start("_count", labels);
        let _ = writeln!(self.out, "{count}");
    }

    fn bucket_line(&mut self, labels: &str, bound: f64, observed: u64) {
        self.out.extend_from_slice(self.desc.name.as_bytes());
        self.out.extend_from_slice(b"_bucket{");
        if !labels.is_empty() {
            self.out.extend_from_slice(labels.as_bytes());
            self.out.push(b',');
        }
        self.out.extend_from_slice(b"le=\"");
        write_float(self.out, bound);
        let _ = writeln!(self.out, "\"}} {observed}");
    }

    fn line_start(&mut self, suffix: &str, labels: &str) {
        self.out.extend_from_slice(self.desc.name.as_bytes());
        self.out.extend_from_slice(suffix.as_bytes());
        if !labels.is_empty() {
            self.out.push(b'{');
            self.out.extend_from_slice(labels.as_bytes());
            self.out.push(b'}');
        }
        self.out.push(b' ');
    }
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
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

/// Writes `# HELP` and `# TYPE` of `desc`.
pub fn write_header(out: &mut Vec<u8>, desc: &MetricDesc, format: Format) {
    let name = match (format, desc.kind) {
        // OpenMetrics names a counter family without its `_total`.
        (Format::OpenMetrics, MetricKind::Counter) => {
            desc.name.strip_suffix("_total").unwrap_or(desc.name)
        }
        _ => desc.name,
    };
    let mut help = String::with_capacity(desc.help.len());
    for c in desc.help.chars() {
        match c {
            '\\' => help.push_str("\\\\"),
            '\n' => help.push_str("\\n"),
            '"' if format == Format::OpenMetrics => help.push_str("\\\""),
            c => help.push(c),
        }
    }
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {}", desc.kind.as_str());
}

fn write_float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if value == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if value == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
}
