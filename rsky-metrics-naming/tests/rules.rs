//! The naming rules on plain names: each rule rejects what it must, with the fix it must give, and
//! accepts every metric name the three services use.

use rsky_metrics_naming::{
    check_buckets, check_family, check_help, check_labels, check_name, check_service, check_unit,
    collisions, full_name, lint_exposition, suggest_label, suggest_name, CustomRule, Family,
    Finding, Kind, Linter, RequiredPrefix, Rule, Target, BASE_UNITS, NON_BASE_UNITS, UNIT_PREFIXES,
};

fn rules(findings: &[Finding]) -> Vec<Rule> {
    findings.iter().map(|f| f.rule).collect()
}

/// Every name listed in the services spec, with its type.
const SERVICE_NAMES: &[(&str, Kind)] = &[
    ("ingester_firehose_events_total", Kind::Counter),
    ("ingester_firehose_create_events_total", Kind::Counter),
    ("ingester_firehose_update_events_total", Kind::Counter),
    ("ingester_firehose_delete_events_total", Kind::Counter),
    ("ingester_firehose_filtered_operations_total", Kind::Counter),
    ("ingester_stream_events_total", Kind::Counter),
    ("ingester_errors_total", Kind::Counter),
    ("ingester_labeler_events_total", Kind::Counter),
    ("ingester_labels_written_total", Kind::Counter),
    ("ingester_backfill_repos_fetched_total", Kind::Counter),
    ("ingester_backfill_repos_written_total", Kind::Counter),
    ("ingester_backfill_fetch_errors_total", Kind::Counter),
    ("ingester_backfill_cursor_skips_total", Kind::Counter),
    ("ingester_firehose_live_length", Kind::Gauge),
    ("ingester_firehose_backfill_length", Kind::Gauge),
    ("ingester_label_live_length", Kind::Gauge),
    ("ingester_repo_backfill_length", Kind::Gauge),
    ("ingester_backpressure_active", Kind::Gauge),
    ("ingester_websocket_connections", Kind::Gauge),
    ("ingester_events_in_memory", Kind::Gauge),
    ("ingester_backfill_complete", Kind::Gauge),
    ("backfiller_repos_processed_total", Kind::Counter),
    ("backfiller_repos_failed_total", Kind::Counter),
    ("backfiller_repos_dead_lettered_total", Kind::Counter),
    ("backfiller_records_extracted_total", Kind::Counter),
    ("backfiller_records_filtered_total", Kind::Counter),
    ("backfiller_retries_attempted_total", Kind::Counter),
    ("backfiller_car_fetch_errors_total", Kind::Counter),
    ("backfiller_car_parse_errors_total", Kind::Counter),
    ("backfiller_verification_errors_total", Kind::Counter),
    ("backfiller_repos_waiting", Kind::Gauge),
    ("backfiller_repos_running", Kind::Gauge),
    ("backfiller_output_stream_length", Kind::Gauge),
    ("indexer_events_processed_total", Kind::Counter),
    ("indexer_create_events_total", Kind::Counter),
    ("indexer_update_events_total", Kind::Counter),
    ("indexer_delete_events_total", Kind::Counter),
    ("indexer_repo_events_total", Kind::Counter),
    ("indexer_account_events_total", Kind::Counter),
    ("indexer_identity_events_total", Kind::Counter),
    ("indexer_db_writes_total", Kind::Counter),
    ("indexer_errors_total", Kind::Counter),
    ("indexer_expected_errors_total", Kind::Counter),
    ("indexer_unexpected_errors_total", Kind::Counter),
    ("indexer_post_events_total", Kind::Counter),
    ("indexer_like_events_total", Kind::Counter),
    ("indexer_repost_events_total", Kind::Counter),
    ("indexer_follow_events_total", Kind::Counter),
    ("indexer_block_events_total", Kind::Counter),
    ("indexer_profile_events_total", Kind::Counter),
    ("indexer_labels_processed_total", Kind::Counter),
    ("indexer_labels_added_total", Kind::Counter),
    ("indexer_labels_removed_total", Kind::Counter),
    ("indexer_ack_failures_total", Kind::Counter),
    ("indexer_pending_messages", Kind::Gauge),
    ("indexer_active_tasks", Kind::Gauge),
];

#[test]
fn every_service_name_passes_every_rule() {
    assert_eq!(SERVICE_NAMES.len(), 56);
    for (name, kind) in SERVICE_NAMES {
        assert_eq!(check_name(name, *kind), vec![], "{name}");
    }
    let families: Vec<(&str, Kind)> = SERVICE_NAMES.to_vec();
    assert_eq!(collisions(&families), vec![]);
}

