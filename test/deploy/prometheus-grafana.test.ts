// deploy/prometheus/rules.yml and deploy/grafana/: every alert rule is complete (expr, for,
// severity, summary, a runbook anchor), and every series a rule or a dashboard query names is one
// the controller exports. The names are listed once below and checked against the source: the
// e2epool_* ones against the `name: '…'` literals of src/metrics/, the temporal_* ones (the Temporal
// SDK core's worker metrics, merged into /metrics with the prefix temporal_) against the metric
// names in the SDK core's sources shipped in node_modules. No promtool here (Debian's prometheus
// package is ~100 MB), so PromQL is checked by a small tokenizer, not a parser.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../temporal/tool-paths.js';

/** e2epool series the committed src/metrics/ exports. */
const EXPORTED_METRICS = [
  'e2epool_checkpoints_total',
  'e2epool_finalize_total',
  'e2epool_runners',
  'e2epool_active_checkpoints',
  'e2epool_needs_attention',
  'e2epool_agent_sessions',
  'e2epool_queue_depth',
  'e2epool_database_up',
  'e2epool_create_duration_seconds',
  'e2epool_reset_duration_seconds',
  'e2epool_readiness_duration_seconds',
  'e2epool_turnaround_seconds',
  'e2epool_build_info',
  'e2epool_temporal_up',
  'e2epool_maintenance',
  'e2epool_alerts_open',
  'e2epool_webhook_inbox_pending',
  'e2epool_webhook_inbox_given_up',
  'e2epool_create_rejections_total',
  'e2epool_orphan_snapshots',
  'e2epool_http_request_duration_seconds',
];


/** The Temporal SDK core's worker metrics, as its Prometheus exporter names them with our options. */
const SDK_METRICS = [
  'temporal_worker_task_slots_available',
  'temporal_num_pollers',
  'temporal_workflow_task_schedule_to_start_latency_seconds',
  'temporal_activity_schedule_to_start_latency_seconds',
  'temporal_long_request_failure_total',
  'temporal_request_failure_total',
];

/** Prometheus' own series. */
const PROMETHEUS_METRICS = ['up'];

const HISTOGRAMS = new Set([
  'e2epool_create_duration_seconds',
  'e2epool_reset_duration_seconds',
  'e2epool_readiness_duration_seconds',
  'e2epool_turnaround_seconds',
  'e2epool_http_request_duration_seconds',
  'temporal_workflow_task_schedule_to_start_latency_seconds',
  'temporal_activity_schedule_to_start_latency_seconds',
]);

/** Label values the rules and dashboards may select (closed sets of the controller). */
const LABEL_VALUES: Record<string, Record<string, string[]>> = {
  // Exclusive: every runner is in exactly one, so the states sum to the runner count.
  e2epool_runners: { state: ['needs_attention', 'drained', 'offline', 'busy', 'idle'] },
  e2epool_alerts_open: { severity: ['critical', 'warning', 'info'] },
  temporal_worker_task_slots_available: { worker_type: ['WorkflowWorker', 'ActivityWorker', 'LocalActivityWorker', 'NexusWorker'] },
};

/**
 * Runbook anchors the rules point at that docs/runbook.md does not have yet (it is being rewritten);
 * the test reports each once it exists. Any other anchor must exist now.
 */

const ALLOWED = new Set([...EXPORTED_METRICS, ...SDK_METRICS, ...PROMETHEUS_METRICS]);

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'offset', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'Inf', 'NaN']);

/** Series names in a PromQL expression (functions, keywords, labels, strings and numbers left out). */
function seriesNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, ' ');
  const names: string[] = [];
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    if (m[1] || PROMQL_WORDS.has(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

/** The metric a series belongs to: histogram series carry _bucket, _count or _sum. */
function metricOf(series: string): string {
  const m = /^(.*)_(bucket|count|sum)$/.exec(series);
  return m && HISTOGRAMS.has(m[1]!) ? m[1]! : series;
}

/** `metric{label="value", label=~"a|b"}` selectors of an expression, equality and regex matchers. */
function selectors(expr: string): Array<{ metric: string; label: string; values: string[] }> {
  const out: Array<{ metric: string; label: string; values: string[] }> = [];
  for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)) {
    for (const matcher of m[2]!.matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)) {
      if (matcher[2] === '!~' || matcher[2] === '!=') continue;
      out.push({ metric: metricOf(m[1]!), label: matcher[1]!, values: matcher[2] === '=~' ? matcher[3]!.split('|') : [matcher[3]!] });
    }
  }
  return out;
}

