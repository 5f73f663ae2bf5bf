// `npm run bench`: starts a fresh stack (PostgreSQL database, Temporal dev server, `e2epool serve`),
// drives it with N simulated runner agents doing back-to-back lifecycles, and prints one JSON object:
// throughput, latencies, errors, CPU per lifecycle per process, peak RSS, history events per
// lifecycle and an invariant check after the drain. Progress goes to stderr.
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startStack, newToken, sleep, type RunnerEntry, type Stack } from './lib/stack.js';
import { SimAgent, type AgentKind } from './lib/sim-agents.js';
import { LoadRecorder, runJobLoop } from './lib/job-loop.js';
import { distribution, machineFacts, round } from './lib/summary.js';
import { findPostmasterPid, treeCpuSeconds, PeakRssSampler } from './lib/proc-stats.js';
import { connect, listCheckpointWorkflows } from './lib/temporal-facts.js';
import { compareResults, type BenchResult } from './lib/compare.js';
import { startProxmoxBackend, type ProxmoxBackend } from './lib/proxmox-backend.js';
import { repoRoot } from '../temporal/tool-paths.js';
import { parseCommandLine } from './lib/cli.js';

const HELP = `Usage: npm run bench -- [options]

Starts a fresh PostgreSQL database, a Temporal dev server (e2epool temporal-dev) and e2epool serve,
drives them with simulated runner agents over the real agent WebSocket protocol, and prints one JSON
object with throughput, latencies, errors, CPU and memory per process and history size.

Options:
  --runners N          simulated runners, one agent each (default 10)
  --duration S         measured seconds (default 60)
  --warmup S           seconds of load before measuring starts (default 10)
  --agents KIND        legacy (no hello, raw exec) | current (hello, commands by name) (default legacy)
  --backend KIND       bare_metal | proxmox (Proxmox simulator, realistic task times) (default bare_metal)
  --instances N        e2epool serve instances; agents are spread over them (default 1)
  --job-ms MS          time between create and finalize (default 0)
  --success-ratio R    share of jobs finalized with success (default 0.5)
  --poll-ms MS         status poll interval while waiting for the end (default 100)
  --save               append the result to the results file
  --results FILE       the results file (default bench/results.json)
  --label TEXT         label stored with the result (e.g. baseline)
  --compare FILE       also print each figure as a ratio to the matching run in FILE
  --keep               keep the work directory (logs, inventory) and print its path
  --help               this text

Figures: lifecycles/s counts checkpoints that ended inside the measured window; create, finalize-ack
and turnaround (finalize sent -> end state seen) are in ms; cpuSecondsPerLifecycle splits controller,
Temporal server and PostgreSQL (from /proc, children included); errors are keyed request:code.`;

