// `npm run chaos`: the bench's pieces plus both simulators with fault injection, two controller
// instances and runners of every kind; a seeded scheduler injects faults while the runners work and
// an operator answers needs-attention checkpoints. After the run everything is healed and drained,
// and the checker judges the run by ground truth. Prints one JSON object; exit 1 on any violation.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseCommandLine } from './lib/cli.js';
import pg from 'pg';
import type { Client, Connection } from '@temporalio/client';
import { sleep } from './lib/stack.js';
import { machineFacts, Counter } from './lib/summary.js';
import { connect, inspectHistory, listCheckpointWorkflows } from './lib/temporal-facts.js';
import { ChaosWorld, RUNNER_KINDS } from './chaos/world.js';
import { startFaultScheduler, startOperator, FAULTS } from './chaos/faults.js';
import { Random } from './chaos/random.js';
import { checkInvariants } from './chaos/checker.js';
import type { FinalFacts } from './chaos/truth.js';

const HELP = `Usage: npm run chaos -- [options]

Runs e2epool under injected faults and checks its promises by ground truth (what ran on the hosts,
which snapshots exist, which pause/unpause calls GitLab received), not by the controller's own view.
Two e2epool serve instances, PostgreSQL, a Temporal dev server, the Proxmox and GitLab simulators and
runners of five kinds (Proxmox VM; bare metal with legacy agents in auto and reboot mode; bare metal
with current agents in reboot and in-place mode).

Options:
  --seed N                fault and load choices (default 1)
  --minutes M             minutes of faults (default 2; may be fractional)
  --faults-per-minute F   mean fault rate (default 12)
  --runners-per-kind N    runners of each of the 5 kinds (default 2)
  --history-bound N       most events a checkpoint workflow may have (default 1000)
  --drain-seconds S       after the faults: time allowed for every checkpoint to settle (default 300)
  --out FILE              also write the JSON report to FILE
  --keep                  keep the work directory (logs) and print its path
  --help                  this text

Faults: ${Object.keys(FAULTS).join(', ')}.
Invariants: 1 never two claim holders for one runner; 2 unpaused only after a completed reset and a
passing readiness on a session that began after it; 3 no reset or rollback ran twice for one
checkpoint; 4 no job-* snapshot left unless its checkpoint needs attention; 5 every checkpoint ends
(or waits in needs_attention with a reason), no workflow wedged, every history under the bound.`;

