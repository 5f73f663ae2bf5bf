import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { sql } from 'drizzle-orm';
import { databaseKinds, type TestDatabase } from '../helpers/databases.js';
import { claimRunner, loadRunnerPlan, projectTransition, recordProgress, takeEpochWatermark } from '../../src/store/checkpoint-store.js';
import { raiseAlert, resolveAlert, openAlerts } from '../../src/store/alert-store.js';
import { holdsClaim, type CheckpointState } from '../../src/domain/checkpoint-states.js';
import type { ClaimInput } from '../../activities/types.js';

async function addRunner(db: TestDatabase, runnerId: string, extra: Record<string, unknown> = {}) {
  await db.db.execute(sql`insert into runners (runner_id, backend, token_hash, gitlab_runner_id, cleanup_cmd, options, drained)
    values (${runnerId}, 'bare_metal', ${`hash-${runnerId}`}, ${(extra.gitlab_runner_id as number) ?? null}, ${(extra.cleanup_cmd as string) ?? null}, ${JSON.stringify(extra.options ?? {})}::jsonb, ${extra.drained === true})`);
}

const claim = (name: string, runnerId = 'r1', cooldownSeconds = 5): ClaimInput => ({ name, runnerId, jobId: '1', backend: 'bare_metal', cooldownSeconds });

async function state(db: TestDatabase, name: string) {
  const r: any = await db.db.execute(sql`select state, holds_claim, finalize_status, projection_seq from checkpoints where name = ${name}`);
  return r.rows[0];
}