#[test]
fn well_formed_shapes_pass() {
    for (name, kind) in [
        ("svc_request_duration_seconds", Kind::Histogram),
        ("svc_payload_bytes", Kind::Summary),
        ("svc_cpu_seconds_total", Kind::Counter),
        ("svc_build_info", Kind::Info),
        ("svc_cache_hit_ratio", Kind::Gauge),
        ("svc_last_run_timestamp_seconds", Kind::Gauge),
        ("svc_temperature_celsius", Kind::Gauge),
        ("svc_retry_count_total", Kind::Counter),
        ("svc_v2_requests_total", Kind::Counter),
        ("s_requests_total", Kind::Counter),
    ] {
        assert_eq!(check_name(name, kind), vec![], "{name}");
    }
}

#[test]
fn an_abbreviated_unit_names_the_base_unit_in_its_fix() {
    let findings = check_name("svc_latency_ms", Kind::Gauge);
    assert_eq!(rules(&findings), [Rule::AbbreviatedUnit]);
    assert_eq!(
        findings[0].to_string(),
        "metric `svc_latency_ms`: \"ms\" is an abbreviated unit; use base units: `svc_latency_seconds` [abbreviated-unit]"
    );
}

#[test]
fn abbreviated_byte_units_become_bytes() {
    let findings = check_name("svc_payload_kb", Kind::Histogram);
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("use base units: `svc_payload_bytes`")
    );
}

#[test]
fn abbreviated_unit_in_a_counter_keeps_total() {
    let findings = check_name("svc_cpu_s_total", Kind::Counter);
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("use base units: `svc_cpu_seconds_total`")
    );
}

#[test]
fn m_is_ambiguous_and_the_fix_offers_both_readings() {
    let fix = check_name("svc_distance_m", Kind::Gauge)[0]
        .fix
        .clone()
        .unwrap_or_default();
    assert!(
        fix.contains("`svc_distance_meters`") && fix.contains("`svc_distance_seconds`"),
        "{fix}"
    );
}

#[test]
fn prefixed_units_are_not_base_units() {
    for (name, fixed) in [
        ("svc_latency_milliseconds", "svc_latency_seconds"),
        ("svc_wait_microseconds", "svc_wait_seconds"),
        ("svc_heap_kilobytes", "svc_heap_bytes"),
        ("svc_heap_mebibytes", "svc_heap_bytes"),
        ("svc_link_bits", "svc_link_bytes"),
        ("svc_uptime_hours", "svc_uptime_seconds"),
        ("svc_run_kilometers", "svc_run_meters"),
    ] {
        let findings = check_name(name, Kind::Gauge);
        assert_eq!(rules(&findings), [Rule::NonBaseUnit], "{name}");
        assert_eq!(
            findings[0].fix.as_deref(),
            Some(format!("use base units: `{fixed}`").as_str())
        );
    }
}

#[test]
fn percent_becomes_a_ratio() {
    let findings = check_name("svc_disk_used_percent", Kind::Gauge);
    assert_eq!(rules(&findings), [Rule::NonBaseUnit]);
    assert!(findings[0]
        .fix
        .as_deref()
        .unwrap_or_default()
        .contains("`svc_disk_used_ratio`"));
}

#[test]
fn camel_case_is_rejected_with_a_snake_case_fix() {
    let findings = check_name("svc_queueLength", Kind::Gauge);
    assert_eq!(rules(&findings), [Rule::NameCharacters]);
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("rename it `svc_queue_length`")
    );
}

#[test]
fn colons_double_and_trailing_underscores_and_leading_digits_are_rejected() {
    for name in [
        "svc:queue",
        "svc__queue",
        "svc_queue_",
        "_svc_queue",
        "9svc",
        "svc-queue",
        "",
    ] {
        assert_eq!(
            rules(&check_name(name, Kind::Gauge)),
            [Rule::NameCharacters],
            "{name:?}"
        );
    }
}

#[test]
fn a_service_must_be_snake_case() {
    assert_eq!(
        rules(&check_service("MyService")),
        [Rule::ServiceCharacters]
    );
    assert_eq!(
        check_service("MyService")[0].fix.as_deref(),
        Some("use `my_service`")
    );
    assert_eq!(check_service("my_service"), vec![]);
}

#[test]
fn a_counter_must_end_in_total() {
    let findings = check_name("svc_requests", Kind::Counter);
    assert_eq!(rules(&findings), [Rule::TotalSuffix]);
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("rename it `svc_requests_total`")
    );
}

#[test]
fn only_counters_end_in_total() {
    let findings = check_name("svc_requests_total", Kind::Gauge);
    assert_eq!(rules(&findings), [Rule::TotalSuffix]);
    assert!(findings[0].message.contains("a gauge"));
}

#[test]
fn total_is_not_doubled() {
    assert_eq!(
        rules(&check_name("svc_x_total_total", Kind::Counter)),
        [Rule::TotalSuffix]
    );
}

#[test]
fn gauges_and_histograms_must_not_end_in_reserved_suffixes() {
    for suffix in ["_count", "_sum", "_bucket", "_created"] {
        for kind in [Kind::Gauge, Kind::Histogram, Kind::Summary] {
            let name = format!("svc_queue{suffix}");
            assert_eq!(
                rules(&check_name(&name, kind)),
                [Rule::ReservedSuffix],
                "{name} {kind}"
            );
        }
    }
}