const { args, numberOption } = parseCommandLine(
  {
    seed: { type: 'string', default: '1' },
    minutes: { type: 'string', default: '2' },
    'faults-per-minute': { type: 'string', default: '12' },
    'runners-per-kind': { type: 'string', default: '2' },
    'history-bound': { type: 'string', default: '1000' },
    'drain-seconds': { type: 'string', default: '300' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  } as const,
  HELP,
);
const numberArg = (name: Parameters<typeof numberOption>[0], min: number, max: number, integer: boolean) => numberOption(name, min, max, integer);
const seed = numberArg('seed', 0, 2 ** 31, true);
const minutes = numberArg('minutes', 0.1, 24 * 60, false);
const faultsPerMinute = numberArg('faults-per-minute', 0, 600, false);
const runnersPerKind = numberArg('runners-per-kind', 1, 20, true);
const historyBound = numberArg('history-bound', 50, 51_200, true);
const drainSeconds = numberArg('drain-seconds', 10, 3600, true);
const log = (line: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

const END = ['deleted', 'reset', 'gc_reset', 'create_failed', 'released'];

async function main(): Promise<number> {
  const workDir = mkdtempSync(path.join(tmpdir(), 'e2epool-chaos-'));
  const random = new Random(seed);
  const world = new ChaosWorld({ workDir, runnersPerKind, random, log });
  let temporal: { connection: Connection; client: Client } | undefined;
  try {
    await world.start();
    log(`world up: ${world.runners.length} runners, controllers ${world.stack.urls.join(' ')}`);
    temporal = await connect(world.stack.temporalAddress);
    world.startJobs();
    const faults = startFaultScheduler(world, new Random(seed * 7919 + 1), { faultsPerMinute, temporal: () => temporal?.client, log });
    const operator = startOperator(world, new Random(seed * 104729 + 3));
    const progress = setInterval(() => log(`checkpoints ${world.truth.checkpoints.length}, faults ${faults.counts.total()}, operator actions ${world.truth.operator.length}`), 10_000);
    await sleep(minutes * 60_000);

    log('faults stop; healing and draining');
    await faults.stop();
    world.proxmox.sim.faults.clear();
    for (const runner of world.runners) {
      if (runner.vmid) world.proxmox.sim.state.setLock(runner.vmid, undefined);
      runner.faults.readinessBrokenUntil = 0;
      runner.faults.nextResetFails = false;
      runner.faults.armed = null;
    }
    world.gitlab.api.clearFaults();
    if (!world.stack.temporal.running) await world.stack.temporal.start();
    for (const c of world.stack.controllers) if (!c.running) await c.start();
    await operator.stop();
    await Promise.race([world.stopJobs(), sleep(drainSeconds * 1000)]);
    clearInterval(progress);

    // Settle: wait until every checkpoint has ended or waits for an operator.
    const db = new pg.Client({ connectionString: world.stack.database.url });
    await db.connect();
    const deadline = Date.now() + drainSeconds * 1000;
    let open = -1;
    while (Date.now() < deadline) {
      open = (await db.query(`select count(*)::int as n from checkpoints where state <> all($1) and state <> 'needs_attention'`, [END])).rows[0].n;
      if (open === 0) break;
      await sleep(2000);
    }
    log(`drained (${open} checkpoint(s) still moving)`);
    world.collectEndTruth();
    const rows = (await db.query('select name, runner_id, state, needs_attention_reason from checkpoints order by id')).rows;
    await db.end();

    const workflows = await listCheckpointWorkflows(temporal.client);
    const facts: FinalFacts = {
      checkpoints: rows.map((r) => ({ name: r.name, runnerId: r.runner_id, state: r.state, needsAttentionReason: r.needs_attention_reason })),
      workflows: [],
    };
    for (const wf of workflows) {
      const inspected = await inspectHistory(temporal.client, wf.workflowId);
      facts.workflows.push({ workflowId: wf.workflowId, status: wf.status, historyLength: inspected.historyLength, workflowTaskFailures: inspected.workflowTaskFailures ?? 0, ...(inspected.workflowTaskFailure ? { workflowTaskFailure: inspected.workflowTaskFailure } : {}) });
    }
    const violations = checkInvariants(world.truth, facts, { historyBound, startedAt: world.startedAt });
    const byState = new Counter();
    for (const c of facts.checkpoints) byState.add(c.state === 'needs_attention' ? `needs_attention:${c.needsAttentionReason ?? 'no reason'}` : c.state);
    const byInvariant = new Counter();
    for (const v of violations) byInvariant.add(`${v.invariant}: ${v.rule}`);
    const findings = new Counter();
    for (const v of violations) if (v.reviewFinding) findings.add(v.reviewFinding);
    const report = {
      ...machineFacts(),
      config: { seed, minutes, faultsPerMinute, runnersPerKind, runners: Object.fromEntries(RUNNER_KINDS.map((k) => [k, runnersPerKind])), historyBound },
      faultsInjected: { total: faults.counts.total(), byKind: faults.counts.toJSON() },
      operatorActions: operator.counts.toJSON(),
      groundTruth: {
        commandsRun: world.truth.commands.filter((c) => !c.replayed).length,
        proxmoxTasks: world.truth.tasks.length,
        pauseCalls: world.truth.pauses.length,
        agentSessions: world.truth.sessions.filter((s) => s.open).length,
      },
      checkpoints: { total: facts.checkpoints.length, answeredToAgents: world.truth.checkpoints.length, byEndState: byState.toJSON() },
      workflows: { total: facts.workflows.length, maxHistoryLength: Math.max(0, ...facts.workflows.map((w) => w.historyLength)), withFailedWorkflowTasks: facts.workflows.filter((w) => w.workflowTaskFailures > 0).length },
      violationsByInvariant: byInvariant.toJSON(),
      reviewFindingsCaught: findings.toJSON(),
      violations,
      ok: violations.length === 0,
    };
    const text = `${JSON.stringify(report, null, 2)}\n`;
    process.stdout.write(text);
    if (args.out) writeFileSync(path.resolve(args.out), text);
    return report.ok ? 0 : 1;
  } finally {
    await temporal?.connection.close().catch(() => undefined);
    await world.stop();
    if (args.keep) log(`work directory kept: ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`chaos failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
