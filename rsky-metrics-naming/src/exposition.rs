//! Linting of Prometheus text exposition (what `/metrics` serves): every family's name, type,
//! help and labels, duplicate series and families, and clashes between families.

use std::collections::{HashMap, HashSet};

use crate::family::{check_help, check_labels, collisions, Family};
use crate::finding::{Finding, Kind, Rule, Target};
use crate::linter::CustomRule;
use crate::name::check_name;

struct Block {
    name: String,
    kind: Option<Kind>,
    help: Option<String>,
    line: usize,
    has_samples: bool,
    /// Label names of its samples (without the `le` of buckets and the `quantile` of summaries).
    labels: Vec<String>,
}

#[derive(Default)]
struct Lint {
    blocks: Vec<Block>,
    index: HashMap<String, usize>,
    current: Option<usize>,
    series: HashSet<(String, Vec<(String, String)>)>,
    findings: Vec<Finding>,
}

impl Lint {
    fn problem(&mut self, metric: &str, line: usize, message: String, fix: &str) {
        self.findings
            .push(Finding::new(Rule::Exposition, metric, Target::Line(line), message).fix(fix));
    }

    /// The block of family `name`, opened at `line` if new; reports a family split in two.
    fn block(&mut self, name: &str, line: usize) -> usize {
        match self.index.get(name).copied() {
            Some(index) => {
                if self.current != Some(index) {
                    self.problem(
                        name,
                        line,
                        format!(
                            "the family appears again after other families (first at line {})",
                            self.blocks[index].line
                        ),
                        "write each family's lines together, once",
                    );
                    self.current = Some(index);
                }
                index
            }
            None => {
                self.blocks.push(Block {
                    name: name.to_owned(),
                    kind: None,
                    help: None,
                    line,
                    has_samples: false,
                    labels: Vec::new(),
                });
                let index = self.blocks.len() - 1;
                self.index.insert(name.to_owned(), index);
                self.current = Some(index);
                index
            }
        }
    }

    /// The family a sample belongs to: its own name, or the family whose type writes it
    /// (`x_bucket` of histogram `x`).
    fn family_of(&self, sample: &str) -> Option<usize> {
        if let Some(index) = self.index.get(sample) {
            return Some(*index);
        }
        let suffixes: &[(&str, &[Kind])] = &[
            ("_bucket", &[Kind::Histogram]),
            ("_sum", &[Kind::Histogram, Kind::Summary]),
            ("_count", &[Kind::Histogram, Kind::Summary]),
            ("_created", &[Kind::Histogram, Kind::Summary, Kind::Counter]),
            ("_total", &[Kind::Counter]),
        ];
        suffixes.iter().find_map(|(suffix, kinds)| {
            let base = sample.strip_suffix(suffix)?;
            let index = *self.index.get(base)?;
            kinds.contains(&self.blocks[index].kind?).then_some(index)
        })
    }
}

fn parse_kind(word: &str) -> Option<Kind> {
    Some(match word {
        "counter" => Kind::Counter,
        "gauge" => Kind::Gauge,
        "histogram" => Kind::Histogram,
        "summary" => Kind::Summary,
        "untyped" | "unknown" => Kind::Untyped,
        "info" => Kind::Info,
        _ => return None,
    })
}

/// A sample line split into name, labels and value.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("a sample needs a value after its name")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("the sample has no metric name".to_owned());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let end;
        loop {
            while chars
                .next_if(|(_, c)| c.is_whitespace() || *c == ',')
                .is_some()
            {}
            let Some(&(start, c)) = chars.peek() else {
                return Err("the label set is not closed with `}`".to_owned());
            };
            if c == '}' {
                end = start + 1;
                break;
            }
            let mut key = String::new();
            while let Some((_, c)) =
                chars.next_if(|(_, c)| *c != '=' && *c != '}' && !c.is_whitespace())
            {
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('=') {
                return Err(format!("label `{key}` has no `=\"value\"`"));
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("the value of label `{key}` is not quoted"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "the value of label `{key}` is not closed with `\"`"
                        ))
                    }
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        _ => {
                            return Err(format!("the value of label `{key}` has an unknown escape"))
                        }
                    },
                    Some((_, c)) => value.push(c),
                }
            }
            labels.push((key, value));
        }
        rest = &after[end..];
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("the sample has no value")?;
    let numeric = matches!(value, "+Inf" | "-Inf" | "NaN") || value.parse::<f64>().is_ok();
    if !numeric {
        return Err(format!("value `{value}` is not a number"));
    }
    if let Some(timestamp) = fields.next() {
        if timestamp.parse::<i64>().is_err() {
            return Err(format!("timestamp `{timestamp}` is not an integer"));
        }
    }
    if fields.next().is_some() {
        return Err("unexpected text after the value and timestamp".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
    })
}

/// Lints Prometheus text exposition (format 0.0.4): each family's name (every naming rule), type,
/// help and label names; duplicate series; families split in two; `# TYPE` after samples;
/// malformed lines; and clashes between families. An empty result means clean.
///
/// A gauge whose name ends in `_info` is read as an info metric (the text format has no info
/// type), so `{service}_build_info` passes.
pub fn lint_exposition(text: &str) -> Vec<Finding> {
    lint_with(text, &[])
}