#[test]
fn a_counter_may_count_but_not_be_created() {
    assert_eq!(check_name("svc_retry_count_total", Kind::Counter), vec![]);
    assert_eq!(
        rules(&check_name("svc_jobs_created_total", Kind::Counter)),
        [Rule::ReservedSuffix]
    );
}

#[test]
fn info_suffix_is_for_info_metrics_only() {
    assert_eq!(
        rules(&check_name("svc_build_info", Kind::Gauge)),
        [Rule::ReservedSuffix]
    );
    assert_eq!(check_name("svc_build_info", Kind::Info), vec![]);
    assert_eq!(
        rules(&check_name("svc_build", Kind::Info)),
        [Rule::ReservedSuffix]
    );
}

#[test]
fn type_words_are_rejected_and_removed_in_the_fix() {
    let findings = check_name("svc_requests_counter_total", Kind::Counter);
    assert_eq!(rules(&findings), [Rule::TypeInName]);
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("rename it `svc_requests_total`")
    );
    assert_eq!(
        rules(&check_name(
            "svc_latency_histogram_seconds",
            Kind::Histogram
        )),
        [Rule::TypeInName]
    );
}

#[test]
fn a_declared_unit_must_be_a_base_unit() {
    let findings = check_unit("svc_latency_milliseconds", Kind::Histogram, "milliseconds");
    assert_eq!(rules(&findings), [Rule::UnitNotBase]);
    assert_eq!(findings[0].target, Target::Unit);
    assert!(findings[0]
        .fix
        .as_deref()
        .unwrap_or_default()
        .contains("unit = \"seconds\""));
    assert_eq!(
        rules(&check_unit("svc_requests", Kind::Gauge, "requests")),
        [Rule::UnitNotBase]
    );
}

#[test]
fn a_declared_unit_is_the_name_suffix() {
    assert_eq!(
        check_unit("svc_latency_seconds", Kind::Histogram, "seconds"),
        vec![]
    );
    assert_eq!(
        check_unit("svc_cpu_seconds_total", Kind::Counter, "seconds"),
        vec![]
    );
    let findings = check_unit("svc_latency", Kind::Histogram, "seconds");
    assert_eq!(rules(&findings), [Rule::UnitSuffix]);
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("rename it `svc_latency_seconds`")
    );
    let findings = check_unit("svc_cpu_total", Kind::Counter, "seconds");
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("rename it `svc_cpu_seconds_total`")
    );
}

#[test]
fn label_names_follow_the_character_rule() {
    let findings = check_labels(
        "svc_x_total",
        Kind::Counter,
        &["ok", "streamName", "9lives", "a-b"],
    );
    assert_eq!(rules(&findings), [Rule::LabelCharacters; 3]);
    assert_eq!(findings[0].target, Target::Label(1));
    assert_eq!(findings[0].fix.as_deref(), Some("name it `stream_name`"));
}

#[test]
fn reserved_label_prefixes_are_rejected() {
    let findings = check_labels("svc_x_total", Kind::Counter, &["__name__", "_shard"]);
    assert_eq!(rules(&findings), [Rule::LabelReserved; 2]);
    assert_eq!(findings[1].target, Target::Label(1));
}

#[test]
fn duplicate_labels_are_reported_at_the_second() {
    let findings = check_labels("svc_x_total", Kind::Counter, &["stream", "host", "stream"]);
    assert_eq!(rules(&findings), [Rule::LabelDuplicate]);
    assert_eq!(findings[0].target, Target::Label(2));
}

#[test]
fn le_is_reserved_on_histograms_and_quantile_on_summaries() {
    assert_eq!(
        rules(&check_labels("svc_x", Kind::Histogram, &["le"])),
        [Rule::LabelReservedForType]
    );
    assert_eq!(
        rules(&check_labels("svc_x", Kind::Summary, &["quantile"])),
        [Rule::LabelReservedForType]
    );
    // promlint: `le` on anything but a histogram, `quantile` on anything but a summary.
    for kind in [
        Kind::Counter,
        Kind::Gauge,
        Kind::Summary,
        Kind::Info,
        Kind::Untyped,
    ] {
        let findings = check_labels("svc_x", kind, &["le"]);
        assert_eq!(rules(&findings), [Rule::LabelReservedForType], "{kind}");
        assert!(
            findings[0]
                .message
                .contains("reserved for the bucket bounds of histograms"),
            "{}",
            findings[0]
        );
    }
    for kind in [
        Kind::Counter,
        Kind::Gauge,
        Kind::Histogram,
        Kind::Info,
        Kind::Untyped,
    ] {
        let findings = check_labels("svc_x", kind, &["quantile"]);
        assert_eq!(rules(&findings), [Rule::LabelReservedForType], "{kind}");
        assert_eq!(findings[0].rename.as_deref(), Some("quantile_class"));
    }
    assert_eq!(
        check_labels("svc_x", Kind::Gauge, &["le_class", "quantile_bound"]),
        vec![]
    );
}