const { args, usage, numberOption } = parseCommandLine(
  {
    runners: { type: 'string', default: '10' },
    duration: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    agents: { type: 'string', default: 'legacy' },
    backend: { type: 'string', default: 'bare_metal' },
    instances: { type: 'string', default: '1' },
    'job-ms': { type: 'string', default: '0' },
    'success-ratio': { type: 'string', default: '0.5' },
    'poll-ms': { type: 'string', default: '100' },
    save: { type: 'boolean', default: false },
    results: { type: 'string', default: path.join(repoRoot, 'bench', 'results.json') },
    label: { type: 'string' },
    compare: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  } as const,
  HELP,
);
const intArg = (name: Parameters<typeof numberOption>[0], min: number, max: number) => numberOption(name, min, max);
const runners = intArg('runners', 1, 1000);
const durationS = intArg('duration', 1, 86_400);
const warmupS = intArg('warmup', 0, 3600);
const instances = intArg('instances', 1, 8);
const jobMs = intArg('job-ms', 0, 3_600_000);
const pollMs = intArg('poll-ms', 10, 60_000);
const successRatio = Number(args['success-ratio']);
if (!(successRatio >= 0 && successRatio <= 1)) usage('--success-ratio must be a number from 0 to 1');
if (args.agents !== 'legacy' && args.agents !== 'current') usage('--agents must be legacy or current');
if (args.backend !== 'bare_metal' && args.backend !== 'proxmox') usage('--backend must be bare_metal or proxmox');
const agentKind = args.agents as AgentKind;
const backendKind = args.backend as 'bare_metal' | 'proxmox';
const savePath = args.save ? path.resolve(args.results) : undefined;
const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** A seeded PRNG (mulberry32): runs with the same options make the same success/failure choices. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(path.join(tmpdir(), 'e2epool-bench-'));
  const ids = Array.from({ length: runners }, (_, i) => `bench-${String(i + 1).padStart(4, '0')}`);
  const tokens = new Map(ids.map((id) => [id, newToken()]));
  let proxmox: ProxmoxBackend | undefined;
  if (backendKind === 'proxmox') proxmox = await startProxmoxBackend(ids, { profile: 'realistic' });
  const inventory: RunnerEntry[] = ids.map((id) =>
    proxmox
      ? { runner_id: id, token: tokens.get(id)!, success_action: 'reset', readiness_cmd: 'true', ...proxmox.inventoryFields(id) }
      : { runner_id: id, token: tokens.get(id)!, backend: 'bare_metal', reset_cmd: 'true', readiness_cmd: 'true', success_action: 'reset' },
  );
  const settings = {
    FINALIZE_COOLDOWN_SECONDS: 0,
    POLLER_ENABLED: false,
    READINESS_STABLE_SECONDS: 0,
    RESET_SETTLE_SECONDS: 0,
    READINESS_POLL_INTERVAL_SECONDS: 1,
    ALERT_CHECK_INTERVAL_SECONDS: 30,
  };
  let stack: Stack | undefined;
  const agents: SimAgent[] = [];
  try {
    stack = await startStack({ workDir, instances, settings, inventory }, log);
    const st = stack;
    log(`stack up: temporal ${st.temporalAddress}, controllers ${st.urls.join(' ')}`);
    for (const [i, id] of ids.entries()) {
      const agent = new SimAgent({ runnerId: id, token: tokens.get(id)!, kind: agentKind, urls: st.wsUrls, firstUrl: i % instances });
      agents.push(agent);
      proxmox?.attachAgent(agent);
      agent.start();
    }
    const connected = await Promise.all(agents.map((a) => a.waitConnected(30_000)));
    if (connected.some((c) => !c)) throw new Error(`${connected.filter((c) => !c).length} agents could not connect`);
    log(`${runners} ${agentKind} agents connected`);

    const recorder = new LoadRecorder();
    const random = seeded(20261201);
    let nextJob = 1;
    let stopping = false;
    const loops = agents.map((agent) =>
      runJobLoop({
        agent,
        recorder,
        jobMs,
        successRatio,
        pollMs,
        createTimeoutMs: agentKind === 'legacy' ? 30_000 : 330_000,
        requestTimeoutMs: 30_000,
        random,
        nextJobId: () => nextJob++,
        stopping: () => stopping,
        endTimeoutMs: 300_000,
      }),
    );

    const pidsOf = () => ({
      controller: st.controllers.map((c) => c.pid!).filter(Boolean),
      temporal: [st.temporal.pid!].filter(Boolean),
      postgres: [findPostmasterPid()].filter((p): p is number => p !== undefined),
    });
    const cpuNow = () => {
      const pids = pidsOf();
      return { controller: treeCpuSeconds(pids.controller), temporal: treeCpuSeconds(pids.temporal), postgres: treeCpuSeconds(pids.postgres), bench: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 };
    };
    const sampler = new PeakRssSampler(() => {
      const pids = pidsOf();
      return { ...Object.fromEntries(st.controllers.map((c, i) => [`controller-${i + 1}`, [c.pid!]])), temporal: pids.temporal };
    });
    sampler.start();
    let phase = 'warming up';
    const progress = setInterval(() => log(`lifecycles ${recorder.totalLifecycles}, errors ${recorder.totalErrors}, ${phase}`), 5000);

    await sleep(warmupS * 1000);
    recorder.recording = true;
    phase = 'measuring';
    const cpuStart = cpuNow();
    const t0 = performance.now();
    await sleep(durationS * 1000);
    recorder.recording = false;
    const elapsedS = (performance.now() - t0) / 1000;
    const cpuEnd = cpuNow();
    stopping = true;
    phase = 'draining';
    log('measurement done, draining');
    await Promise.all(loops);
    clearInterval(progress);
    const peakRss = sampler.stop();

    // After the drain: ground truth from the database and the Temporal server.
    const db = new pg.Client({ connectionString: st.database.url });
    await db.connect();
    const claims = (await db.query('select count(*)::int as n from checkpoints where holds_claim')).rows[0].n as number;
    const open = await db.query(`select name, state from checkpoints where state not in ('deleted','reset','gc_reset','create_failed','released')`);
    const endStates = await db.query('select state, count(*)::int as n from checkpoints group by state');
    const stateOf = new Map((await db.query('select name, state from checkpoints')).rows.map((r) => [r.name as string, r.state as string]));
    await db.end();

    const { connection, client } = await connect(st.temporalAddress);
    const workflows = await listCheckpointWorkflows(client);
    await connection.close();
    const historyByEnd = new Map<string, number[]>();
    for (const wf of workflows) {
      const end = stateOf.get(wf.workflowId) ?? 'no_row';
      historyByEnd.set(end, [...(historyByEnd.get(end) ?? []), wf.historyLength]);
    }
    const lifecycles = recorder.lifecycles;
    const perLifecycle = (cpu: number) => (lifecycles > 0 ? round(cpu / lifecycles, 4) : null);
    const cpu = {
      controller: cpuEnd.controller - cpuStart.controller,
      temporal: cpuEnd.temporal - cpuStart.temporal,
      postgres: cpuEnd.postgres - cpuStart.postgres,
      bench: cpuEnd.bench - cpuStart.bench,
    };
    const ms = (values: number[]) => {
      const d = distribution(values);
      return d && { count: d.count, p50: round(d.p50, 1), p95: round(d.p95, 1), p99: round(d.p99, 1), max: round(d.max, 1) };
    };
    const result: BenchResult = {
      ...machineFacts(),
      ...(args.label ? { label: args.label } : {}),
      config: { runners, agents: agentKind, backend: backendKind, instances, durationSeconds: durationS, warmupSeconds: warmupS, jobMs, successRatio, pollMs },
      lifecyclesPerSecond: round(lifecycles / elapsedS, 3),
      lifecycles,
      createMs: ms(recorder.createMs),
      finalizeAckMs: ms(recorder.finalizeAckMs),
      turnaroundMs: ms(recorder.turnaroundMs),
      errors: recorder.errors.toJSON(),
      timeouts: Object.entries(recorder.errors.toJSON()).filter(([k]) => k.endsWith(':timeout')).reduce((s, [, n]) => s + n, 0),
      endsInWindow: recorder.ends.toJSON(),
      cpuSeconds: { controller: round(cpu.controller, 2), temporal: round(cpu.temporal, 2), postgres: round(cpu.postgres, 2), loadGenerator: round(cpu.bench, 2) },
      cpuSecondsPerLifecycle: {
        controller: perLifecycle(cpu.controller),
        temporal: perLifecycle(cpu.temporal),
        postgres: perLifecycle(cpu.postgres),
        total: perLifecycle(cpu.controller + cpu.temporal + cpu.postgres),
      },
      peakRssMB: Object.fromEntries(Object.entries(peakRss).map(([k, v]) => [k, round(v / 2 ** 20, 0)])),
      historyEventsPerLifecycle: Object.fromEntries(
        [...historyByEnd].map(([end, lengths]) => {
          const d = distribution(lengths)!;
          return [end, { workflows: d.count, mean: round(lengths.reduce((a, b) => a + b, 0) / d.count, 1), p50: d.p50, max: d.max }];
        }),
      ),
      invariants: {
        claimsHeldAfterDrain: claims,
        checkpointsNotEnded: open.rows.length,
        notEnded: open.rows.slice(0, 20).map((r) => `${r.name}:${r.state}`),
        checkpointsByState: Object.fromEntries(endStates.rows.map((r) => [r.state, r.n])),
        ok: claims === 0 && open.rows.length === 0,
      },
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (savePath) {
      const existing: BenchResult[] = existsSync(savePath) ? JSON.parse(readFileSync(savePath, 'utf8')) : [];
      existing.push(result);
      writeFileSync(savePath, `${JSON.stringify(existing, null, 2)}\n`);
      log(`appended to ${savePath}`);
    }
    if (args.compare) {
      const baseline: BenchResult[] = JSON.parse(readFileSync(path.resolve(args.compare), 'utf8'));
      process.stdout.write(`${JSON.stringify(compareResults(result, baseline), null, 2)}\n`);
    }
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    if (stack) await stack.stop();
    await proxmox?.stop();
    if (args.keep) log(`work directory kept: ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
