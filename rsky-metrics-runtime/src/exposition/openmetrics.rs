//! What OpenMetrics 1.0 writes differently from the Prometheus text format: a counter family
//! named without `_total`, `# UNIT`, canonical `le` values, and no `_sum` where it forbids one.

use super::Format;

/// Whether a histogram series writes its `_sum` (and `_count`) lines. OpenMetrics 1.0 forbids a
/// `_sum` for a histogram with a negative bucket bound (`lowest`, the first one) and, the sum being
/// a counter, a negative or NaN sum; its `_count` appears if and only if the `_sum` does (the `+Inf`
/// bucket still gives the count). The Prometheus text format always has both.
pub(super) fn has_sum(format: Format, lowest: Option<f64>, sum: f64) -> bool {
    match format {
        Format::Text => true,
        Format::OpenMetrics => lowest.is_none_or(|bound| bound >= 0.0) && sum >= 0.0,
    }
}
/// The family name as a format writes it in `# HELP`/`# TYPE`: OpenMetrics names a counter
/// family without its `_total`.
pub(super) fn family_name(name: &str, counter: bool, format: Format) -> &str {
    match format {
        Format::OpenMetrics if counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// `# UNIT` of family `name`: OpenMetrics requires the family name to end in `_{unit}`;
/// otherwise the unit is left out.
pub(super) fn write_unit(out: &mut Vec<u8>, name: &str, unit: &str) {
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

/// A finite bucket bound in the canonical form OpenMetrics parsers check (`0.5`, `1.0`,
/// `1e-05`, `1.5e+06`), the one Go's and Python's clients write.
pub(super) fn write_canonical_le(out: &mut Vec<u8>, bound: f64) {
    use std::io::Write as _;
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
