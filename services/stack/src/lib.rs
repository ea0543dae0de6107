//! Deployment of the rsky pipeline: what the Prometheus, Grafana and compose files are checked
//! against, and the tools that check them.
//!
//! - [`catalog`]: every metric of every service, from their `#[derive(Metrics)]` catalogs (METRICS.md).
//! - [`local`]: the local stack: the whole pipeline and a real Prometheus, without Docker.
//! - [`spec`]: the 56 metric names fixed by the services' spec (dashboards and alerts use them).
//! - [`promql`]: the metric names a PromQL expression reads, with Grafana's variables substituted.
//! - [`dashboard`] and [`rules`]: the queries of the Grafana dashboard and of the alert rules.
//! - [`tool`]: running `promtool`, `docker-compose`, `npx` with errors that say what to install.

pub mod catalog;
pub mod dashboard;
pub mod local;
pub mod promql;
pub mod rules;
pub mod spec;
pub mod tool;

use std::path::PathBuf;

/// The root of the workspace (the directory holding `prometheus.yml`, `grafana/`, ...).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .and_then(|services| services.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// A file of the deployment could not be read or did not have the expected shape.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON or YAML, or lacks a field.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// A PromQL expression does not parse.
    #[error("PromQL does not parse: {message}\n  in: {expr}")]
    Promql {
        /// The expression, after variable substitution.
        expr: String,
        /// The parser's message.
        message: String,
    },
}

pub(crate) fn read(path: &std::path::Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}
