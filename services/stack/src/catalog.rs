//! The metric catalog of the pipeline: every metric of every service, read from the services'
//! `#[derive(Metrics)]` catalogs (`METRICS`) and from what the runtime's `/metrics` server adds,
//! rendered as `METRICS.md`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;

use rsky_metrics_runtime::prometheus::proto::MetricType;
use rsky_metrics_runtime::{MetricDesc, MetricSet, MetricsServer, Registry};

/// Where the generated catalog lives, relative to the workspace root.
pub const CATALOG_PATH: &str = "METRICS.md";

/// The command that writes [`CATALOG_PATH`].
pub const REGENERATE: &str = "cargo run -p rsky-stack --bin catalog > METRICS.md";

/// One service of the pipeline and its declared metrics.
#[derive(Clone, Copy, Debug)]
pub struct ServiceCatalog {
    /// The service name every metric starts with.
    pub service: &'static str,
    /// The Cargo package.
    pub package: &'static str,
    /// The binary.
    pub binary: &'static str,
    /// The Prometheus job that scrapes it (prometheus.yml).
    pub job: &'static str,
    /// Its default `METRICS_PORT`.
    pub default_port: u16,
    /// Its `#[derive(Metrics)]` catalog.
    pub metrics: &'static [MetricDesc],
}

fn catalog_of<S: MetricSet>(
    package: &'static str,
    binary: &'static str,
    job: &'static str,
    default_port: u16,
) -> ServiceCatalog {
    ServiceCatalog {
        service: S::SERVICE,
        package,
        binary,
        job,
        default_port,
        metrics: S::METRICS,
    }
}

/// The three services, in pipeline order.
pub fn services() -> [ServiceCatalog; 3] {
    [
        catalog_of::<rsky_ingester::IngesterMetrics>(
            "rsky-ingester",
            "ingester",
            "rsky-ingester",
            4100,
        ),
        catalog_of::<rsky_backfiller::BackfillerMetrics>(
            "rsky-backfiller",
            "backfiller",
            "rsky-backfiller",
            9090,
        ),
        catalog_of::<rsky_indexer::IndexerMetrics>("rsky-indexer", "indexer", "rsky-indexer", 9090),
    ]
}

/// A metric family that the `/metrics` server exports beside a service's declared set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFamily {
    /// The family name, with `{service}` standing for the service name.
    pub name: String,
    /// `counter`, `gauge`, ...
    pub kind: String,
    /// Label names.
    pub labels: Vec<String>,
    /// Help text.
    pub help: String,
}

/// The families the runtime's `MetricsServer` adds to every service (process metrics and
/// `{service}_build_info`), read from a server bound on a loopback port with a fresh registry.
pub fn server_families() -> Result<Vec<ServerFamily>, rsky_metrics_runtime::Error> {
    const PLACEHOLDER: &str = "service";
    let registry = Registry::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| rsky_metrics_runtime::Error::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
    let server = runtime.block_on(
        MetricsServer::builder(PLACEHOLDER)
            .registry(registry.clone())
            .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .version("0")
            .bind(),
    )?;
    drop(server);
    let mut families: Vec<ServerFamily> = registry
        .gather()
        .iter()
        .map(|family| ServerFamily {
            name: family
                .name()
                .replacen(&format!("{PLACEHOLDER}_"), "{service}_", 1),
            kind: kind_name(family.get_field_type()).to_owned(),
            labels: family
                .get_metric()
                .first()
                .map(|m| m.get_label().iter().map(|l| l.name().to_owned()).collect())
                .unwrap_or_default(),
            help: family.help().replace(PLACEHOLDER, "{service}"),
        })
        .collect();
    families.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(families)
}

fn kind_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        MetricType::UNTYPED => "untyped",
    }
}

/// Every sample name a scrape of the pipeline can show: declared families (histograms as their
/// `_bucket`, `_sum` and `_count` series), the server's families for each service, and `up`,
/// which Prometheus adds to every target.
pub fn known_samples(services: &[ServiceCatalog], server: &[ServerFamily]) -> BTreeSet<String> {
    let mut names = BTreeSet::from(["up".to_owned()]);
    for service in services {
        for metric in service.metrics {
            names.extend(metric.sample_names());
        }
        for family in server {
            names.insert(family.name.replace("{service}", service.service));
        }
    }
    names
}

/// `METRICS.md`: one table per service, then the families every service exports.
pub fn render_markdown(services: &[ServiceCatalog], server: &[ServerFamily]) -> String {
    let mut out = String::new();
    let total: usize = services.iter().map(|s| s.metrics.len()).sum();
    let _ = writeln!(out, "# Metrics of the rsky pipeline\n");
    let _ = writeln!(
        out,
        "<!-- Generated by `{REGENERATE}` from the services' `#[derive(Metrics)]` catalogs. \
         Do not edit: `cargo test -p rsky-stack --test catalog` fails when this file is stale. -->\n"
    );
    let _ = writeln!(
        out,
        "{total} declared metrics in {} services, each registered at start (on the first scrape, \
         at zero), plus the {} families that every service's `/metrics` server adds. \
         Dashboard: `grafana/dashboards/rsky-pipeline.json`; alerts: `prometheus/alerts.yml`.\n",
        services.len(),
        server.len()
    );
    for service in services {
        let _ = writeln!(
            out,
            "## {} ({} metrics)\n\nPackage `{}`, binary `{}`, Prometheus job `{}`, `METRICS_PORT` default {}.\n",
            service.service,
            service.metrics.len(),
            service.package,
            service.binary,
            service.job,
            service.default_port
        );
        let _ = writeln!(out, "| name | type | labels | help |");
        let _ = writeln!(out, "|---|---|---|---|");
        for m in service.metrics {
            let mut help = m.help.to_owned();
            if let Some(unit) = m.unit {
                let _ = write!(help, " (unit: {unit})");
            }
            if !m.buckets.is_empty() {
                let buckets: Vec<String> = m.buckets.iter().map(f64::to_string).collect();
                let _ = write!(help, " (buckets: {})", buckets.join(", "));
            }
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                m.name,
                m.kind,
                declared_labels(m),
                escape(&help)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "## Every service\n\nAdded by the runtime's `MetricsServer` (`{{service}}` is `ingester`, `backfiller` or `indexer`); \
         Prometheus adds `up` to every target.\n"
    );
    let _ = writeln!(out, "| name | type | labels | help |");
    let _ = writeln!(out, "|---|---|---|---|");
    for f in server {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            f.name,
            f.kind,
            labels(f.labels.iter().map(String::as_str)),
            escape(&f.help)
        );
    }
    out
}

/// A declared family's labels; a typed family's with their possible values:
/// `` `kind` (`redis`, `decode`) ``.
fn declared_labels(m: &MetricDesc) -> String {
    if m.label_values.is_empty() {
        return labels(m.labels.iter().copied());
    }
    let all: Vec<String> = m
        .labels
        .iter()
        .zip(m.label_values)
        .map(|(label, values)| {
            let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
            format!("`{label}` ({})", values.join(", "))
        })
        .collect();
    all.join(", ")
}

fn labels<'a>(labels: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<String> = labels.map(|l| format!("`{l}`")).collect();
    if all.is_empty() {
        "".to_owned()
    } else {
        all.join(", ")
    }
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}
