// The fleet at a glance, in one query: how many active runners there are, which of them are online
// (a live agent session on an instance that is not draining and was seen within
// INSTANCE_STALE_SECONDS), busy, idle, drained or waiting for an operator, and the one exclusive
// state per runner that /metrics reports. Health, metrics and alerts read their runner figures here,
// so "online" has one definition.
import { sql } from 'drizzle-orm';
import { queuedStates, rebootWindowStates, resetPathStates } from '../domain/checkpoint-states.js';
import { INSTANCE_STALE_SECONDS } from './agent-presence.js';
import type { Db } from './database.js';
import { rowsOf } from './rows.js';
import { statesSql } from './state-sql.js';

/**
 * Every active runner is in exactly one, first match wins: a checkpoint of it needs attention,
 * drained, no live agent session, holds a claim, else idle. The counts sum to the runner count.
 */
export const RUNNER_STATES = ['needs_attention', 'drained', 'offline', 'busy', 'idle'] as const;
export type RunnerState = (typeof RUNNER_STATES)[number];

export interface FleetCounts {
  /** Active runners (in the inventory). */
  total: number;
  /** Active runners with a live agent session. */
  online: number;
  /** total - online. */
  offline: number;
  /** Active runners whose checkpoint holds the claim. */
  busy: number;
  /** Online and holding no claim. */
  idle: number;
  /** Active runners that are drained. */
  drained: number;
  /** Runners with a checkpoint on the reset path, where the GitLab runner is (or may be) paused. */
  paused: number;
  /** Runners with a checkpoint in needs attention. */
  needsAttention: number;
  /** Active runners whose agent sessions still open with the runner token (the one CI jobs hold). */
  legacyAgentCredential: number;
  /** Agent sessions held by live instances. */
  sessions: number;
  /** Checkpoints finalize queued or on the reset path, needs attention excluded. */
  queueDepth: number;
  /** Each active runner in its one state (RUNNER_STATES). */
  states: Record<RunnerState, number>;
  /** Active runners without a live session that no reset of their own is rebooting, sorted. */
  offlineOutsideReset: string[];
}

const LIVE = sql`not i.draining and now() - i.last_seen < make_interval(secs => ${INSTANCE_STALE_SECONDS})`;

export async function readFleetCounts(db: Db): Promise<FleetCounts> {
  const [row = {}] = await rowsOf(
    db,
    sql`
    with live_sessions as (
      select p.runner_id from agent_presence p
      join controller_instances i on i.instance_id = p.instance_id
      where ${LIVE}
    ),
    fleet as (
      select r.runner_id, r.drained,
        r.agent_token_hash is null as legacy_credential,
        exists (select 1 from live_sessions s where s.runner_id = r.runner_id) as online,
        exists (select 1 from checkpoints c where c.runner_id = r.runner_id and c.holds_claim) as busy,
        exists (select 1 from checkpoints c where c.runner_id = r.runner_id and c.state = 'needs_attention') as needs_attention,
        exists (select 1 from checkpoints c where c.runner_id = r.runner_id and c.holds_claim and c.state in (${statesSql(rebootWindowStates)})) as rebooting
      from runners r where r.is_active
    ),
    classified as (
      select fleet.*, case
        when needs_attention then 'needs_attention'
        when drained then 'drained'
        when not online then 'offline'
        when busy then 'busy'
        else 'idle'
      end as state
      from fleet
    )
    select
      count(*) as total,
      count(*) filter (where online) as online,
      count(*) filter (where busy) as busy,
      count(*) filter (where online and not busy) as idle,
      count(*) filter (where drained) as drained,
      count(*) filter (where legacy_credential) as legacy_agent_credential,
      count(*) filter (where state = 'needs_attention') as state_needs_attention,
      count(*) filter (where state = 'drained') as state_drained,
      count(*) filter (where state = 'offline') as state_offline,
      count(*) filter (where state = 'busy') as state_busy,
      count(*) filter (where state = 'idle') as state_idle,
      coalesce(json_agg(runner_id order by runner_id) filter (where not online and not rebooting), '[]'::json) as offline_outside_reset,
      (select count(distinct runner_id) from checkpoints where state in (${statesSql(resetPathStates)})) as paused,
      (select count(distinct runner_id) from checkpoints where state = 'needs_attention') as needs_attention,
      (select count(*) from live_sessions) as sessions,
      (select count(*) from checkpoints where state in (${statesSql(queuedStates)})) as queue_depth
    from classified`,
  );
  const n = (v: unknown) => Number(v ?? 0);
  const ids = typeof row.offline_outside_reset === 'string' ? JSON.parse(row.offline_outside_reset) : (row.offline_outside_reset ?? []);
  const total = n(row.total);
  const online = n(row.online);
  return {
    total,
    online,
    offline: total - online,
    busy: n(row.busy),
    idle: n(row.idle),
    drained: n(row.drained),
    paused: n(row.paused),
    needsAttention: n(row.needs_attention),
    legacyAgentCredential: n(row.legacy_agent_credential),
    sessions: n(row.sessions),
    queueDepth: n(row.queue_depth),
    states: Object.fromEntries(RUNNER_STATES.map((s) => [s, n(row[`state_${s}`])])) as Record<RunnerState, number>,
    offlineOutsideReset: (ids as unknown[]).map(String),
  };
}
