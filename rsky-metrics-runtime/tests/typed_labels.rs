//! Typed families: every combination of their labels on the first scrape (through `gather()` and
//! through their own encoder), exact totals under concurrent increments of different series, the
//! catalog's label values, and an exposition that `promtool check metrics` accepts.

use std::collections::BTreeMap;
use std::sync::Arc;

use rsky_metrics_runtime::exposition::{write_header, EncodeMetric, FamilyWriter, Format};
use rsky_metrics_runtime::{
    testing, CounterFamily, GaugeFamily, HistogramFamily, IntCounterFamily, IntGaugeFamily,
    LabelSet, LabelValue, MetricDesc, MetricKind, Metrics, Registry, TextEncoder,
};

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
#[label(name = "kind")]
pub enum ErrorKind {
    Redis,
    DbTimeout,
    /// A value with every character the text format escapes.
    #[label(rename = "quote\" back\\slash \nnewline")]
    Hostile,
}

/// A record's collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
pub enum Collection {
    #[label(rename = "app.bsky.feed.post")]
    Post,
    #[label(rename = "app.bsky.feed.like")]
    Like,
    #[label(rename = "app.bsky.graph.follow")]
    Follow,
}

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// Which stage ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
pub enum Stage {
    Read,
    Write,
}

/// A record by collection and action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelSet)]
pub struct Record {
    pub collection: Collection,
    pub action: Action,
}

/// One typed family of every kind.
#[derive(Metrics)]
#[metrics(service = "typed")]
pub struct TypedMetrics {
    /// Errors by kind
    pub errors: IntCounterFamily<ErrorKind>,
    /// Bytes written by collection and action
    pub written_bytes: CounterFamily<Record>,
    /// Records in flight by collection and action
    pub in_flight: IntGaugeFamily<(Collection, Action)>,
    /// Fill ratio of each stage's buffer
    #[metric(unit = "ratio")]
    pub fill_ratio: GaugeFamily<Stage>,
    /// Time per stage
    #[metric(buckets = [0.01, 0.1, 1.0])]
    pub stage_seconds: HistogramFamily<Stage>,
}

fn registered() -> (Registry, TypedMetrics) {
    let registry = Registry::new();
    let metrics = TypedMetrics::register(&registry).expect("a fresh registry");
    (registry, metrics)
}

/// prometheus's own text for the family `name`, from `gather()`.
fn prometheus_text(registry: &Registry, name: &str) -> String {
    let families: Vec<_> = registry
        .gather()
        .into_iter()
        .filter(|f| f.name() == name)
        .collect();
    assert_eq!(families.len(), 1, "`{name}` is gathered once");
    TextEncoder::new()
        .encode_to_string(&families)
        .expect("prometheus encodes its own families")
}

/// The family's own encoding: its header, then what `EncodeMetric` writes.
fn own_text(desc: &MetricDesc, family: &dyn EncodeMetric) -> String {
    let mut out = Vec::new();
    write_header(&mut out, desc, Format::Text);
    family.encode(&mut FamilyWriter::new(&mut out, desc, Format::Text));
    String::from_utf8(out).expect("UTF-8 text")
}

fn encode_each(metrics: &TypedMetrics) -> Vec<(&'static MetricDesc, String)> {
    let families: [&dyn EncodeMetric; 5] = [
        &metrics.errors,
        &metrics.written_bytes,
        &metrics.in_flight,
        &metrics.fill_ratio,
        &metrics.stage_seconds,
    ];
    TypedMetrics::METRICS
        .iter()
        .zip(families)
        .map(|(desc, family)| (desc, own_text(desc, family)))
        .collect()
}

/// A parsed sample: its name and label pairs (sorted), with unescaped values.
type SeriesKey = (String, Vec<(String, String)>);

/// Parses exposition text: the `# HELP`/`# TYPE` lines as they are, and each sample by series.
fn parse(text: &str) -> (Vec<String>, BTreeMap<SeriesKey, f64>) {
    let mut headers = Vec::new();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if line.starts_with('#') {
            headers.push(line.to_owned());
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().expect("a number"),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("closed"))),
            None => (series, Vec::new()),
        };
        let previous = samples.insert((name.to_owned(), labels), value);
        assert!(previous.is_none(), "series written twice: {line}");
    }
    (headers, samples)
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "a label value is quoted");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape in {text}"),
                },
                c => value.push(c),
            }
        }
        if chars.peek() == Some(&',') {
            chars.next();
        }
        pairs.push((name, value));
    }
    pairs.sort();
    pairs
}