for (const { kind, create } of databaseKinds) {
  describe(`checkpoint store on ${kind}`, () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await create();
      await addRunner(db, 'r1', { gitlab_runner_id: 42 });
      await addRunner(db, 'r2', { drained: true });
      await addRunner(db, 'r3', { cleanup_cmd: 'true', options: { resetMode: 'in_place' } });
    });
    afterAll(async () => db?.drop());

    it('claims a runner once: a second checkpoint conflicts, a retry of the first is ok', async () => {
      assert.deepEqual((await claimRunner(db.db, claim('job-1-1-aaaaaaaa'))).ok, true);
      assert.equal((await claimRunner(db.db, claim('job-1-1-aaaaaaaa'))).ok, true, 'retry of ourselves');
      const other = await claimRunner(db.db, claim('job-2-1-bbbbbbbb'));
      assert.deepEqual(other, { ok: false, code: 'conflict', detail: "Active checkpoint 'job-1-1-aaaaaaaa' already exists for runner 'r1'", holderCleaning: false });
      assert.deepEqual(await state(db, 'job-2-1-bbbbbbbb'), undefined, 'a rejected claim writes no row');
    });

    it('lets exactly one of many concurrent claims win (the database enforces it)', async () => {
      await addRunner(db, 'race');
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => claimRunner(db.db, { ...claim(`job-${i}-1-cccccccc`, 'race') })));
      assert.equal(results.filter((r) => r.ok).length, 1);
      const r: any = await db.db.execute(sql`select count(*)::int as n from checkpoints where runner_id = 'race' and holds_claim`);
      assert.equal(r.rows[0].n, 1);
    });

    it('records the transitions of one await point in order, releases the claim with its transition, and takes the watermark', async () => {
      await addRunner(db, 'batch');
      const name = 'job-5-1-eeeeeeee';
      const claimed = await claimRunner(db.db, { ...claim(name, 'batch'), includePlan: true });
      assert.ok(claimed.ok && claimed.plan?.backend === 'bare_metal', 'the plan comes with the claim');
      const before = await takeEpochWatermark(db.db);
      const result = await recordProgress(db.db, {
        name,
        runnerId: 'batch',
        transitions: [
          { seq: 1, from: 'creating', to: 'created', event: 'snapshot_taken' },
          { seq: 2, from: 'created', to: 'finalize_queued', event: 'finalize_requested', fields: { finalizeStatus: 'failure', finalizeSource: 'hook', finalizeQueuedAtMs: Date.now() } },
          { seq: 3, from: 'finalize_queued', to: 'pausing', event: 'reset_started' },
        ],
        takeEpochWatermark: true,
      });
      assert.ok(result.epochWatermark! > before);
      assert.deepEqual(await state(db, name), { state: 'pausing', holds_claim: true, finalize_status: 'failure', projection_seq: 3 });
      const epoch: any = await db.db.execute(sql`select epoch_at_reset from checkpoints where name = ${name}`);
      assert.equal(Number(epoch.rows[0].epoch_at_reset), result.epochWatermark);
      // A replayed batch changes nothing; the release rides on its own transition.
      await recordProgress(db.db, { name, runnerId: 'batch', transitions: [{ seq: 3, from: 'finalize_queued', to: 'pausing', event: 'reset_started' }] });
      await recordProgress(db.db, { name, runnerId: 'batch', transitions: [{ seq: 4, from: 'needs_attention', to: 'releasing_claim', event: 'release_requested', releaseClaim: true }] });
      assert.equal((await state(db, name)).holds_claim, false);
      const seqs: any = await db.db.execute(sql`select seq from checkpoint_transitions where checkpoint_name = ${name} order by seq`);
      assert.deepEqual(seqs.rows.map((r: any) => Number(r.seq)), [0, 1, 2, 3, 4]);
    });

    if (kind === 'postgres') {
      it('a claim stuck behind a lock is aborted by the database and leaves no row holding the claim', async () => {
        await addRunner(db, 'locked');
        const { default: pg } = await import('pg');
        const blocker = new pg.Client({ connectionString: db.url });
        await blocker.connect();
        try {
          await blocker.query('begin');
          await blocker.query(`select 1 from runners where runner_id = 'locked' for update`);
          await assert.rejects(claimRunner(db.db, claim('job-6-1-ffffffff', 'locked'), new Date(), { statementTimeoutMs: 300 }), (err: any) => (err.cause ?? err).code === '57014');
          await blocker.query('rollback');
        } finally {
          await blocker.end();
        }
        assert.equal(await state(db, 'job-6-1-ffffffff'), undefined);
        assert.equal((await claimRunner(db.db, claim('job-6-1-ffffffff', 'locked'))).ok, true, 'the next claim works');
      });
    }

    it('refuses a second holder even when written behind the code (unique partial index)', async () => {
      await assert.rejects(db.db.execute(sql`insert into checkpoints (name, runner_id, job_id, backend, state, holds_claim) values ('job-9-1-dddddddd', 'r1', '9', 'bare_metal', 'created', true)`));
    });

    it('projects transitions idempotently and in order, releasing the claim only through release', async () => {
      const base = { name: 'job-1-1-aaaaaaaa', runnerId: 'r1' };
      await projectTransition(db.db, { ...base, seq: 1, from: 'creating', to: 'created', event: 'snapshot_taken' });
      await projectTransition(db.db, { ...base, seq: 1, from: 'creating', to: 'created', event: 'snapshot_taken' });
      await projectTransition(db.db, { ...base, seq: 2, from: 'created', to: 'finalize_queued', event: 'finalize_requested', fields: { finalizeStatus: 'failure', finalizeSource: 'hook', finalizeQueuedAtMs: Date.now() } });
      // A late re-delivery of seq 1 must not move the row back.
      await projectTransition(db.db, { ...base, seq: 1, from: 'creating', to: 'created', event: 'snapshot_taken' });
      assert.deepEqual(await state(db, base.name), { state: 'finalize_queued', holds_claim: true, finalize_status: 'failure', projection_seq: 2 });
      const t: any = await db.db.execute(sql`select seq from checkpoint_transitions where checkpoint_name = ${base.name} order by seq`);
      assert.deepEqual(t.rows.map((x: any) => x.seq), [0, 1, 2]);
      await projectTransition(db.db, { ...base, seq: 3, from: 'awaiting_readiness', to: 'releasing_claim', event: 'ready' }, { releaseClaim: true });
      assert.equal((await state(db, base.name)).holds_claim, false);
    });

    it('applies the cooldown from when the previous finalize was queued', async () => {
      const now = new Date();
      const r = await claimRunner(db.db, claim('job-3-1-eeeeeeee', 'r1', 3600), now);
      assert.deepEqual(r, { ok: false, code: 'cooldown', detail: 'Cooldown period active, try again later' });
      const later = await claimRunner(db.db, claim('job-3-1-eeeeeeee', 'r1', 1), new Date(now.getTime() + 5000));
      assert.equal(later.ok, true);
    });

    it('answers maintenance and drain before anything else, and 404s unknown runners', async () => {
      assert.equal((await claimRunner(db.db, claim('job-4-1-ffffffff', 'r2'))).ok === false && 'draining', 'draining');
      assert.deepEqual(await claimRunner(db.db, claim('job-4-1-ffffffff', 'nobody')), { ok: false, code: 'runner_not_found', detail: 'Runner not found in inventory' });
      await db.db.execute(sql`insert into controller_settings (key, value) values ('maintenance', ${JSON.stringify({ enabled: true, message: 'Upgrading, back at 10:00' })}::jsonb)`);
      assert.deepEqual(await claimRunner(db.db, claim('job-4-1-ffffffff', 'r3')), { ok: false, code: 'maintenance', detail: 'Upgrading, back at 10:00' });
      await db.db.execute(sql`delete from controller_settings where key = 'maintenance'`);
    });

    it('agrees with the domain on which states hold the claim', async () => {
      const r: any = await db.db.execute(sql`select state, holds_claim from checkpoints`);
      for (const row of r.rows) assert.equal(row.holds_claim, holdsClaim(row.state as CheckpointState), `${row.state}`);
    });

    it('plans paths from the runner row', async () => {
      assert.deepEqual(
        { ...(await loadRunnerPlan(db.db, 'r1')) },
        { exists: true, active: true, backend: 'bare_metal', successAction: 'reset', resetMode: 'auto', pauseMethod: 'gitlab', hasReadinessCommand: false, hasCleanupCommand: false, vmid: null },
      );
      const r3 = await loadRunnerPlan(db.db, 'r3');
      assert.equal(r3.successAction, 'cleanup');
      assert.equal(r3.resetMode, 'in_place');
      assert.equal(r3.pauseMethod, 'none');
      assert.equal((await loadRunnerPlan(db.db, 'ghost')).exists, false);
    });

    it('hands out strictly increasing epoch watermarks', async () => {
      const a = await takeEpochWatermark(db.db);
      const b = await takeEpochWatermark(db.db);
      assert.ok(b > a);
    });

    it('deduplicates open alerts by key and reopens after resolve', async () => {
      const alert = { key: 'needs_attention:x', severity: 'critical' as const, message: 'm' };
      assert.deepEqual(await raiseAlert(db.db, alert), { raised: true });
      assert.deepEqual(await raiseAlert(db.db, alert), { raised: false });
      assert.equal((await openAlerts(db.db)).length, 1);
      assert.deepEqual(await resolveAlert(db.db, alert.key), { resolved: true });
      assert.deepEqual(await resolveAlert(db.db, alert.key), { resolved: false });
      assert.deepEqual(await raiseAlert(db.db, alert), { raised: true });
    });
  });
}