function assertKnownSeries(expr: string, where: string): void {
  const names = seriesNames(expr);
  assert.ok(names.length > 0, `${where}: no series in ${expr}`);
  for (const series of names) assert.ok(ALLOWED.has(metricOf(series)), `${where} uses ${series}, which is not a known series (${expr})`);
  for (const { metric, label, values } of selectors(expr)) {
    const allowed = LABEL_VALUES[metric]?.[label];
    if (!allowed) continue;
    for (const value of values) assert.ok(allowed.includes(value), `${where}: ${metric}{${label}="${value}"} is not one of ${allowed.join(', ')}`);
  }
}

/**
 * Series every instance reports alike (read from the database, or counted from its end transitions):
 * summing them over instances multiplies by the instance count. The per-instance ones (reachability,
 * build info, HTTP, refused creates, SDK worker metrics) are left out.
 */
const DATABASE_WIDE = new Set(EXPORTED_METRICS.filter((m) => !['e2epool_database_up', 'e2epool_temporal_up', 'e2epool_build_info', 'e2epool_create_rejections_total', 'e2epool_http_request_duration_seconds'].includes(m)));
const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);

interface Call {
  fn: string;
  grouping?: { kind: 'by' | 'without'; labels: string[] };
}

/** The calls whose parentheses enclose position `index` of `expr`, innermost first. */
function enclosingCalls(expr: string, index: number): Call[] {
  const calls: Call[] = [];
  let depth = 0;
  for (let i = index - 1; i >= 0; i--) {
    if (expr[i] === ')') depth++;
    else if (expr[i] === '(') {
      if (depth > 0) {
        depth--;
        continue;
      }
      const before = expr.slice(0, i);
      const grouped = /([a-zA-Z_]+)\s+(by|without)\s*\(([^)]*)\)\s*$/.exec(before);
      if (grouped) {
        calls.push({ fn: grouped[1]!, grouping: { kind: grouped[2] as 'by' | 'without', labels: grouped[3]!.split(',').map((l) => l.trim()).filter(Boolean) } });
        continue;
      }
      const plain = /([a-zA-Z_]+)\s*$/.exec(before);
      calls.push({ fn: plain && !PROMQL_WORDS.has(plain[1]!) ? plain[1]! : '' });
    }
  }
  return calls;
}

function assertAggregation(expr: string, where: string): void {
  for (const m of expr.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const series = m[0];
    if (!ALLOWED.has(metricOf(series)) || /"[^"]*$/.test(expr.slice(0, m.index))) continue;
    const calls = enclosingCalls(expr, m.index);
    // Counters, and the _bucket/_count/_sum series of histograms, only grow.
    if (/_total$/.test(series) || metricOf(series) !== series) {
      assert.ok(['rate', 'increase', 'irate'].includes(calls[0]?.fn ?? ''), `${where}: ${series} is a counter: read it with rate() or increase()`);
    }
    if (!DATABASE_WIDE.has(metricOf(series))) continue;
    // Innermost out: a max or min must combine the instances before anything drops the instance label.
    let combined = false;
    for (const call of calls) {
      if (!AGGREGATIONS.has(call.fn)) continue;
      if (call.fn === 'max' || call.fn === 'min') {
        combined = true;
        break;
      }
      const keepsInstance = call.grouping && (call.grouping.kind === 'without' ? !call.grouping.labels.includes('instance') : call.grouping.labels.includes('instance'));
      assert.ok(keepsInstance, `${where}: ${call.fn}() over instances of ${series}, which every instance reports alike: combine with max first`);
    }
    assert.ok(combined, `${where}: ${series} is reported alike by every instance: combine the instances with max`);
  }
}

interface Rule {
  alert?: string;
  expr?: unknown;
  for?: unknown;
  labels?: { severity?: unknown };
  annotations?: { summary?: unknown; runbook?: unknown };
}

