//! The metric names a PromQL expression reads, parsed with a real PromQL parser.

use std::collections::BTreeSet;

use promql_parser::label::METRIC_NAME;
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{walk_expr, ExprVisitor};

use crate::Error;

/// Values for the Grafana variables a dashboard query may use.
#[derive(Clone, Debug)]
pub struct GrafanaVariables {
    /// `$__rate_interval` (and `$__interval`, `$__range`): a PromQL duration such as `1m`.
    pub rate_interval: String,
    /// `$job`: a regular expression of job names.
    pub job: String,
    /// `$instance`: a regular expression of instances.
    pub instance: String,
}

impl Default for GrafanaVariables {
    /// What the dashboard shows with "All" selected and Prometheus's default scrape interval.
    fn default() -> Self {
        GrafanaVariables {
            rate_interval: "1m".to_owned(),
            job: ".*".to_owned(),
            instance: ".*".to_owned(),
        }
    }
}

impl GrafanaVariables {
    /// `expr` with every variable replaced by its value, as Grafana sends it to Prometheus.
    pub fn substitute(&self, expr: &str) -> String {
        // Longest names first, so that `$__rate_interval` is not read as `$__rate` + `_interval`.
        let pairs = [
            ("${__rate_interval}", self.rate_interval.as_str()),
            ("$__rate_interval", self.rate_interval.as_str()),
            ("${__interval}", self.rate_interval.as_str()),
            ("$__interval", self.rate_interval.as_str()),
            ("${__range}", self.rate_interval.as_str()),
            ("$__range", self.rate_interval.as_str()),
            ("${instance}", self.instance.as_str()),
            ("$instance", self.instance.as_str()),
            ("${job}", self.job.as_str()),
            ("$job", self.job.as_str()),
        ];
        pairs
            .iter()
            .fold(expr.to_owned(), |acc, (var, value)| acc.replace(var, value))
    }
}

/// The metric names `expr` selects (`foo`, `foo{...}`, `{__name__="foo"}`), sorted.
///
/// `expr` must not hold Grafana variables any more: see [`GrafanaVariables::substitute`].
pub fn metric_names(expr: &str) -> Result<BTreeSet<String>, Error> {
    let ast = parser::parse(expr).map_err(|message| Error::Promql {
        expr: expr.to_owned(),
        message,
    })?;
    let mut names = Names::default();
    // The visitor never fails and never cuts the walk short.
    let _ = walk_expr(&mut names, &ast);
    Ok(names.0)
}

#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    fn add(&mut self, selector: &VectorSelector) {
        if let Some(name) = &selector.name {
            self.0.insert(name.clone());
        }
        for matcher in &selector.matchers.matchers {
            if matcher.name == METRIC_NAME && matcher.op == promql_parser::label::MatchOp::Equal {
                self.0.insert(matcher.value.clone());
            }
        }
    }
}

impl ExprVisitor for Names {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        match expr {
            Expr::VectorSelector(selector) => self.add(selector),
            Expr::MatrixSelector(matrix) => self.add(&matrix.vs),
            _ => {}
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).unwrap().into_iter().collect()
    }

    #[test]
    fn finds_the_metrics_under_functions_aggregations_and_binary_operators() {
        let expr =
            r#"sum by (job, le) (rate(a_bucket{job=~"x"}[1m])) / on(job) group_left b + count(up)"#;
        assert_eq!(names(expr), ["a_bucket", "b", "up"]);
    }

    #[test]
    fn does_not_take_label_names_functions_or_strings_for_metrics() {
        let expr = r#"label_replace(max without (instance) (c), "dst", "$1", "src", "(.*)")"#;
        assert_eq!(names(expr), ["c"]);
    }

    #[test]
    fn reads_a_name_given_as_a_matcher() {
        assert_eq!(names(r#"{__name__="d_total", job="x"}"#), ["d_total"]);
    }

    #[test]
    fn an_expression_that_does_not_parse_is_an_error_that_quotes_it() {
        let err = metric_names("rate(x[5m]").unwrap_err().to_string();
        assert!(err.contains("rate(x[5m]"), "{err}");
    }

    #[test]
    fn substitutes_the_variables_grafana_fills_in() {
        let vars = GrafanaVariables {
            rate_interval: "4s".into(),
            job: "rsky-.*".into(),
            instance: "a|b".into(),
        };
        let expr = r#"rate(x{job=~"$job",instance=~"${instance}"}[$__rate_interval])"#;
        assert_eq!(
            vars.substitute(expr),
            r#"rate(x{job=~"rsky-.*",instance=~"a|b"}[4s])"#
        );
    }
}
