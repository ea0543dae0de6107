//! METRICS.md is generated from the services' catalogs and must not be stale.

use rsky_stack::catalog::{render_markdown, server_families, services, CATALOG_PATH, REGENERATE};
use rsky_stack::spec::spec_metrics;
use rsky_stack::workspace_root;

#[test]
fn metrics_md_is_what_the_catalog_command_prints() {
    let expected = render_markdown(&services(), &server_families().unwrap());
    let committed = std::fs::read_to_string(workspace_root().join(CATALOG_PATH))
        .unwrap_or_else(|e| panic!("{CATALOG_PATH}: {e}; write it with `{REGENERATE}`"));
    if committed != expected {
        let first = committed
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(expected.lines().count()));
        panic!(
            "{CATALOG_PATH} is stale (first difference at line {}): regenerate it with `{REGENERATE}`\n\
             committed: {:?}\n\
             expected:  {:?}",
            first + 1,
            committed.lines().nth(first),
            expected.lines().nth(first)
        );
    }
}

#[test]
fn every_metric_the_spec_names_is_declared_by_its_service() {
    let services = services();
    for spec in spec_metrics() {
        let service = services
            .iter()
            .find(|s| s.service == spec.service)
            .unwrap_or_else(|| panic!("no service {}", spec.service));
        let declared = service.metrics.iter().find(|m| m.name == spec.name);
        let declared = declared.unwrap_or_else(|| {
            panic!(
                "{} does not declare {} (specs/services.md)",
                service.package, spec.name
            )
        });
        assert_eq!(declared.kind.as_str(), spec.kind, "{}", spec.name);
    }
}

#[test]
fn the_catalog_lists_every_metric_of_every_service_with_its_type() {
    let services = services();
    let text = render_markdown(&services, &server_families().unwrap());
    for service in &services {
        for m in service.metrics {
            assert!(
                text.contains(&format!("| `{}` | {} |", m.name, m.kind)),
                "{} is missing from the catalog",
                m.name
            );
        }
    }
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "{service}_build_info",
    ] {
        assert!(text.contains(&format!("| `{process}` |")), "{process}");
    }
}
