// The rsky pipeline dashboard: a row for the targets and their processes, then one per service.
// To add a panel, add one line to its row with the helper of its shape (src/panels.ts); the grid
// places it after the row's last panel. `npm run build` regenerates ../dashboards/rsky-pipeline.json.

import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';

import {
  DATASOURCE,
  Panel,
  counterRate,
  errorsByKind,
  counterRates,
  errorRates,
  gaugePerInstance,
  latency,
  sharedGauges,
  statPanel,
  timeseriesPanel,
} from './panels';
import { max, rateOf, series, sum } from './promql';

/** The rows, in order, each with its panels in reading order (left to right, top to bottom). */
export function rows(): [title: string, panels: Panel[]][] {
  return [
    [
      'Targets and processes',
      [
        timeseriesPanel(
          'Targets up',
          "1 when Prometheus's last scrape of the target succeeded, 0 when it failed.",
          { unit: 'none', max: 1 },
          [{ expr: series('up'), legend: '{{job}} {{instance}}' }],
        ),
        timeseriesPanel(
          'Process CPU',
          'CPU time used per second, by process (1 = one core).',
          { unit: 'percentunit' },
          [{ expr: sum(rateOf('process_cpu_seconds_total'), 'job', 'instance'), legend: '{{instance}}' }],
        ),
        timeseriesPanel('Process memory (resident)', 'Resident set size of each process.', { unit: 'bytes' }, [
          { expr: series('process_resident_memory_bytes'), legend: '{{instance}}' },
        ]),
      ],
    ],
    [
      'Ingester',
      [
        counterRate(
          'Firehose events',
          'Firehose frames received per second (well-formed or not).',
          'ingester_firehose_events_total',
        ),
        counterRates(
          'Creates, updates, deletes',
          'Commit operations forwarded per second, by action.',
          {
            create: 'ingester_firehose_create_events_total',
            update: 'ingester_firehose_update_events_total',
            delete: 'ingester_firehose_delete_events_total',
          },
          { stacked: true },
        ),
        counterRate(
          'Filtered operations',
          'Commit operations skipped per second: collection outside app.bsky. and chat.bsky.',
          'ingester_firehose_filtered_operations_total',
        ),
        counterRate('Stream writes', 'Entries written to firehose_live per second.', 'ingester_stream_events_total'),
        sharedGauges('Stream lengths', 'XLEN of the four streams, sampled by the ingester every 10 s.', {
          firehose_live: 'ingester_firehose_live_length',
          firehose_backfill: 'ingester_firehose_backfill_length',
          label_live: 'ingester_label_live_length',
          repo_backfill: 'ingester_repo_backfill_length',
        }),
        gaugePerInstance(
          'Backpressure',
          '1 while the ingester waits for firehose_live to drain below its high-water mark.',
          'ingester_backpressure_active',
          { flag: true },
        ),
        gaugePerInstance(
          'Websocket connections',
          'Open websocket connections to relays and labelers.',
          'ingester_websocket_connections',
        ),
        gaugePerInstance(
          'Events in memory',
          'Events decoded and not yet written to Redis.',
          'ingester_events_in_memory',
        ),
        errorsByKind(
          'Ingester errors by kind',
          'Errors per second by kind: connection, error_frame, decode, invalid_input, redis, serialize, list_repos, panic.',
          'ingester_errors_total',
        ),
        counterRates('Labeler', 'Labeler frames received and labels written to label_live, per second.', {
          'labeler frames': 'ingester_labeler_events_total',
          'labels written': 'ingester_labels_written_total',
        }),
        counterRates(
          'listRepos backfill',
          'Repositories listed and written to repo_backfill, listRepos failures and skipped hosts, per second.',
          {
            fetched: 'ingester_backfill_repos_fetched_total',
            written: 'ingester_backfill_repos_written_total',
            'fetch errors': 'ingester_backfill_fetch_errors_total',
            'cursor skips': 'ingester_backfill_cursor_skips_total',
          },
        ),
        statPanel('listRepos complete', '1 once listRepos finished on every host.', 'none', [
          { expr: max(series('ingester_backfill_complete')), legend: 'complete' },
        ]),
        latency(
          'Batch write latency',
          'Time to write one batch (XADDs and cursor) to Redis: median and 99th percentile.',
          'ingester_batch_write_seconds',
        ),
        latency(
          'listRepos latency',
          'Time to fetch one listRepos page: median and 99th percentile.',
          'ingester_list_repos_seconds',
        ),
      ],
    ],
    [
      'Backfiller',
      [
        counterRates(
          'Repositories',
          'Repositories written and acknowledged, failed attempts and dead-lettered repositories, per second.',
          {
            processed: 'backfiller_repos_processed_total',
            failed: 'backfiller_repos_failed_total',
            'dead-lettered': 'backfiller_repos_dead_lettered_total',
            'skipped (not found, taken down, deactivated)': 'backfiller_repos_skipped_total',
          },
        ),
        statPanel(
          'Backfill progress',
          'Repositories processed and dead-lettered since the backfillers started, and those still waiting in repo_backfill.',
          'short',
          [
            { expr: sum(series('backfiller_repos_processed_total')), legend: 'processed' },
            { expr: sum(series('backfiller_repos_dead_lettered_total')), legend: 'dead-lettered' },
            { expr: max(series('backfiller_repos_waiting')), legend: 'waiting' },
          ],
        ),
        counterRates(
          'Records',
          'Records written to firehose_backfill as create events, and records filtered out, per second.',
          {
            extracted: 'backfiller_records_extracted_total',
            filtered: 'backfiller_records_filtered_total',
          },
        ),
        errorRates(
          'Backfill failures',
          'getRepo failures, unreadable CARs, failed verifications and retries, per second.',
          {
            'CAR fetch errors': 'backfiller_car_fetch_errors_total',
            'CAR parse errors': 'backfiller_car_parse_errors_total',
            'verification errors': 'backfiller_verification_errors_total',
            retries: 'backfiller_retries_attempted_total',
          },
        ),
        errorsByKind(
          'Backfill errors by kind',
          'Failed attempts and malformed entries per second by kind: invalid_input, did_resolution, car_fetch, car_parse, verification, redis.',
          'backfiller_errors_total',
        ),
        timeseriesPanel(
          'Repositories waiting and running',
          'Entries of repo_backfill not yet delivered, and repositories in progress per backfiller.',
          { unit: 'short' },
          [
            { expr: max(series('backfiller_repos_waiting')), legend: 'waiting' },
            { expr: sum(series('backfiller_repos_running'), 'instance'), legend: 'running {{instance}}' },
          ],
        ),
        sharedGauges('Output stream length', 'XLEN of firehose_backfill, sampled by the backfillers.', {
          firehose_backfill: 'backfiller_output_stream_length',
        }),
        latency(
          'Repository latency',
          'Time to process one repository attempt (resolve, fetch, verify, decode, write): median and 99th percentile.',
          'backfiller_repo_duration_seconds',
        ),
        gaugePerInstance(
          'Backfiller backpressure',
          '1 while a backfiller waits for firehose_backfill to drain below its high-water mark.',
          'backfiller_backpressure_active',
          { flag: true },
        ),
      ],
    ],
    [
      'Indexer',
      [
        counterRate(
          'Indexer throughput',
          'Stream events whose database work committed, per second, by indexer.',
          'indexer_events_processed_total',
          { stacked: true },
        ),
        counterRates(
          'Events by type',
          'Events indexed per second, by type.',
          {
            create: 'indexer_create_events_total',
            update: 'indexer_update_events_total',
            delete: 'indexer_delete_events_total',
            repo: 'indexer_repo_events_total',
            account: 'indexer_account_events_total',
            identity: 'indexer_identity_events_total',
          },
          { stacked: true },
        ),
        counterRates(
          'Events by collection',
          'Creates, updates and deletes indexed per second for the collections with their own tables.',
          {
            post: 'indexer_post_events_total',
            like: 'indexer_like_events_total',
            repost: 'indexer_repost_events_total',
            follow: 'indexer_follow_events_total',
            block: 'indexer_block_events_total',
            profile: 'indexer_profile_events_total',
          },
          { stacked: true },
        ),
        counterRate(
          'Database writes',
          'Database transactions committed per second, by indexer.',
          'indexer_db_writes_total',
        ),
        errorRates(
          'Indexer errors',
          'Failed events and labels per second: expected (invalid input, acknowledged), unexpected (left pending), failed acknowledgements.',
          {
            'all errors': 'indexer_errors_total',
            expected: 'indexer_expected_errors_total',
            unexpected: 'indexer_unexpected_errors_total',
            'ack failures': 'indexer_ack_failures_total',
            'dead-lettered': 'indexer_dead_lettered_total',
          },
        ),
        timeseriesPanel(
          'Records by collection and action',
          'Record events indexed per second, by collection and action (create, update, delete).',
          { unit: 'ops', stacked: true },
          [
            {
              expr: sum(rateOf('indexer_records_by_collection_total'), 'collection', 'action'),
              legend: '{{collection}} {{action}}',
            },
          ],
        ),
        errorsByKind(
          'Indexer errors by kind',
          'Failed events and labels per second by kind: invalid_input, database_unavailable, database, panic.',
          'indexer_errors_total',
        ),
        timeseriesPanel(
          'Stale events by kind',
          'Events and labels skipped per second because their order guard already holds something newer (record rev, account or identity seq, label cts), by kind. Processed and acknowledged, not errors: a steady rate means late replays or indexers racing on one account.',
          { unit: 'ops', stacked: false },
          [{ expr: sum(rateOf('indexer_stale_events_total'), 'kind'), legend: '{{kind}}' }],
        ),
        sharedGauges(
          'Pending messages',
          "Entries delivered to the indexers' consumer group and not yet acknowledged (group-wide, so the maximum over the indexers).",
          { pending: 'indexer_pending_messages' },
        ),
        gaugePerInstance('Active tasks', 'Events and label batches being indexed, by indexer.', 'indexer_active_tasks'),
        counterRates('Labels', 'Labels read, written and removed by negations, per second.', {
          processed: 'indexer_labels_processed_total',
          added: 'indexer_labels_added_total',
          removed: 'indexer_labels_removed_total',
        }),
        latency(
          'Write latency',
          'Time to index one event or label batch, first statement to commit: median and 99th percentile.',
          'indexer_write_duration_seconds',
        ),
        latency(
          'Stream to commit latency',
          "Time from an entry's XADD to its committed row: median and 99th percentile.",
          'indexer_stream_to_commit_seconds',
        ),
        timeseriesPanel(
          'Database pool',
          "Connections in each indexer's pool, idle ones, and tasks waiting for one.",
          { unit: 'short' },
          [
            { expr: sum(series('indexer_db_pool_connections'), 'instance'), legend: 'connections {{instance}}' },
            { expr: sum(series('indexer_db_pool_idle_connections'), 'instance'), legend: 'idle {{instance}}' },
            { expr: sum(series('indexer_db_pool_waiting_tasks'), 'instance'), legend: 'waiting {{instance}}' },
          ],
        ),
      ],
    ],
  ];
}

