//! Negotiation: which text format a scrape gets (`Accept`) and whether it is gzipped
//! (`Accept-Encoding`).

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

/// Whether `Accept-Encoding` allows gzip: `gzip` (or `x-gzip`, or `*`) with a weight above 0.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    let mut gzip: Option<bool> = None;
    let mut star = false;
    for coding in value.split(',') {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("").to_ascii_lowercase();
        let weight = parts
            .filter_map(|param| param.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, q)| q.trim().parse::<f32>().unwrap_or(0.0));
        match name.as_str() {
            "gzip" | "x-gzip" => gzip = Some(weight > 0.0),
            "*" => star = weight > 0.0,
            _ => {}
        }
    }
    gzip.unwrap_or(star)
}
