// PromQL for the panels. Every selector filters by the dashboard's $job and $instance variables
// and every rate is taken over $__rate_interval (services/stack/tests/grafana.rs checks both).

/** The label matchers every query carries. */
export const SELECTOR = '{job=~"$job", instance=~"$instance"}';

/** The series of `metric`, filtered by the dashboard's variables. */
export const series = (metric: string): string => `${metric}${SELECTOR}`;

/** The per-second rate of the counter `metric` (a name ending in `_total`). */
export const rateOf = (metric: string): string =>
  `rate(${series(metric)}[$__rate_interval])`;

/** `sum by (labels) (expr)`, or `sum(expr)` without labels. */
export const sum = (expr: string, ...by: string[]): string => aggregate('sum', expr, by);

/** `max by (labels) (expr)`, or `max(expr)` without labels. */
export const max = (expr: string, ...by: string[]): string => aggregate('max', expr, by);

/** The `q` quantile of the histogram `metric` (its name without `_bucket`) over all series. */
export const quantile = (q: number, metric: string): string =>
  `histogram_quantile(${q}, ${sum(rateOf(`${metric}_bucket`), 'le')})`;

function aggregate(op: string, expr: string, by: string[]): string {
  return by.length === 0 ? `${op}(${expr})` : `${op} by (${by.join(', ')}) (${expr})`;
}