/** The `job` and `instance` variables: multi-valued, "All" by default, listed from `up`. */
function labelVariable(name: string, label: string, query: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .query({ query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 })
    .current({ text: ['All'], value: ['$__all'] })
    .hide(dashboard.VariableHide.DontHide)
    .includeAll(true)
    .allValue('.*')
    .multi(true)
    .options([])
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .regex('')
    .sort(dashboard.VariableSort.AlphabeticalAsc);
}

/** The dashboard, as Grafana's JSON model. */
export function build(): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder('rsky pipeline')
    .uid('rsky-pipeline')
    .id(null)
    .version(1)
    .description(
      'The rsky AppView pipeline (Rust services): ingester, backfillers, indexers. Metric names: METRICS.md.',
    )
    .tags(['rsky', 'atproto', 'pipeline'])
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .fiscalYearStartMonth(0)
    .liveNow(false)
    .weekStart('')
    .timezone('')
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .links([])
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .name('Annotations & Alerts')
        .builtIn(1)
        .type('dashboard')
        .datasource({ type: 'grafana', uid: '-- Grafana --' })
        .enable(true)
        .hide(true)
        .iconColor('rgba(0, 211, 255, 1)'),
    )
    .withVariable(
      new dashboard.DatasourceVariableBuilder('datasource')
        .label('Data source')
        .type('prometheus')
        .current({ text: 'Prometheus', value: 'prometheus' })
        .hide(dashboard.VariableHide.DontHide)
        .includeAll(false)
        .multi(false)
        .regex(''),
    )
    .withVariable(labelVariable('job', 'Job', 'label_values(up{job=~"rsky-.*"}, job)'))
    .withVariable(labelVariable('instance', 'Instance', 'label_values(up{job=~"$job"}, instance)'));
  for (const [title, panels] of rows()) {
    builder.withRow(new dashboard.RowBuilder(title).collapsed(false));
    for (const panel of panels) {
      builder.withPanel(panel);
    }
  }
  const model = builder.build();
  // Panel ids: 1, 2, ... in order, rows included, so that links to a panel stay stable.
  (model.panels ?? []).forEach((panel, index) => {
    panel.id = index + 1;
  });
  // Two defaults of the SDK that today's Grafana does not share. It gives every variable the
  // interval variables' `auto*` fields, which Grafana's schema (@grafana/schema, which the tests
  // check the JSON against) has on no other kind; and it places annotation toggles in the
  // controls menu, where Grafana's default is above the panels.
  for (const annotation of model.annotations?.list ?? []) {
    delete annotation.placement;
  }
  for (const variable of model.templating?.list ?? []) {
    if (variable.type !== 'interval') {
      delete variable.auto;
      delete variable.auto_min;
      delete variable.auto_count;
    }
  }
  return model;
}