#[test]
fn every_combination_is_gathered_at_zero_from_registration() {
    let (registry, _metrics) = registered();
    let gathered = registry.gather();
    let expected = [
        ("typed_errors_total", ErrorKind::CARDINALITY),
        ("typed_written_bytes_total", Record::CARDINALITY),
        ("typed_in_flight", <(Collection, Action)>::CARDINALITY),
        ("typed_fill_ratio", Stage::CARDINALITY),
        ("typed_stage_seconds", Stage::CARDINALITY),
    ];
    for (name, combinations) in expected {
        let family = gathered
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("`{name}` is on the first scrape"));
        assert_eq!(family.get_metric().len(), combinations, "{name}");
    }
    assert_eq!(Record::CARDINALITY, 9);
    let (_, samples) = parse(&prometheus_text(&registry, "typed_written_bytes_total"));
    for collection in Collection::VALUES {
        for action in Action::VALUES {
            let key = (
                "typed_written_bytes_total".to_owned(),
                vec![
                    ("action".to_owned(), (*action).to_owned()),
                    ("collection".to_owned(), (*collection).to_owned()),
                ],
            );
            assert_eq!(samples.get(&key), Some(&0.0), "{key:?}");
        }
    }
}

#[test]
fn every_combination_is_encoded_at_zero_from_registration() {
    let (_registry, metrics) = registered();
    for (desc, text) in encode_each(&metrics) {
        let (_, samples) = parse(&text);
        let combinations: usize = desc.label_values.iter().map(|v| v.len()).product();
        let per_series = match desc.kind {
            // One sample per bucket (and +Inf), plus the sum and the count.
            MetricKind::Histogram => desc.buckets.len() + 3,
            _ => 1,
        };
        assert_eq!(samples.len(), combinations * per_series, "{text}");
        assert!(samples.values().all(|v| *v == 0.0), "{text}");
    }
}

#[test]
fn own_encoding_equals_prometheus_text_encoder_for_every_kind() {
    let (registry, metrics) = registered();
    metrics.errors[ErrorKind::Redis].inc_by(3);
    metrics.errors[ErrorKind::Hostile].inc();
    metrics.written_bytes[Record {
        collection: Collection::Like,
        action: Action::Delete,
    }]
    .inc_by(1.5);
    metrics.in_flight[(Collection::Follow, Action::Update)].set(-2);
    metrics.fill_ratio[Stage::Write].set(f64::NAN);
    metrics.fill_ratio[Stage::Read].set(f64::INFINITY);
    metrics.stage_seconds[Stage::Read].observe(0.05);
    metrics.stage_seconds[Stage::Read].observe(5.0);
    for (desc, own) in encode_each(&metrics) {
        let theirs = prometheus_text(&registry, desc.name);
        let (own_headers, own_samples) = parse(&own);
        let (their_headers, their_samples) = parse(&theirs);
        assert_eq!(own_headers, their_headers, "{}", desc.name);
        assert_eq!(own_samples.len(), their_samples.len(), "{own}\n{theirs}");
        for (key, value) in &their_samples {
            let mine = own_samples
                .get(key)
                .unwrap_or_else(|| panic!("{key:?} missing from\n{own}"));
            // NaN is the one value that differs from itself.
            assert!(
                mine == value || (mine.is_nan() && value.is_nan()),
                "{key:?}: {mine} vs {value}"
            );
        }
    }
}

#[test]
fn hostile_values_are_escaped_in_both_encodings() {
    let (registry, metrics) = registered();
    let own = encode_each(&metrics).remove(0).1;
    let expected = r#"typed_errors_total{kind="quote\" back\\slash \nnewline"} 0"#;
    assert!(own.contains(expected), "{own}");
    assert!(
        prometheus_text(&registry, "typed_errors_total").contains(expected),
        "prometheus escapes the same way"
    );
}

