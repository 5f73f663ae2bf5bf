// Shared pieces of the activity tests: running one activity in an activity context (with chosen
// scheduling time and attempt, as Temporal would give a retry) and runner fixtures.
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Info } from '@temporalio/activity';
import { DefaultLogger } from '@temporalio/worker';
import type { Logger } from '../../src/logger.js';
import { RunnerRegistry } from '../../src/inventory/registry.js';
import type { Db } from '../../src/store/database.js';
import { defaultSimToken, type ProxmoxSimulator } from '../../sim/proxmox/index.js';

const quietSdkLogger = new DefaultLogger('ERROR');

export interface ActivityRun<T> {
  result: Promise<T>;
  heartbeats: unknown[];
  env: MockActivityEnvironment;
}

/** Runs an activity function in an activity context; `info` sets e.g. scheduledTimestampMs and attempt. */
export function runActivity<A extends unknown[], T>(fn: (...args: A) => Promise<T>, args: A, info: Partial<Info> = {}): ActivityRun<T> {
  // The SDK logs every failed activity at WARN; the tests assert on failures instead.
  const env = new MockActivityEnvironment({ scheduledTimestampMs: Date.now(), currentAttemptScheduledTimestampMs: Date.now(), ...info }, { logger: quietSdkLogger });
  const heartbeats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => heartbeats.push(d));
  return { result: env.run(fn as any, ...args) as Promise<T>, heartbeats, env };
}

/** Awaits an activity expected to fail through withFailureMapping; returns its Temporal failure. */
export async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the activity to fail');
}

export function newRegistry(db: Db, logger?: Logger): RunnerRegistry {
  return new RunnerRegistry({ db, pepper: 'activities-test-pepper', ...(logger ? { logger } : {}) });
}

/** Registers a Proxmox runner on the simulator's VM through the admin path (createRunner). */
export async function createProxmoxRunner(
  registry: RunnerRegistry,
  sim: ProxmoxSimulator,
  fields: Record<string, unknown> & { runner_id: string },
): Promise<{ token: string }> {
  const [user, tokenName] = defaultSimToken.tokenId.split('!');
  const { token } = await registry.createRunner({
    backend: 'proxmox',
    proxmox_host: sim.url,
    proxmox_user: user,
    proxmox_token_name: tokenName,
    proxmox_token_value: defaultSimToken.secret,
    proxmox_node: 'pve1',
    proxmox_vmid: 101,
    ...fields,
  });
  return { token };
}