#[test]
fn buckets_are_non_empty_finite_increasing_without_inf() {
    assert_eq!(rules(&check_buckets("svc_x", &[])), [Rule::BucketsEmpty]);
    assert_eq!(
        rules(&check_buckets("svc_x", &[0.1, f64::NAN])),
        [Rule::BucketNotFinite]
    );
    assert_eq!(
        rules(&check_buckets("svc_x", &[f64::NEG_INFINITY, 1.0])),
        [Rule::BucketNotFinite]
    );
    assert_eq!(
        rules(&check_buckets("svc_x", &[0.1, f64::INFINITY])),
        [Rule::BucketInf]
    );
    let order = check_buckets("svc_x", &[0.1, 0.5, 0.5, 0.2]);
    assert_eq!(rules(&order), [Rule::BucketOrder; 2]);
    assert_eq!(order[0].target, Target::Bucket(2));
    assert_eq!(check_buckets("svc_x", &[-1.0, 0.0, 0.5]), vec![]);
}

#[test]
fn help_is_required_and_non_empty() {
    assert_eq!(rules(&check_help("svc_x", None)), [Rule::Help]);
    assert_eq!(rules(&check_help("svc_x", Some("  "))), [Rule::Help]);
    assert_eq!(check_help("svc_x", Some("Things")), vec![]);
}

#[test]
fn a_histogram_collides_with_a_counter_named_after_its_count() {
    let found = collisions(&[
        ("svc_x", Kind::Histogram),
        ("svc_x_count_total", Kind::Counter),
    ]);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].first, found[0].second), (0, 1));
    assert_eq!(found[0].series, "svc_x_count");
    assert!(
        found[0].finding.message.contains("a histogram `svc_x`"),
        "{}",
        found[0].finding
    );
}

#[test]
fn a_gauge_collides_with_a_histogram_series() {
    let found = collisions(&[("svc_x_sum", Kind::Gauge), ("svc_x", Kind::Histogram)]);
    assert_eq!(found[0].series, "svc_x_sum");
    assert_eq!(found[0].second, 1);
}

#[test]
fn a_family_declared_twice_collides() {
    let found = collisions(&[
        ("svc_x_total", Kind::Counter),
        ("svc_x_total", Kind::Counter),
    ]);
    assert!(found[0].finding.message.contains("declared twice"));
}

#[test]
fn a_gauge_collides_with_the_counter_of_the_same_stem() {
    assert_eq!(
        collisions(&[("svc_x", Kind::Gauge), ("svc_x_total", Kind::Counter)]).len(),
        1
    );
}

#[test]
fn distinct_families_do_not_collide() {
    assert_eq!(
        collisions(&[
            ("svc_x", Kind::Histogram),
            ("svc_y_count", Kind::Gauge),
            ("svc_x_errors_total", Kind::Counter)
        ]),
        vec![]
    );
}

#[test]
fn full_names_append_total_to_counters_once() {
    assert_eq!(
        full_name("svc", "requests", Kind::Counter),
        "svc_requests_total"
    );
    assert_eq!(
        full_name("svc", "requests_total", Kind::Counter),
        "svc_requests_total"
    );
    assert_eq!(full_name("svc", "queue", Kind::Gauge), "svc_queue");
}

#[test]
fn check_family_reports_every_problem_of_a_declaration() {
    let family = Family {
        service: Some("Svc"),
        name: "Svc_latency_ms",
        kind: Kind::Histogram,
        labels: &["le", "le"],
        buckets: Some(&[1.0, 0.5]),
        unit: Some("ms"),
        help: Some(""),
    };
    let found = rules(&check_family(&family));
    for rule in [
        Rule::ServiceCharacters,
        Rule::NameCharacters,
        Rule::AbbreviatedUnit,
        Rule::UnitNotBase,
        Rule::LabelDuplicate,
        Rule::LabelReservedForType,
        Rule::BucketOrder,
        Rule::Help,
    ] {
        assert!(found.contains(&rule), "{rule} missing from {found:?}");
    }
}

#[test]
fn every_rule_has_an_id_and_a_summary() {
    let mut ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
    assert!(Rule::ALL.iter().all(|r| !r.summary().is_empty()));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), Rule::ALL.len());
}

#[test]
fn the_readme_table_lists_every_rule_in_order() {
    let readme = include_str!("../../rsky-metrics-runtime/README.md");
    let section = readme
        .split("## Naming rules")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap_or_default();
    let rows: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
    assert_eq!(rows[..ids.len()], ids[..], "the README's rule table");
    assert_eq!(rows[ids.len()..], ["required-prefix"]);
}