#[test]
fn threads_incrementing_different_series_give_exact_totals() {
    const THREADS: usize = 6;
    const PER_THREAD: u64 = 20_000;
    let (_registry, metrics) = registered();
    let metrics = Arc::new(metrics);
    let records: Vec<Record> = [Collection::Post, Collection::Like]
        .into_iter()
        .flat_map(|collection| {
            [Action::Create, Action::Update, Action::Delete]
                .map(|action| Record { collection, action })
        })
        .collect();
    assert_eq!(records.len(), THREADS);
    let handles: Vec<_> = records
        .iter()
        .copied()
        .enumerate()
        .map(|(thread, record)| {
            let metrics = Arc::clone(&metrics);
            std::thread::spawn(move || {
                let kind = [ErrorKind::Redis, ErrorKind::DbTimeout][thread % 2];
                for _ in 0..PER_THREAD {
                    metrics.errors[kind].inc();
                    metrics.written_bytes[record].inc_by(2.0);
                    metrics.in_flight[(record.collection, record.action)].inc();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("no thread panicked");
    }
    let per_kind = PER_THREAD * THREADS as u64 / 2;
    assert_eq!(metrics.errors[ErrorKind::Redis].get(), per_kind);
    assert_eq!(metrics.errors[ErrorKind::DbTimeout].get(), per_kind);
    assert_eq!(metrics.errors[ErrorKind::Hostile].get(), 0);
    for record in &records {
        assert_eq!(
            metrics.written_bytes[*record].get(),
            2.0 * PER_THREAD as f64
        );
        assert_eq!(
            metrics.in_flight[(record.collection, record.action)].get(),
            PER_THREAD as i64
        );
    }
    let follow = Record {
        collection: Collection::Follow,
        action: Action::Create,
    };
    assert_eq!(metrics.written_bytes.get(follow).get(), 0.0);
}

#[test]
fn catalog_lists_label_names_and_values() {
    let errors = &TypedMetrics::METRICS[0];
    assert_eq!(errors.name, "typed_errors_total");
    assert_eq!(errors.labels, ["kind"]);
    assert_eq!(
        errors.label_values,
        [&["redis", "db_timeout", "quote\" back\\slash \nnewline"][..]]
    );
    let written = &TypedMetrics::METRICS[1];
    assert_eq!(written.labels, ["collection", "action"]);
    assert_eq!(
        written.label_values,
        [
            &[
                "app.bsky.feed.post",
                "app.bsky.feed.like",
                "app.bsky.graph.follow"
            ][..],
            &["create", "update", "delete"][..],
        ]
    );
    assert_eq!(TypedMetrics::METRICS[2].labels, ["collection", "action"]);
    assert_eq!(TypedMetrics::METRICS[4].buckets, [0.01, 0.1, 1.0]);
}

#[test]
fn label_index_is_dense_and_first_label_slowest() {
    let all: Vec<usize> = [Collection::Post, Collection::Like, Collection::Follow]
        .into_iter()
        .flat_map(|collection| {
            [Action::Create, Action::Update, Action::Delete]
                .map(|action| Record { collection, action }.index())
        })
        .collect();
    assert_eq!(all, (0..9).collect::<Vec<_>>());
    assert_eq!((Collection::Like, Action::Delete).index(), 5);
    let iterated: Vec<Vec<&str>> = registered()
        .1
        .written_bytes
        .iter()
        .map(|(values, _)| values)
        .take(2)
        .collect();
    assert_eq!(
        iterated,
        [
            ["app.bsky.feed.post", "create"],
            ["app.bsky.feed.post", "update"]
        ]
    );
}

#[test]
fn scrape_with_typed_families_is_promtool_clean() {
    let (registry, metrics) = registered();
    metrics.errors[ErrorKind::DbTimeout].inc();
    metrics.stage_seconds[Stage::Write].observe(0.2);
    let text = rsky_metrics_runtime::encode_text(&registry);
    testing::assert_registry_clean(&registry);
    testing::assert_promtool_clean(&text);
    // The family's own encoding too.
    let own: String = encode_each(&metrics).into_iter().map(|(_, t)| t).collect();
    testing::assert_promtool_clean(&own);
}
