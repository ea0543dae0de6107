//! The `testing` helpers: metric sets and real exposition text checked against the naming rules,
//! and a scrape of one metric of every kind that `promtool check metrics` accepts as it is.

use rsky_metrics_runtime::testing::{self, Rule};
use rsky_metrics_runtime::{
    encode_text, Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Metrics, MetricsServer, Registry,
};

/// One metric of every kind the derive supports.
#[derive(Metrics)]
#[metrics(service = "kinds")]
pub struct EveryKind {
    /// Requests handled
    pub requests: IntCounter,
    /// CPU time used
    #[metric(unit = "seconds")]
    pub cpu_seconds: Counter,
    /// Items waiting
    pub queue_length: IntGauge,
    /// Fraction of the cache in use
    #[metric(unit = "ratio")]
    pub cache_used_ratio: Gauge,
    /// Time to handle one request
    #[metric(buckets = [0.005, 0.05, 0.5, 5.0])]
    pub request_duration_seconds: Histogram,
    /// Events by stream and outcome
    #[metric(labels = ["stream", "outcome"])]
    pub events: IntCounterVec,
    /// Bytes written by stream
    #[metric(labels = ["stream"])]
    pub written_bytes: CounterVec,
    /// Length of each stream
    #[metric(labels = ["stream"])]
    pub stream_length: IntGaugeVec,
    /// Temperature by sensor
    #[metric(labels = ["sensor"])]
    pub temperature_celsius: GaugeVec,
    /// Payload sizes by stream
    #[metric(labels = ["stream"], buckets = [64.0, 1024.0, 65536.0])]
    pub payload_bytes: HistogramVec,
}

/// A second set whose histogram's `_count` is the first one's counter.
#[derive(Metrics)]
#[metrics(service = "kinds")]
pub struct Overlapping {
    /// Requests, timed: a histogram `kinds_requests` reserves the counter's stem
    pub requests: Histogram,
}

/// A set with a gauge named like a histogram series of `EveryKind`.
#[derive(Metrics)]
#[metrics(service = "kinds")]
pub struct SumGauge {
    /// Sum of request durations
    #[metric(name = "request_duration_seconds_sum_value")]
    pub sum: Gauge,
}

fn scrape_of_every_kind() -> String {
    let registry = Registry::new();
    let m = EveryKind::register(&registry).unwrap();
    m.requests.inc();
    m.cpu_seconds.inc_by(0.25);
    m.queue_length.set(3);
    m.cache_used_ratio.set(0.5);
    m.request_duration_seconds.observe(0.02);
    m.events.with_label_values(&["live", "ok"]).inc();
    m.written_bytes.with_label_values(&["live"]).inc_by(512.0);
    m.stream_length.with_label_values(&["live"]).set(7);
    m.temperature_celsius.with_label_values(&["cpu"]).set(41.5);
    m.payload_bytes.with_label_values(&["live"]).observe(100.0);
    encode_text(&registry)
}

#[test]
fn promtool_reports_nothing_on_a_scrape_of_every_kind() {
    testing::assert_promtool_clean(&scrape_of_every_kind());
}

#[test]
fn the_lint_reports_nothing_on_a_scrape_of_every_kind() {
    testing::assert_exposition_clean(&scrape_of_every_kind());
}

#[test]
fn the_lint_and_promtool_both_flag_bad_exposition() {
    for text in [
        "# HELP svc_latency_ms Latency\n# TYPE svc_latency_ms gauge\nsvc_latency_ms 1\n",
        "# HELP svc_requests Requests\n# TYPE svc_requests counter\nsvc_requests 1\n",
        "# TYPE svc_queue gauge\nsvc_queue 1\n",
        "# HELP svc_queueLength Queue\n# TYPE svc_queueLength gauge\nsvc_queueLength 1\n",
    ] {
        assert!(
            testing::promtool_check(text).is_err(),
            "promtool accepted:\n{text}"
        );
        assert!(
            !testing::lint_exposition(text).is_empty(),
            "the lint accepted:\n{text}"
        );
    }
}

#[test]
fn build_info_and_process_metrics_of_the_server_are_clean() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let registry = Registry::new();
        EveryKind::register(&registry).unwrap();
        let server = MetricsServer::for_set::<EveryKind>()
            .listen("127.0.0.1:0".parse().unwrap())
            .registry(registry.clone())
            .bind()
            .await
            .unwrap();
        let text = encode_text(&registry);
        assert!(text.contains("kinds_build_info"), "{text}");
        testing::assert_registry_clean(&registry);
        drop(server);
    });
}

#[test]
fn clean_sets_have_no_findings() {
    assert_eq!(
        testing::check_sets(&[EveryKind::METRICS, SumGauge::METRICS]),
        vec![]
    );
}

#[test]
fn check_sets_finds_a_suffix_clash_across_sets() {
    let findings = testing::check_sets(&[EveryKind::METRICS, Overlapping::METRICS]);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].rule, Rule::FamilyClash);
    assert_eq!(findings[0].metric, "kinds_requests");
    assert!(
        findings[0].message.contains("kinds_requests_total"),
        "{}",
        findings[0]
    );
    assert!(
        findings[0].message.contains("field `requests`"),
        "{}",
        findings[0]
    );
}