const CLEAN: &str = "\
# HELP svc_requests_total Requests handled
# TYPE svc_requests_total counter
svc_requests_total{outcome=\"ok\"} 3
svc_requests_total{outcome=\"error\"} 1
# HELP svc_latency_seconds Time to handle one request
# TYPE svc_latency_seconds histogram
svc_latency_seconds_bucket{le=\"0.1\"} 1
svc_latency_seconds_bucket{le=\"+Inf\"} 2
svc_latency_seconds_sum 0.35
svc_latency_seconds_count 2
# HELP svc_build_info Build information
# TYPE svc_build_info gauge
svc_build_info{version=\"1.0.0\"} 1
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 0.5
";

#[test]
fn clean_exposition_has_no_findings() {
    assert_eq!(lint_exposition(CLEAN), vec![]);
}

#[test]
fn exposition_names_are_linted_with_their_line() {
    let text = "# HELP svc_latency_ms Latency\n# TYPE svc_latency_ms gauge\nsvc_latency_ms 3\n";
    let findings = lint_exposition(text);
    assert_eq!(rules(&findings), [Rule::AbbreviatedUnit]);
    assert_eq!(findings[0].target, Target::Line(1));
}

#[test]
fn exposition_without_help_is_flagged() {
    let findings = lint_exposition("# TYPE svc_queue gauge\nsvc_queue 1\n");
    assert_eq!(rules(&findings), [Rule::Help]);
}

#[test]
fn exposition_counter_without_total_is_flagged() {
    let findings =
        lint_exposition("# HELP svc_requests R\n# TYPE svc_requests counter\nsvc_requests 1\n");
    assert_eq!(rules(&findings), [Rule::TotalSuffix]);
}

#[test]
fn exposition_duplicate_series_are_flagged_once() {
    let text = "# HELP svc_q Q\n# TYPE svc_q gauge\nsvc_q{a=\"1\"} 1\nsvc_q{a=\"1\"} 2\nsvc_q{a=\"1\"} 3\n";
    let findings = lint_exposition(text);
    assert_eq!(rules(&findings), [Rule::Exposition]);
    assert_eq!(findings[0].target, Target::Line(4));
}

#[test]
fn exposition_split_families_and_late_types_are_flagged() {
    let text = "# HELP svc_a A\nsvc_a 1\n# TYPE svc_a gauge\n# HELP svc_b B\n# TYPE svc_b gauge\nsvc_b 1\nsvc_a 2\n";
    let findings = lint_exposition(text);
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("after the family's samples")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("appears again")),
        "{messages:?}"
    );
}

#[test]
fn exposition_label_names_are_linted_but_le_on_buckets_is_fine() {
    let text = "# HELP svc_x X\n# TYPE svc_x histogram\nsvc_x_bucket{le=\"1\",streamName=\"a\"} 1\nsvc_x_bucket{le=\"+Inf\",streamName=\"a\"} 1\nsvc_x_sum{streamName=\"a\"} 1\nsvc_x_count{streamName=\"a\"} 1\n";
    assert_eq!(rules(&lint_exposition(text)), [Rule::LabelCharacters]);
}

#[test]
fn exposition_clashes_between_families_are_flagged() {
    let text = "# HELP svc_x X\n# TYPE svc_x histogram\nsvc_x_bucket{le=\"+Inf\"} 0\nsvc_x_sum 0\nsvc_x_count 0\n# HELP svc_x_count_total C\n# TYPE svc_x_count_total counter\nsvc_x_count_total 0\n";
    let findings = lint_exposition(text);
    assert_eq!(rules(&findings), [Rule::FamilyClash]);
    assert_eq!(findings[0].metric, "svc_x_count_total");
}

#[test]
fn malformed_sample_lines_are_flagged() {
    for line in [
        "svc_q{a=\"1\" 1",
        "svc_q{a=1} 1",
        "svc_q one",
        "svc_q",
        "svc_q 1 2 3",
    ] {
        let text = format!("# HELP svc_q Q\n# TYPE svc_q gauge\n{line}\n");
        assert!(
            rules(&lint_exposition(&text)).contains(&Rule::Exposition),
            "{line}"
        );
    }
}

// ---- promlint parity (client_golang `promlint/validations`) ----

/// promlint's unit table (`units.go`): base units, then each non-base unit with its base unit.
const PROMLINT_BASE: &[&str] = &[
    "amperes", "bytes", "celsius", "grams", "joules", "kelvin", "meters", "metres", "seconds",
    "volts",
];
const PROMLINT_NON_BASE: &[(&str, &str)] = &[
    ("minutes", "seconds"),
    ("hours", "seconds"),
    ("days", "seconds"),
    ("weeks", "seconds"),
    ("kelvins", "kelvin"),
    ("fahrenheit", "celsius"),
    ("rankine", "celsius"),
    ("inches", "meters"),
    ("yards", "meters"),
    ("miles", "meters"),
    ("bits", "bytes"),
    ("calories", "joules"),
    ("pounds", "grams"),
    ("ounces", "grams"),
];
const PROMLINT_PREFIXES: &[&str] = &[
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

#[test]
fn the_unit_table_contains_promlints() {
    for base in PROMLINT_BASE {
        assert!(BASE_UNITS.contains(base), "{base}");
        assert_eq!(
            check_name(&format!("svc_x_{base}"), Kind::Gauge),
            vec![],
            "{base}"
        );
    }
    for (unit, base) in PROMLINT_NON_BASE {
        assert!(NON_BASE_UNITS.contains(&(unit, base)), "{unit}");
    }
    for prefix in PROMLINT_PREFIXES {
        assert!(UNIT_PREFIXES.contains(prefix), "{prefix}");
    }
}

#[test]
fn every_non_base_unit_of_promlint_is_flagged_with_its_base() {
    for (unit, base) in PROMLINT_NON_BASE {
        let name = format!("svc_reading_{unit}");
        let findings = check_name(&name, Kind::Gauge);
        assert_eq!(rules(&findings), [Rule::NonBaseUnit], "{name}");
        assert_eq!(
            findings[0].rename.as_deref(),
            Some(format!("svc_reading_{base}").as_str()),
            "{name}"
        );
        assert_eq!(
            findings[0].message,
            format!("\"{unit}\" is not a base unit"),
            "{name}"
        );
    }
}

#[test]
fn every_prefix_on_every_unit_is_flagged_celsius_and_kelvin_included() {
    let units = PROMLINT_BASE
        .iter()
        .map(|b| (*b, *b))
        .chain(PROMLINT_NON_BASE.iter().copied());
    for (unit, base) in units {
        for prefix in PROMLINT_PREFIXES.iter().chain(&["mebi"]) {
            let name = format!("svc_reading_{prefix}{unit}");
            let findings = check_name(&name, Kind::Gauge);
            assert_eq!(rules(&findings), [Rule::NonBaseUnit], "{name}");
            assert_eq!(
                findings[0].rename.as_deref(),
                Some(format!("svc_reading_{base}").as_str()),
                "{name}"
            );
        }
    }
    let findings = check_name("svc_core_kilocelsius", Kind::Gauge);
    assert_eq!(
        findings[0].to_string(),
        "metric `svc_core_kilocelsius`: \"kilocelsius\" is not a base unit; use base units: `svc_core_celsius` [non-base-unit]"
    );
}

#[test]
fn a_unit_in_the_first_segment_is_flagged_as_promlint_does() {
    assert_eq!(
        rules(&check_name("milliseconds_spent_total", Kind::Counter)),
        [Rule::NonBaseUnit]
    );
    // Abbreviations are not looked for there (`s_requests_total` is service `s`), as in promlint.
    assert_eq!(check_name("ms_requests_total", Kind::Counter), vec![]);
}

#[test]
fn words_that_merely_end_like_a_unit_pass() {
    for name in [
        "svc_thermometers",
        "svc_dayshift_length",
        "svc_milliner_count_total",
    ] {
        let kind = if name.ends_with("_total") {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        assert_eq!(check_name(name, kind), vec![], "{name}");
    }
}

#[test]
fn upper_case_names_get_the_type_word_and_unit_findings_and_a_clean_fix() {
    let findings = check_name("svc_queue_HISTOGRAM", Kind::Histogram);
    assert_eq!(rules(&findings), [Rule::NameCharacters, Rule::TypeInName]);
    for finding in &findings {
        assert_eq!(finding.rename.as_deref(), Some("svc_queue"), "{finding}");
    }
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("rename it `svc_queue`"),
        "the snake_case of the name still names the type"
    );
    let findings = check_name("svc_payload_MB", Kind::Gauge);
    assert_eq!(
        rules(&findings),
        [Rule::NameCharacters, Rule::AbbreviatedUnit]
    );
    for finding in &findings {
        assert_eq!(
            finding.rename.as_deref(),
            Some("svc_payload_bytes"),
            "{finding}"
        );
    }
    let findings = check_name("svc_wait_Milliseconds", Kind::Histogram);
    assert_eq!(rules(&findings), [Rule::NameCharacters, Rule::NonBaseUnit]);
    assert_eq!(findings[1].rename.as_deref(), Some("svc_wait_seconds"));
}

#[test]
fn a_counter_named_like_a_series_of_another_type_is_flagged_as_promlint_does() {
    for suffix in ["_count", "_sum", "_bucket"] {
        let name = format!("svc_jobs{suffix}");
        let findings = check_name(&name, Kind::Counter);
        assert_eq!(
            rules(&findings),
            [Rule::TotalSuffix, Rule::ReservedSuffix],
            "{name}"
        );
        let fixed = format!("{name}_total");
        assert_eq!(findings[1].rename.as_deref(), Some(fixed.as_str()));
        assert_eq!(check_name(&fixed, Kind::Counter), vec![], "{fixed}");
    }
}

#[test]
fn only_a_gauge_ends_in_timestamp_seconds() {
    for (name, kind, fixed) in [
        (
            "svc_last_run_timestamp_seconds",
            Kind::Histogram,
            "svc_last_run_seconds",
        ),
        (
            "svc_last_run_timestamp_seconds",
            Kind::Summary,
            "svc_last_run_seconds",
        ),
        (
            "svc_last_run_timestamp_seconds_total",
            Kind::Counter,
            "svc_last_run_seconds_total",
        ),
    ] {
        let findings = check_name(name, kind);
        assert_eq!(rules(&findings), [Rule::TimestampSuffix], "{name} {kind}");
        assert_eq!(findings[0].rename.as_deref(), Some(fixed));
        assert!(findings[0]
            .fix
            .as_deref()
            .unwrap_or_default()
            .contains("make it a gauge"));
    }
    // As promlint: gauges and untyped metrics may.
    for kind in [Kind::Gauge, Kind::Untyped] {
        assert_eq!(check_name("svc_last_run_timestamp_seconds", kind), vec![]);
    }
}

#[test]
fn a_label_fix_is_itself_a_clean_label() {
    assert_eq!(suggest_label("_le"), "le_class");
    assert_eq!(suggest_label("Quantile"), "quantile_class");
    assert_eq!(suggest_label("__name__"), "name");
    let findings = check_labels("svc_x_total", Kind::Counter, &["__le"]);
    assert_eq!(rules(&findings), [Rule::LabelReserved]);
    assert_eq!(findings[0].fix.as_deref(), Some("name it `le_class`"));
}

#[test]
fn suggest_name_applies_every_rule() {
    for (name, kind, unit, fixed) in [
        (
            "svc_Latency_MS_HISTOGRAM",
            Kind::Histogram,
            None,
            "svc_latency_seconds",
        ),
        (
            "svc_cpu",
            Kind::Counter,
            Some("seconds"),
            "svc_cpu_seconds_total",
        ),
        (
            "svc_latency_count",
            Kind::Histogram,
            Some("seconds"),
            "svc_latency_seconds",
        ),
        (
            "svc_requests_total_total",
            Kind::Counter,
            None,
            "svc_requests_total",
        ),
        ("svc:queue_total_info", Kind::Gauge, None, "svc_queue"),
        ("svc_build", Kind::Info, None, "svc_build_info"),
        (
            "svc_requests_total",
            Kind::Counter,
            None,
            "svc_requests_total",
        ),
    ] {
        assert_eq!(suggest_name(name, kind, unit), fixed, "{name}");
    }
}

/// Segments that break rules (alone or together) and some that don't.
const PIECES: &[&str] = &[
    "latency",
    "queueLength",
    "ms",
    "MB",
    "Milliseconds",
    "kilocelsius",
    "fahrenheit",
    "HISTOGRAM",
    "counter",
    "total",
    "count",
    "sum",
    "bucket",
    "created",
    "info",
    "timestamp",
    "seconds",
    "percent",
    "m",
    "",
    "a:b",
    "9x",
    "weeks",
    "mibibytes",
    "kelvins",
    "bytes",
];
const KINDS: &[Kind] = &[
    Kind::Counter,
    Kind::Gauge,
    Kind::Histogram,
    Kind::Summary,
    Kind::Info,
    Kind::Untyped,
];

/// The names a fix proposes: every backquoted word in it.
fn proposed_names(fix: &str) -> Vec<&str> {
    fix.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_suggested_rename_over_a_corpus_of_bad_names_passes_every_rule() {
    let mut names = Vec::new();
    for service in ["svc", "Svc"] {
        for a in PIECES {
            names.push(format!("{service}_{a}"));
            for b in PIECES {
                names.push(format!("{service}_{a}_{b}"));
                for c in ["seconds", "total", "MB", "Info", "_"] {
                    names.push(format!("{service}_{a}_{b}_{c}"));
                }
            }
        }
    }
    let mut checked = 0;
    for name in &names {
        for kind in KINDS {
            for finding in check_name(name, *kind) {
                let rename = finding
                    .rename
                    .as_deref()
                    .unwrap_or_else(|| panic!("no rename in {finding}"));
                assert_eq!(
                    check_name(rename, *kind),
                    vec![],
                    "{kind} `{name}`: the fix of {finding} is not clean"
                );
                for proposed in proposed_names(finding.fix.as_deref().unwrap_or_default()) {
                    assert_eq!(check_name(proposed, *kind), vec![], "{kind}: {finding}");
                }
                checked += 1;
            }
            for unit in ["seconds", "ratio"] {
                let family = Family {
                    service: None,
                    name,
                    kind: *kind,
                    labels: &[],
                    buckets: None,
                    unit: Some(unit),
                    help: Some("Help"),
                };
                for finding in check_family(&family) {
                    let Some(rename) = finding.rename.as_deref() else {
                        continue;
                    };
                    let renamed = Family {
                        name: rename,
                        ..family
                    };
                    // Only the name was renamed: what is left is about the unit (an info metric's).
                    let left: Vec<Finding> = check_family(&renamed)
                        .into_iter()
                        .filter(|f| f.target == Target::Name)
                        .collect();
                    assert_eq!(
                        left,
                        vec![],
                        "{kind} `{name}` unit {unit}: the fix of {finding} is not clean"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50_000, "only {checked} findings checked");
}

#[test]
fn every_suggested_label_over_a_corpus_of_bad_labels_passes_every_rule() {
    let labels = [
        "le",
        "quantile",
        "_le",
        "__quantile",
        "Le",
        "streamName",
        "__name__",
        "_x",
        "9lives",
        "a-b",
        "",
        "QUANTILE",
        "le_",
        "_",
    ];
    for kind in KINDS {
        for label in labels {
            for finding in check_labels("svc_x", *kind, &[label]) {
                let rename = finding
                    .rename
                    .as_deref()
                    .unwrap_or_else(|| panic!("no rename in {finding}"));
                assert_eq!(
                    check_labels("svc_x", *kind, &[rename]),
                    vec![],
                    "{kind} label {label:?}: {finding}"
                );
            }
        }
    }
}

// ---- a team's own rules ----

#[test]
fn required_prefix_flags_other_names_in_exposition_and_declarations() {
    let linter = Linter::new().with_rule(RequiredPrefix::new(["ingester_", "indexer_"]));
    let text = "# HELP ingester_queue Items\n# TYPE ingester_queue gauge\ningester_queue 1\n\
                # HELP other_queue Items\n# TYPE other_queue gauge\nother_queue 1\n";
    let findings = linter.lint_exposition(text);
    assert_eq!(rules(&findings), [Rule::Custom("required-prefix")]);
    assert_eq!(findings[0].metric, "other_queue");
    assert_eq!(findings[0].target, Target::Line(4));
    assert_eq!(findings[0].rename.as_deref(), Some("ingester_other_queue"));
    // Without the rule, the same text is clean.
    assert_eq!(lint_exposition(text), vec![]);
    assert_eq!(Linter::new().lint_exposition(text), vec![]);

    let family = Family {
        service: Some("other"),
        name: "other_queue",
        kind: Kind::Gauge,
        labels: &[],
        buckets: None,
        unit: None,
        help: Some("Items"),
    };
    assert_eq!(
        rules(&linter.check_family(&family)),
        [Rule::Custom("required-prefix")]
    );
    assert_eq!(check_family(&family), vec![]);
}

/// A team rule that sees labels: no `user_id` label (unbounded cardinality).
struct NoUserIdLabel;

impl CustomRule for NoUserIdLabel {
    fn id(&self) -> &'static str {
        "no-user-id-label"
    }
    fn check(&self, family: &Family<'_>) -> Vec<Finding> {
        family
            .labels
            .iter()
            .position(|l| *l == "user_id")
            .map(|index| {
                Finding::new(
                    Rule::Custom(self.id()),
                    family.name,
                    Target::Label(index),
                    "label \"user_id\" has unbounded cardinality",
                )
                .fix("aggregate per user elsewhere")
            })
            .into_iter()
            .collect()
    }
}

#[test]
fn team_rules_see_the_labels_of_samples_and_run_after_the_built_in_ones() {
    let linter = Linter::new()
        .with_rule(NoUserIdLabel)
        .with_rule(RequiredPrefix::new(["svc_"]));
    assert_eq!(
        linter.custom_rules(),
        ["no-user-id-label", "required-prefix"]
    );
    let text = "# HELP svc_hits Hits\n# TYPE svc_hits counter\nsvc_hits{user_id=\"1\"} 1\n\
                svc_hits{user_id=\"2\"} 1\n";
    let findings = linter.lint_exposition(text);
    assert_eq!(
        rules(&findings),
        [Rule::TotalSuffix, Rule::Custom("no-user-id-label")]
    );
    assert_eq!(
        findings[1].to_string(),
        "metric `svc_hits`: label \"user_id\" has unbounded cardinality; aggregate per user elsewhere (line 1) [no-user-id-label]"
    );
    assert!(format!("{linter:?}").contains("no-user-id-label"));
}

#[test]
fn exposition_flags_le_and_quantile_where_promlint_does() {
    let text = "# HELP svc_queue Items\n# TYPE svc_queue gauge\nsvc_queue{le=\"1\"} 1\n\
                # HELP svc_jobs_total Jobs\n# TYPE svc_jobs_total counter\nsvc_jobs_total{quantile=\"0.5\"} 1\n\
                # HELP svc_rpc_seconds Rpc\n# TYPE svc_rpc_seconds summary\nsvc_rpc_seconds{quantile=\"0.5\"} 1\n\
                svc_rpc_seconds_sum 1\nsvc_rpc_seconds_count 1\n";
    let findings = lint_exposition(text);
    assert_eq!(
        rules(&findings),
        [Rule::LabelReservedForType, Rule::LabelReservedForType]
    );
    assert_eq!(findings[0].metric, "svc_queue");
    assert_eq!(findings[1].metric, "svc_jobs_total");
}
