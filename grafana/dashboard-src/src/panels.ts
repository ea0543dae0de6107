// The panel shapes the dashboard repeats. A panel is one call: a title, a description, and the
// metrics it reads; the layout, the datasource, the query options and the look come from here.

import * as common from '@grafana/grafana-foundation-sdk/common';
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

import { max, quantile, rateOf, series, sum } from './promql';

/** Every panel and query reads the datasource the `datasource` variable selects. */
export const DATASOURCE: { type: string; uid: string } = { type: 'prometheus', uid: '${datasource}' };

/** Panels are a third of the 24-column grid wide and 8 rows high: three to a line. */
const WIDTH = 8;
const HEIGHT = 8;

/** One query of a panel: its PromQL and its legend. */
export interface Query {
  expr: string;
  legend: string;
}

/** What a panel may change from the defaults. */
export interface Look {
  /** Grafana's unit id (`ops`, `short`, `s`, `bytes`, `percentunit`, `none`, ...). */
  unit: string;
  /** Stack the series (parts of one whole); lines overlap otherwise. */
  stacked?: boolean;
  /** The y axis maximum; the minimum is always 0. */
  max?: number;
}

/** A panel builder, as `DashboardBuilder.withPanel` takes it. */
export type Panel = cog.Builder<dashboard.Panel>;

/** A time series panel of `queries`. */
export function timeseriesPanel(title: string, description: string, look: Look, queries: Query[]): Panel {
  const panel = new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .height(HEIGHT)
    .span(WIDTH)
    .unit(look.unit)
    .min(0)
    .drawStyle(common.GraphDrawStyle.Line)
    .lineWidth(1)
    .fillOpacity(10)
    .showPoints(common.VisibilityMode.Never)
    .spanNulls(false)
    .stacking(
      new common.StackingConfigBuilder()
        .mode(look.stacked ? common.StackingMode.Normal : common.StackingMode.None)
        .group('A'),
    )
    .legend(
      new common.VizLegendOptionsBuilder()
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom)
        .showLegend(true),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending),
    );
  if (look.max !== undefined) {
    panel.max(look.max);
  }
  queries.forEach((q, i) => panel.withTarget(target(q, i).range()));
  return panel;
}

/** A stat panel showing the last value of each of `queries` (instant queries). */
export function statPanel(title: string, description: string, unit: string, queries: Query[]): Panel {
  const panel = new stat.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .height(HEIGHT)
    .span(WIDTH)
    .unit(unit)
    .min(0)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false))
    .colorMode(common.BigValueColorMode.None)
    .graphMode(common.BigValueGraphMode.Area)
    .justifyMode(common.BigValueJustifyMode.Auto)
    .orientation(common.VizOrientation.Auto)
    .textMode(common.BigValueTextMode.Auto);
  queries.forEach((q, i) => panel.withTarget(target(q, i).instant()));
  return panel;
}

function target(q: Query, index: number): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder()
    .datasource(DATASOURCE)
    .editorMode(prometheus.QueryEditorMode.Code)
    .expr(q.expr)
    .legendFormat(q.legend)
    .refId(String.fromCharCode('A'.charCodeAt(0) + index));
}

/** Legend → metric name, in the order the series are drawn. */
export type Metrics = Record<string, string>;

/** The rate of one counter, one series per instance. */
export function counterRate(title: string, description: string, metric: string, look: Partial<Look> = {}): Panel {
  return timeseriesPanel(title, description, { unit: 'ops', ...look }, [
    { expr: sum(rateOf(metric), 'instance'), legend: '{{instance}}' },
  ]);
}

/** The rates of several counters, one series per counter (summed over the instances of a job). */
export function counterRates(title: string, description: string, metrics: Metrics, look: Partial<Look> = {}): Panel {
  return timeseriesPanel(title, description, { unit: 'ops', ...look }, byJob(metrics, (m) => sum(rateOf(m), 'job')));
}

/**
 * Error rates: counters of failures, one series per counter. Errors stay lines (never stacked)
 * so that a rare kind is not hidden under a frequent one.
 */
export function errorRates(title: string, description: string, metrics: Metrics): Panel {
  return counterRates(title, description, metrics, { stacked: false });
}

/**
 * A typed errors family broken down by its `kind` label: `sum by (kind) (rate(...))`, one line
 * per kind (never stacked), every kind present from the first scrape.
 */
export function errorsByKind(title: string, description: string, metric: string): Panel {
  return timeseriesPanel(title, description, { unit: 'ops', stacked: false }, [
    { expr: sum(rateOf(metric), 'kind'), legend: '{{kind}}' },
  ]);
}

/** One gauge per instance: `sum by (instance)`, or `max by (instance)` for a 0/1 flag. */
export function gaugePerInstance(
  title: string,
  description: string,
  metric: string,
  look: Partial<Look> & { flag?: boolean } = {},
): Panel {
  const { flag, ...rest } = look;
  const expr = flag ? max(series(metric), 'instance') : sum(series(metric), 'instance');
  return timeseriesPanel(title, description, { unit: flag ? 'none' : 'short', ...rest }, [
    { expr, legend: '{{instance}}' },
  ]);
}

/**
 * Gauges every instance reports the same value of (a stream's length, sampled by each
 * instance): the maximum over the instances, one series per gauge.
 */
export function sharedGauges(title: string, description: string, metrics: Metrics): Panel {
  return timeseriesPanel(title, description, { unit: 'short' }, byJob(metrics, (m) => max(series(m))));
}

/** The median and the 99th percentile of a histogram (its name without `_bucket`), in seconds. */
export function latency(title: string, description: string, histogram: string): Panel {
  return timeseriesPanel(title, description, { unit: 's' }, [
    { expr: quantile(0.5, histogram), legend: 'p50' },
    { expr: quantile(0.99, histogram), legend: 'p99' },
  ]);
}

function byJob(metrics: Metrics, expr: (metric: string) => string): Query[] {
  return Object.entries(metrics).map(([legend, metric]) => ({ expr: expr(metric), legend }));
}