#[test]
fn check_sets_finds_a_set_listed_twice() {
    let findings = testing::check_sets(&[SumGauge::METRICS, SumGauge::METRICS]);
    assert_eq!(findings.len(), 1);
    assert!(findings[0].message.contains("declared twice"));
}

#[test]
#[should_panic(expected = "naming problem")]
fn assert_sets_clean_panics_listing_the_findings() {
    testing::assert_sets_clean(&[EveryKind::METRICS, Overlapping::METRICS]);
}

#[test]
#[should_panic(expected = "abbreviated-unit")]
fn assert_exposition_clean_panics_naming_the_rule() {
    testing::assert_exposition_clean(
        "# HELP svc_latency_ms Latency\n# TYPE svc_latency_ms gauge\nsvc_latency_ms 1\n",
    );
}

/// The rule of ours that reports what promtool's linter (promlint) says in `text`, one problem
/// of `promtool check metrics` output (`<metric> <text>`, or `error while linting: ...`).
fn our_rule_for(promlint: &str) -> Option<Rule> {
    let rule = match promlint {
        "no help text" => Rule::Help,
        "metric names should not contain abbreviated units" => Rule::AbbreviatedUnit,
        "metric names should not contain ':'" => Rule::NameCharacters,
        "metric names should be written in 'snake_case' not 'camelCase'" => Rule::NameCharacters,
        "label names should be written in 'snake_case' not 'camelCase'" => Rule::LabelCharacters,
        "metric not unique" => Rule::Exposition,
        t if t.starts_with("use base unit ") => Rule::NonBaseUnit,
        t if t.starts_with("metric name should not include type ") => Rule::TypeInName,
        t if t.ends_with("\"_total\" suffix") => Rule::TotalSuffix,
        t if t.ends_with("\"_timestamp_seconds\" suffix") => Rule::TimestampSuffix,
        t if t.ends_with("\"_bucket\" suffix")
            || t.ends_with("\"_count\" suffix")
            || t.ends_with("\"_sum\" suffix") =>
        {
            Rule::ReservedSuffix
        }
        t if t.ends_with("\"le\" label") || t.ends_with("\"quantile\" label") => {
            Rule::LabelReservedForType
        }
        _ => return None,
    };
    Some(rule)
}

/// One family of `kind` named `name`, with `labels` on each sample, as a client library writes it.
fn family_text(name: &str, kind: &str, labels: &str, help: bool) -> String {
    let mut text = String::new();
    if help {
        text.push_str(&format!("# HELP {name} Something measured\n"));
    }
    text.push_str(&format!("# TYPE {name} {kind}\n"));
    let with = |extra: &str| {
        let all: Vec<&str> = [labels, extra]
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect();
        if all.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", all.join(","))
        }
    };
    match kind {
        "histogram" => text.push_str(&format!(
            "{name}_bucket{} 1\n{name}_sum{} 1\n{name}_count{} 1\n",
            with("le=\"+Inf\""),
            with(""),
            with("")
        )),
        "summary" => text.push_str(&format!(
            "{name}{} 1\n{name}_sum{} 1\n{name}_count{} 1\n",
            with("quantile=\"0.5\""),
            with(""),
            with("")
        )),
        _ => text.push_str(&format!("{name}{} 1\n", with(""))),
    }
    text
}

/// A scrape of bad families: promlint's unit table with every prefix, abbreviations and type
/// words in both cases, `_total`/`_bucket`/`_count`/`_sum`/`_timestamp_seconds` on every type,
/// `le` and `quantile` labels on every type, camelCase, colons, and missing help.
fn corpus_of_bad_exposition() -> String {
    let units = [
        "seconds",
        "bytes",
        "meters",
        "metres",
        "grams",
        "joules",
        "volts",
        "amperes",
        "kelvin",
        "celsius",
        "minutes",
        "hours",
        "days",
        "weeks",
        "kelvins",
        "fahrenheit",
        "rankine",
        "inches",
        "yards",
        "miles",
        "bits",
        "calories",
        "pounds",
        "ounces",
    ];
    let prefixes = [
        "", "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi",
        "mega", "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
    ];
    let kinds = ["counter", "gauge", "histogram", "summary", "untyped"];
    let mut names: Vec<(String, &str, &str, bool)> = Vec::new();
    for unit in units {
        for prefix in prefixes {
            names.push((format!("reading_{prefix}{unit}"), "gauge", "", true));
        }
    }
    for word in [
        "s",
        "ms",
        "us",
        "ns",
        "sec",
        "b",
        "kb",
        "mb",
        "gb",
        "tb",
        "pb",
        "m",
        "h",
        "d",
        "MB",
        "Ms",
        "counter",
        "gauge",
        "histogram",
        "summary",
        "COUNTER",
        "Histogram",
    ] {
        for kind in kinds {
            names.push((format!("size_{word}"), kind, "", true));
            names.push((format!("size_{word}_last"), kind, "", true));
        }
    }
    for suffix in [
        "_total",
        "_bucket",
        "_count",
        "_sum",
        "_timestamp_seconds",
        "_info",
    ] {
        for kind in kinds {
            names.push((format!("jobs{suffix}"), kind, "", true));
        }
    }
    for label in [
        "le=\"1\"",
        "quantile=\"0.5\"",
        "someLabel=\"x\"",
        "ok=\"1\"",
    ] {
        for kind in kinds {
            names.push(("events_total".to_owned(), kind, label, true));
            names.push(("events".to_owned(), kind, label, true));
        }
    }
    for name in [
        "queueLength",
        "queue:length",
        "Queue_length",
        "queue_length",
    ] {
        for kind in kinds {
            names.push((name.to_owned(), kind, "", false));
        }
    }
    let mut text = String::new();
    for (index, (name, kind, labels, help)) in names.iter().enumerate() {
        // A service segment of its own keeps families apart.
        text.push_str(&family_text(
            &format!("c{index}_{name}"),
            kind,
            labels,
            *help,
        ));
    }
    text
}

