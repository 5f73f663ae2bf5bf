// Ratios of a bench result to the matching run of a baseline file (same runners, agents, backend
// and instances; the newest one labelled `baseline`, else the newest one). A ratio below 1 means
// smaller than the baseline: better for latencies and costs, worse for throughput.
export type BenchResult = Record<string, any> & { config: Record<string, unknown> };

const SAME = ['runners', 'agents', 'backend', 'instances'] as const;

function pick(obj: any, dotted: string): number | null {
  const value = dotted.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
  return typeof value === 'number' ? value : null;
}

export const COMPARED_FIGURES = [
  'lifecyclesPerSecond',
  'createMs.p50',
  'createMs.p99',
  'finalizeAckMs.p50',
  'finalizeAckMs.p99',
  'turnaroundMs.p50',
  'turnaroundMs.p99',
  'cpuSecondsPerLifecycle.controller',
  'cpuSecondsPerLifecycle.temporal',
  'cpuSecondsPerLifecycle.postgres',
  'cpuSecondsPerLifecycle.total',
  'peakRssMB.controller-1',
  'peakRssMB.temporal',
  'historyEventsPerLifecycle.reset.mean',
  'timeouts',
];

export function findBaseline(result: BenchResult, runs: BenchResult[]): BenchResult | undefined {
  const matching = runs.filter((r) => r !== result && SAME.every((k) => r.config?.[k] === result.config[k]));
  return matching.filter((r) => r.label === 'baseline').at(-1) ?? matching.at(-1);
}

export function compareResults(result: BenchResult, runs: BenchResult[]) {
  const base = findBaseline(result, runs);
  if (!base) return { comparedTo: null, note: 'no run with the same runners, agents, backend and instances in the file' };
  const ratios: Record<string, { now: number | null; baseline: number | null; ratio: number | null }> = {};
  for (const figure of COMPARED_FIGURES) {
    const now = pick(result, figure);
    const then = pick(base, figure);
    ratios[figure] = { now, baseline: then, ratio: now !== null && then !== null && then !== 0 ? Math.round((now / then) * 1000) / 1000 : null };
  }
  return { comparedTo: { date: base.date, commit: base.commit, label: base.label ?? null }, ratios };
}
