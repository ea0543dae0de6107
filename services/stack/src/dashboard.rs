//! The Grafana dashboard: its panels, their queries and its template variables.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{read, Error};

/// Where the dashboard lives, relative to the workspace root.
pub const DASHBOARD_PATH: &str = "grafana/dashboards/rsky-pipeline.json";

/// One query of one panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanelQuery {
    /// The panel's title.
    pub panel: String,
    /// The row the panel is in (the last row panel above it), empty before the first row.
    pub row: String,
    /// The query's `refId`.
    pub ref_id: String,
    /// The PromQL, with Grafana variables still in it.
    pub expr: String,
    /// The panel's datasource uid (`${datasource}` on this dashboard).
    pub datasource: Option<String>,
}

/// A dashboard JSON, parsed.
#[derive(Clone, Debug)]
pub struct Dashboard {
    path: PathBuf,
    json: Value,
}

impl Dashboard {
    /// Reads the dashboard at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = read(path)?;
        let json = serde_json::from_str(&text).map_err(|e| Error::Format {
            path: path.to_owned(),
            message: format!("not valid JSON: {e}"),
        })?;
        Ok(Dashboard {
            path: path.to_owned(),
            json,
        })
    }

    /// The project's dashboard ([`DASHBOARD_PATH`]).
    pub fn project() -> Result<Self, Error> {
        Self::load(&crate::workspace_root().join(DASHBOARD_PATH))
    }

    /// The parsed JSON.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// Every panel that is not a row, in order, including panels inside collapsed rows,
    /// with the title of the row it belongs to.
    pub fn panels(&self) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        let mut row = String::new();
        for panel in array(&self.json, "panels") {
            if panel["type"] == "row" {
                row = panel["title"].as_str().unwrap_or_default().to_owned();
                for inner in array(panel, "panels") {
                    out.push((row.clone(), inner));
                }
            } else {
                out.push((row.clone(), panel));
            }
        }
        out
    }

    /// The titles of the row panels, in order.
    pub fn rows(&self) -> Vec<String> {
        array(&self.json, "panels")
            .filter(|p| p["type"] == "row")
            .map(|p| p["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every query of every panel. A target without an `expr` is an error.
    pub fn queries(&self) -> Result<Vec<PanelQuery>, Error> {
        let mut out = Vec::new();
        for (row, panel) in self.panels() {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            for target in array(panel, "targets") {
                let expr = target["expr"].as_str().ok_or_else(|| Error::Format {
                    path: self.path.clone(),
                    message: format!("panel {title:?}: a target without an \"expr\""),
                })?;
                out.push(PanelQuery {
                    panel: title.clone(),
                    row: row.clone(),
                    ref_id: target["refId"].as_str().unwrap_or_default().to_owned(),
                    expr: expr.to_owned(),
                    datasource: target["datasource"]["uid"]
                        .as_str()
                        .or_else(|| panel["datasource"]["uid"].as_str())
                        .map(str::to_owned),
                });
            }
        }
        Ok(out)
    }

    /// The queries of the `query` variables, as `(name, query)`.
    pub fn variable_queries(&self) -> Vec<(String, String)> {
        array(&self.json["templating"], "list")
            .filter(|v| v["type"] == "query")
            .filter_map(|v| {
                let query = v["query"]["query"]
                    .as_str()
                    .or_else(|| v["query"].as_str())?;
                Some((
                    v["name"].as_str().unwrap_or_default().to_owned(),
                    query.to_owned(),
                ))
            })
            .collect()
    }

    /// The template variables, as `(name, type)`.
    pub fn variables(&self) -> Vec<(String, String)> {
        array(&self.json["templating"], "list")
            .map(|v| {
                (
                    v["name"].as_str().unwrap_or_default().to_owned(),
                    v["type"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

fn array<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value[key].as_array().into_iter().flatten()
}