#[test]
fn every_problem_promtool_reports_is_reported_by_the_lint() {
    let mut texts = vec![corpus_of_bad_exposition(), scrape_of_every_kind()];
    // Texts promtool cannot parse: the lint reports a malformed exposition too.
    texts.push("# TYPE svc_a gauge\n# TYPE svc_a gauge\nsvc_a 1\n".to_owned());
    texts.push("# HELP svc_a A\n# TYPE svc_a gauge\nsvc_a 1\n# TYPE svc_a counter\n".to_owned());
    texts.push("# HELP svc_a A\n# TYPE svc_a gauge\nsvc_a{x=\"1\" 1\n".to_owned());
    texts.push("# HELP svc_a A\n# TYPE svc_a gauge\nsvc_a one\n".to_owned());
    texts.push("# HELP svc_a A\n# TYPE svc_a gauge\nsvc_a 1\nsvc_a 2\n".to_owned());
    let mut problems = 0;
    for text in &texts {
        let said = match testing::promtool_check(text) {
            Ok(()) => continue,
            Err(said) => said,
        };
        let ours = testing::lint_exposition(text);
        for line in said.lines().filter(|l| !l.trim().is_empty()) {
            problems += 1;
            if line.starts_with("error while linting:") {
                assert!(
                    ours.iter().any(|f| f.rule == Rule::Exposition),
                    "promtool: {line}\nthe lint: {ours:#?}\nin:\n{text}"
                );
                continue;
            }
            let (metric, problem) = line.split_once(' ').unwrap_or((line, ""));
            let rule = our_rule_for(problem)
                .unwrap_or_else(|| panic!("a promtool problem with no rule of ours: {line}"));
            assert!(
                ours.iter().any(|f| f.metric == metric && f.rule == rule),
                "promtool: {line}\nthe lint has no {rule} finding on `{metric}`; it found:\n{}",
                ours.iter()
                    .filter(|f| f.metric == metric)
                    .map(|f| format!("  {f}\n"))
                    .collect::<String>()
            );
        }
    }
    // The corpus is bad through and through: promtool finds hundreds of problems in it.
    assert!(problems > 500, "promtool reported only {problems} problems");
}

#[test]
fn a_team_rule_flags_sets_and_scrapes_the_built_in_rules_pass() {
    let linter = testing::Linter::new().with_rule(testing::RequiredPrefix::new(["ingester_"]));
    let findings = linter.check_sets(&[EveryKind::METRICS]);
    assert_eq!(findings.len(), EveryKind::METRICS.len());
    assert!(findings
        .iter()
        .all(|f| f.rule == Rule::Custom("required-prefix")));
    assert_eq!(
        findings[0].to_string(),
        "metric `kinds_requests_total`: the name does not start with a required prefix \
         (`ingester_`) (field `requests`); rename it, for example `ingester_kinds_requests_total` \
         [required-prefix]"
    );
    assert_eq!(testing::check_sets(&[EveryKind::METRICS]), vec![]);

    let text = scrape_of_every_kind();
    let findings = linter.lint_exposition(&text);
    assert_eq!(findings.len(), EveryKind::METRICS.len(), "{findings:#?}");
    assert!(findings
        .iter()
        .all(|f| matches!(f.target, testing::Target::Line(_))));
    testing::Linter::new()
        .with_rule(testing::RequiredPrefix::new(["kinds_"]))
        .assert_exposition_clean(&text);
}

#[test]
#[should_panic(expected = "[required-prefix]")]
fn a_team_rule_fails_the_registry_assertion() {
    let registry = Registry::new();
    EveryKind::register(&registry).unwrap();
    testing::Linter::new()
        .with_rule(testing::RequiredPrefix::new(["ingester_"]))
        .assert_registry_clean(&registry);
}
