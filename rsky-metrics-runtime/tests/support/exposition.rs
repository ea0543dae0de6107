//! Test support: a small parser of the text exposition formats (both the Prometheus text format
//! and OpenMetrics text are read), to compare bodies as sets of families and samples, and the
//! Python `prometheus_client` OpenMetrics parser as an independent judge.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

/// One sample: its name, its labels sorted by name (values unescaped; `le` and `quantile`
/// normalized as numbers) and its value normalized (`NaN`, `+Inf`, `-Inf`, or Rust's `{:?}`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: String,
}

/// A parsed body: `# TYPE` and `# HELP` by family name, and every sample.
#[derive(Debug, Default, PartialEq)]
pub struct Exposition {
    pub types: BTreeMap<String, String>,
    pub helps: BTreeMap<String, String>,
    pub units: BTreeMap<String, String>,
    pub samples: BTreeSet<Sample>,
    pub eof: bool,
}

impl Exposition {
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<&str> {
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value.as_str())
    }

    pub fn families(&self) -> BTreeSet<String> {
        self.types.keys().cloned().collect()
    }
}

/// A number as the tests compare it.
pub fn normalize_number(text: &str) -> String {
    let value: f64 = match text {
        "+Inf" | "Inf" | "inf" | "+inf" => f64::INFINITY,
        "-Inf" | "-inf" => f64::NEG_INFINITY,
        "NaN" | "nan" => f64::NAN,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {other:?}")),
    };
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else if value == 0.0 {
        // -0 and 0 are the same number (Python's parser reads `-0` as the integer 0).
        "0.0".to_owned()
    } else {
        format!("{value:?}")
    }
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some(other) => panic!("unknown escape \\{other} in {text:?}"),
                None => panic!("dangling backslash in {text:?}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `name{a="x",b="y"} value [timestamp]`.
fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value in {line:?}"));
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest
                .find("=\"")
                .unwrap_or_else(|| panic!("bad labels in {line:?}"));
            let label = rest[..eq].to_owned();
            rest = &rest[eq + 2..];
            // The value ends at the first `"` not escaped.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in rest.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.unwrap_or_else(|| panic!("unterminated label value in {line:?}"));
            let mut value = unescape(&rest[..end]);
            if label == "le" || label == "quantile" {
                value = normalize_number(&value);
            }
            labels.push((label, value));
            rest = &rest[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let mut fields = rest.split_whitespace();
    let value = normalize_number(
        fields
            .next()
            .unwrap_or_else(|| panic!("no value in {line:?}")),
    );
    labels.sort();
    Sample {
        name,
        labels,
        value,
    }
}

/// Parses a body of either text format. Panics on what it cannot read.
pub fn parse(text: &str) -> Exposition {
    let mut parsed = Exposition::default();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if line == "# EOF" {
            parsed.eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            parsed.helps.insert(name.to_owned(), unescape(help));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            parsed.types.insert(name.to_owned(), kind.to_owned());
        } else if let Some(rest) = line.strip_prefix("# UNIT ") {
            let (name, unit) = rest.split_once(' ').expect("# UNIT name unit");
            parsed.units.insert(name.to_owned(), unit.to_owned());
        } else if line.starts_with('#') {
            continue;
        } else {
            let sample = parse_sample(line);
            assert!(
                parsed.samples.insert(sample.clone()),
                "duplicate sample {sample:?}"
            );
        }
    }
    parsed
}

const PYTHON_PARSER: &str = r#"
import json, math, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families

def number(v):
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    return repr(v)

families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    samples = [[s.name, sorted(s.labels.items()), number(s.value)] for s in family.samples]
    families.append({"name": family.name, "type": family.type, "help": family.documentation,
                     "unit": family.unit, "samples": samples})
print(json.dumps(families))
"#;

/// One family as Python's `prometheus_client` OpenMetrics parser read it.
#[derive(Debug)]
pub struct PyFamily {
    pub name: String,
    pub kind: String,
    pub help: String,
    pub unit: String,
    pub samples: Vec<Sample>,
}

/// Parses an OpenMetrics body with the Python `prometheus_client` package's parser (which
/// rejects what does not follow OpenMetrics 1.0). `Err` with its message when it refuses the
/// body. Panics when python3 or the package is missing: `scripts/test-all.sh` installs it.
pub fn python_openmetrics(body: &str) -> Result<Vec<PyFamily>, String> {
    let mut child = Command::new("python3")
        .args(["-c", PYTHON_PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("cannot run python3 ({err}): scripts/test-all.sh installs it")
        });
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body.as_bytes());
    }
    let output = child.wait_with_output().expect("wait for python3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the Python package prometheus_client is missing from python3 on PATH: install it in a \
         virtual environment first on PATH (scripts/test-all.sh does it, in target/tools-venv)"
    );
    if !output.status.success() {
        return Err(stderr.into_owned());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the parser script prints JSON");
    let families = json
        .as_array()
        .expect("a list of families")
        .iter()
        .map(|family| {
            let text = |key: &str| family[key].as_str().unwrap_or("").to_owned();
            let samples = family["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .map(|sample| {
                    let mut labels: Vec<(String, String)> = sample[1]
                        .as_array()
                        .expect("labels")
                        .iter()
                        .map(|pair| {
                            let name = pair[0].as_str().expect("label name").to_owned();
                            let mut value = pair[1].as_str().expect("label value").to_owned();
                            if name == "le" || name == "quantile" {
                                value = normalize_number(&value);
                            }
                            (name, value)
                        })
                        .collect();
                    labels.sort();
                    Sample {
                        name: sample[0].as_str().expect("sample name").to_owned(),
                        labels,
                        value: normalize_number(sample[2].as_str().expect("value")),
                    }
                })
                .collect();
            PyFamily {
                name: text("name"),
                kind: text("type"),
                help: text("help"),
                unit: text("unit"),
                samples,
            }
        })
        .collect();
    Ok(families)
}