/// [`lint_exposition`], plus a team's own rules, run on each family.
pub(crate) fn lint_with(text: &str, custom: &[Box<dyn CustomRule>]) -> Vec<Finding> {
    let mut lint = Lint::default();
    for (number, raw) in text.lines().enumerate() {
        let line_no = number + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, char::is_whitespace);
            let keyword = parts.next().unwrap_or_default();
            if keyword != "HELP" && keyword != "TYPE" {
                continue;
            }
            let Some(name) = parts.next().filter(|n| !n.is_empty()) else {
                lint.problem(
                    "?",
                    line_no,
                    format!("`# {keyword}` names no metric"),
                    "write `# HELP name text` or `# TYPE name type`",
                );
                continue;
            };
            let rest = parts.next().unwrap_or_default().trim();
            let index = lint.block(name, line_no);
            if keyword == "HELP" {
                if lint.blocks[index].help.is_some() {
                    lint.problem(
                        name,
                        line_no,
                        "`# HELP` is given twice".to_owned(),
                        "give one `# HELP` per family",
                    );
                }
                lint.blocks[index].help = Some(rest.to_owned());
            } else {
                let block = &lint.blocks[index];
                let (seen_kind, seen_samples) = (block.kind.is_some(), block.has_samples);
                match parse_kind(rest) {
                    None => lint.problem(
                        name,
                        line_no,
                        format!("unknown type `{rest}`"),
                        "use counter, gauge, histogram, summary or untyped",
                    ),
                    Some(_) if seen_kind => lint.problem(
                        name,
                        line_no,
                        "`# TYPE` is given twice".to_owned(),
                        "give one `# TYPE` per family",
                    ),
                    Some(_) if seen_samples => lint.problem(
                        name,
                        line_no,
                        "`# TYPE` comes after the family's samples".to_owned(),
                        "write `# TYPE` before the samples",
                    ),
                    Some(kind) => lint.blocks[index].kind = Some(kind),
                }
            }
            continue;
        }
        let sample = match parse_sample(line) {
            Ok(sample) => sample,
            Err(problem) => {
                let name = line.split(['{', ' ']).next().unwrap_or("?").to_owned();
                lint.problem(
                    &name,
                    line_no,
                    format!("malformed sample: {problem}"),
                    "write `name{label=\"value\"} 1`",
                );
                continue;
            }
        };
        let index = match lint.family_of(&sample.name) {
            Some(index) => {
                if lint.current != Some(index) {
                    let family = lint.blocks[index].name.clone();
                    lint.block(&family, line_no);
                }
                index
            }
            None => lint.block(&sample.name, line_no),
        };
        lint.blocks[index].has_samples = true;
        let family = lint.blocks[index].name.clone();
        let kind = lint.blocks[index].kind.unwrap_or(Kind::Untyped);
        let names: Vec<&str> = sample.labels.iter().map(|(k, _)| k.as_str()).collect();
        let is_bucket = kind == Kind::Histogram && sample.name.ends_with("_bucket");
        let is_quantile = kind == Kind::Summary && sample.name == family;
        let own: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !(is_bucket && *n == "le" || is_quantile && *n == "quantile"))
            .collect();
        for label in &own {
            let labels = &mut lint.blocks[index].labels;
            if !labels.iter().any(|l| l == label) {
                labels.push((*label).to_owned());
            }
        }
        for mut finding in check_labels(&family, kind, &own) {
            finding.target = Target::Line(line_no);
            lint.findings.push(finding);
        }
        if is_bucket && !names.contains(&"le") {
            lint.problem(
                &family,
                line_no,
                format!("bucket sample `{}` has no `le` label", sample.name),
                "give every bucket its upper bound as `le`",
            );
        }
        let mut key_labels = sample.labels.clone();
        key_labels.sort();
        if !lint.series.insert((sample.name.clone(), key_labels)) {
            lint.problem(
                &family,
                line_no,
                format!(
                    "the series `{}` with these labels appears twice",
                    sample.name
                ),
                "write each series once",
            );
        }
    }
    let Lint {
        blocks,
        mut findings,
        ..
    } = lint;
    let mut families = Vec::with_capacity(blocks.len());
    for block in &blocks {
        let kind = match block.kind {
            Some(Kind::Gauge) if block.name.ends_with("_info") => Kind::Info,
            Some(kind) => kind,
            None => Kind::Untyped,
        };
        families.push((block.name.as_str(), kind));
        let at = Target::Line(block.line);
        for mut finding in check_name(&block.name, kind)
            .into_iter()
            .chain(check_help(&block.name, block.help.as_deref()))
        {
            finding.target = at;
            findings.push(finding);
        }
        if !custom.is_empty() {
            let labels: Vec<&str> = block.labels.iter().map(String::as_str).collect();
            let family = Family {
                service: None,
                name: &block.name,
                kind,
                labels: &labels,
                buckets: None,
                unit: None,
                help: block.help.as_deref(),
            };
            for rule in custom {
                for mut finding in rule.check(&family) {
                    finding.target = at;
                    findings.push(finding);
                }
            }
        }
    }
    for mut collision in collisions(&families) {
        collision.finding.target = Target::Line(blocks[collision.second].line);
        findings.push(collision.finding);
    }
    // One finding per problem, not one per sample.
    let mut seen = HashSet::new();
    findings.retain(|f| seen.insert((f.rule, f.metric.clone(), f.message.clone())));
    findings.sort_by_key(|f| match f.target {
        Target::Line(line) => line,
        _ => 0,
    });
    findings
}