const rules = (): Rule[] =>
  (parse(readFileSync(path.join(repoRoot, 'deploy', 'prometheus', 'rules.yml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

/** GitHub's heading anchors of a Markdown file. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    out.add(m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return out;
}

/** Every metric name literal of src/metrics/*.ts; `${kind}` names expanded with the duration kinds. */
function exportedNames(): Set<string> {
  const dir = path.join(repoRoot, 'src', 'metrics');
  const names = new Set<string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(path.join(dir, file), 'utf8');
    const kinds = [...(/const BUCKETS[^=]*=\s*\{([^}]*)\}/.exec(source)?.[1] ?? '').matchAll(/^\s*(\w+):/gm)].map((m) => m[1]!);
    for (const m of source.matchAll(/name: '([a-z0-9_]+)'/g)) names.add(m[1]!);
    for (const m of source.matchAll(/['`](e2epool_[a-z0-9_]*\$\{kind\}[a-z0-9_]*)['`]/g)) for (const kind of kinds) names.add(m[1]!.replace('${kind}', kind));
    for (const m of source.matchAll(/'(e2epool_[a-z0-9_]+)'/g)) names.add(m[1]!);
  }
  return names;
}

function rustSources(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const file = path.join(dir, entry);
    if (statSync(file).isDirectory()) rustSources(file, out);
    else if (entry.endsWith('.rs')) out.push(readFileSync(file, 'utf8'));
  }
  return out;
}

describe('metric names', () => {
  it('the exported list matches what src/metrics/ defines', () => {
    const exported = exportedNames();
    for (const name of EXPORTED_METRICS) assert.ok(exported.has(name), `${name} is not defined in src/metrics/ (name: '${name}')`);
  });

  it('the temporal_ names are the SDK core worker metrics under the prefix the runtime sets', () => {
    const runtime = path.join(repoRoot, 'temporal', 'runtime.ts');
    assert.match(readFileSync(runtime, 'utf8'), /metricPrefix: 'temporal_'/);
    const crates = path.join(repoRoot, 'node_modules', '@temporalio', 'core-bridge', 'sdk-core', 'crates');
    assert.ok(existsSync(crates), `${crates}: the SDK core sources ship with @temporalio/core-bridge`);
    const source = rustSources(crates).join('\n');
    for (const name of SDK_METRICS) {
      // The exporter adds the prefix, _seconds for durations (unitSuffix) and _total for counters.
      const stem = name.replace(/^temporal_/, '').replace(/_(seconds|total)$/, '');
      assert.ok(source.includes(`"${stem}"`), `${name}: the SDK core defines no metric "${stem}"`);
    }
    for (const label of ['worker_type', 'task_queue', 'poller_type', 'operation']) assert.ok(source.includes(`"${label}"`), `SDK label ${label}`);
    for (const workerType of LABEL_VALUES.temporal_worker_task_slots_available!.worker_type!) assert.ok(source.includes(`"${workerType}"`), workerType);
  });

  it('the PromQL tokenizer finds series and skips functions, labels and keywords', () => {
    assert.deepEqual(seriesNames('max(e2epool_runners{state="offline"}) / clamp_min(max(sum without (state) (e2epool_runners)), 1) > 0.5'), ['e2epool_runners', 'e2epool_runners']);
    assert.deepEqual(seriesNames('histogram_quantile(0.95, sum by (le, route) (rate(e2epool_http_request_duration_seconds_bucket[5m]))) > 1e-3'), ['e2epool_http_request_duration_seconds_bucket']);
    assert.deepEqual(seriesNames('up{job="e2epool"} == 0 and on() vector(1)'), ['up']);
    assert.equal(metricOf('e2epool_http_request_duration_seconds_count'), 'e2epool_http_request_duration_seconds');
    assert.equal(metricOf('e2epool_checkpoints_total'), 'e2epool_checkpoints_total');
    assert.throws(() => assertKnownSeries('e2epool_runners{state="online"}', 'self-check'), /not one of/);
    assert.throws(() => assertKnownSeries('rate(e2epool_no_such_total[5m])', 'self-check'), /not a known series/);
    assert.throws(() => assertAggregation('sum(e2epool_needs_attention) > 0', 'self-check'), /combine with max first/);
    assert.throws(() => assertAggregation('e2epool_queue_depth > 20', 'self-check'), /combine the instances with max/);
    assert.throws(() => assertAggregation('sum(e2epool_create_rejections_total)', 'self-check'), /rate\(\) or increase\(\)/);
    assertAggregation('max(e2epool_runners{state="offline"}) / clamp_min(max(sum without (state) (e2epool_runners)), 1)', 'self-check');
    assertAggregation('histogram_quantile(0.5, sum by (le) (max by (le, backend) (rate(e2epool_reset_duration_seconds_bucket[1h]))))', 'self-check');
  });
});

describe('deploy/prometheus/rules.yml', () => {
  it('every rule has expr, for, a severity, a summary and a runbook anchor; names are unique', () => {
    const all = rules();
    assert.ok(all.length >= 15, `${all.length} rules`);
    const names = new Set<string>();
    for (const r of all) {
      const what = JSON.stringify(r);
      assert.match(String(r.alert ?? ''), /^E2epool[A-Za-z0-9]+$/, what);
      assert.ok(!names.has(r.alert!), `${r.alert} twice`);
      names.add(r.alert!);
      assert.ok(typeof r.expr === 'string' && r.expr.trim() !== '', `${r.alert}: expr`);
      assert.match(String(r.for ?? ''), /^\d+[smh]$/, `${r.alert}: for`);
      assert.ok(['critical', 'warning'].includes(String(r.labels?.severity)), `${r.alert}: severity`);
      assert.ok(typeof r.annotations?.summary === 'string' && r.annotations.summary !== '', `${r.alert}: summary`);
      assert.match(String(r.annotations?.runbook ?? ''), /^docs\/runbook\.md#[a-z0-9-]+$/, `${r.alert}: runbook`);
    }
  });

  it('every series a rule names is exported, with label values from the closed sets', () => {
    for (const r of rules()) assertKnownSeries(String(r.expr), r.alert!);
  });

  it('counters and histograms are read with rate/increase; database-wide series are combined over instances with max', () => {
    for (const r of rules()) assertAggregation(String(r.expr), r.alert!);
  });

  it('the runbook anchors exist in docs/runbook.md', () => {
    const existing = anchors(readFileSync(path.join(repoRoot, 'docs', 'runbook.md'), 'utf8'));
    for (const r of rules()) {
      const anchor = String(r.annotations!.runbook).split('#')[1]!;
      assert.ok(existing.has(anchor), `${r.alert}: docs/runbook.md has no section #${anchor}`);
    }
  });
});

describe('deploy/grafana', () => {
  const dashboard = JSON.parse(readFileSync(path.join(repoRoot, 'deploy', 'grafana', 'e2epool.json'), 'utf8'));
  const datasources = parse(readFileSync(path.join(repoRoot, 'deploy', 'grafana', 'provisioning', 'datasources.yml'), 'utf8'));
  const providers = parse(readFileSync(path.join(repoRoot, 'deploy', 'grafana', 'provisioning', 'dashboards.yml'), 'utf8'));

  it('the dashboard is a Grafana dashboard: uid, title, schemaVersion, panels with a datasource and targets', () => {
    assert.match(dashboard.uid, /^[a-zA-Z0-9_-]{1,40}$/);
    assert.equal(typeof dashboard.title, 'string');
    assert.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
    assert.ok(Array.isArray(dashboard.panels) && dashboard.panels.length > 0);
    const ids = new Set<number>();
    const source = datasources.datasources.find((d: { type: string }) => d.type === 'prometheus');
    for (const panel of dashboard.panels) {
      assert.ok(Number.isInteger(panel.id) && !ids.has(panel.id), `panel id ${panel.id}`);
      ids.add(panel.id);
      for (const key of ['h', 'w', 'x', 'y']) assert.ok(Number.isInteger(panel.gridPos?.[key]), `${panel.title}: gridPos.${key}`);
      assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title}: within the 24 columns`);
      if (panel.type === 'row') continue;
      assert.ok(['timeseries', 'stat', 'table', 'gauge', 'bargauge'].includes(panel.type), `${panel.title}: type ${panel.type}`);
      assert.deepEqual(panel.datasource, { type: 'prometheus', uid: source.uid }, `${panel.title}: the provisioned data source`);
      assert.ok(Array.isArray(panel.targets) && panel.targets.length > 0, `${panel.title}: targets`);
      const refIds = new Set<string>();
      for (const target of panel.targets) {
        assert.ok(target.refId && !refIds.has(target.refId), `${panel.title}: refId`);
        refIds.add(target.refId);
        assert.deepEqual(target.datasource ?? panel.datasource, panel.datasource);
        assert.equal(typeof target.expr, 'string', `${panel.title}: expr`);
      }
    }
  });

  it('every series a dashboard query names is exported, with label values from the closed sets', () => {
    for (const panel of dashboard.panels) for (const target of panel.targets ?? []) assertKnownSeries(target.expr, `panel "${panel.title}"`);
  });

  it('dashboard queries read counters with rate/increase and combine database-wide series with max', () => {
    for (const panel of dashboard.panels) for (const target of panel.targets ?? []) assertAggregation(target.expr, `panel "${panel.title}"`);
  });

  it('provisioning: a Prometheus data source with the uid the dashboard uses, and a file provider', () => {
    assert.equal(datasources.apiVersion, 1);
    const source = datasources.datasources.find((d: { type: string }) => d.type === 'prometheus');
    assert.ok(source?.uid, 'a prometheus data source with a uid');
    assert.equal(source.access, 'proxy');
    assert.match(source.url, /^http:\/\/prometheus:9090\/?$/, 'the compose file\'s prometheus service');
    assert.equal(providers.apiVersion, 1);
    const provider = providers.providers.find((p: { type: string }) => p.type === 'file');
    assert.ok(provider?.options?.path, 'a file provider with a path');
  });
});
