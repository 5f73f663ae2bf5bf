// Operator listings of the read model: filtered, keyset-paginated checkpoints and one checkpoint's
// record with its transition log (operations.md, Listings).
import { checkpointStates, isActive, isCheckpointState, type CheckpointState } from '../domain/checkpoint-states.js';
import type { ValidationDetailItem } from '../inventory/issues.js';
import { findCheckpoint, listTransitions, pageCheckpoints, type CheckpointFilter, type CheckpointRow } from '../store/checkpoint-reads.js';
import type { Db } from '../store/database.js';
import { naiveUtc, toCheckpointResponse, type CheckpointResponse } from './checkpoint-read-model.js';

export const LIST_DEFAULT_LIMIT = 50;
export const LIST_MAX_LIMIT = 500;
const FAILED_STATES: CheckpointState[] = ['create_failed', 'needs_attention'];

export interface CheckpointListQuery {
  /** Explicit states; `active` and `failed` are expanded by the query. */
  states: CheckpointState[];
  active: boolean;
  failed: boolean;
  runner?: string;
  since?: Date;
  until?: Date;
  limit: number;
  /** Id of the last item of the previous page. */
  afterId?: number;
}

export interface CheckpointListItem extends CheckpointResponse {
  project_id: string | null;
  backend: string;
  caller: string | null;
  needs_attention_reason: string | null;
  detail: string | null;
  ttl_extensions: number;
  updated_at: string;
  ended_at: string | null;
}

export interface CheckpointList {
  total: number;
  items: CheckpointListItem[];
  nextCursor: string | null;
}

export function toListItem(row: CheckpointRow): CheckpointListItem {
  return {
    ...toCheckpointResponse(row),
    project_id: row.projectId,
    backend: row.backend,
    caller: row.caller,
    needs_attention_reason: row.needsAttentionReason,
    detail: row.detail,
    ttl_extensions: row.ttlExtensions,
    updated_at: naiveUtc(row.updatedAt)!,
    ended_at: naiveUtc(row.endedAt),
  };
}

const encodeCursor = (id: number) => Buffer.from(`id:${id}`).toString('base64url');
function decodeCursor(cursor: string): number | null {
  const m = /^id:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : null;
}

function single(value: unknown): string | undefined {
  const last = Array.isArray(value) ? value.at(-1) : value;
  return typeof last === 'string' ? last : undefined;
}

/** Parses `?state=&runner=&since=&until=&limit=&cursor=`; problems come back as FastAPI-style items. */
export function parseListQuery(query: Record<string, unknown>): { ok: true; value: CheckpointListQuery } | { ok: false; items: ValidationDetailItem[] } {
  const items: ValidationDetailItem[] = [];
  const value: CheckpointListQuery = { states: [], active: false, failed: false, limit: LIST_DEFAULT_LIMIT };
  const state = single(query.state);
  if (state) {
    for (const word of state.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (word === 'active') value.active = true;
      else if (word === 'failed') value.failed = true;
      else if (isCheckpointState(word)) value.states.push(word);
      else {
        items.push({
          type: 'value_error',
          loc: ['query', 'state'],
          msg: `Value error, unknown state '${word}': use active, failed or one of ${checkpointStates.join(', ')}`,
          input: state,
        });
      }
    }
  }
  const runner = single(query.runner);
  if (runner) value.runner = runner;
  for (const key of ['since', 'until'] as const) {
    const raw = single(query[key]);
    if (raw === undefined || raw === '') continue;
    // Naive timestamps are UTC, as the API writes them.
    const parsed = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(raw) || !raw.includes('T') ? raw : `${raw}Z`);
    if (Number.isNaN(parsed.getTime())) items.push({ type: 'datetime_parsing', loc: ['query', key], msg: 'Input should be a valid datetime', input: raw });
    else value[key] = parsed;
  }
  const limit = single(query.limit);
  if (limit !== undefined) {
    const n = Number(limit);
    if (!/^\d+$/.test(limit) || n < 1 || n > LIST_MAX_LIMIT) {
      items.push({ type: 'value_error', loc: ['query', 'limit'], msg: `Value error, limit must be an integer from 1 to ${LIST_MAX_LIMIT}`, input: limit });
    } else value.limit = n;
  }
  const cursor = single(query.cursor);
  if (cursor) {
    const id = decodeCursor(cursor);
    if (id === null) items.push({ type: 'value_error', loc: ['query', 'cursor'], msg: 'Value error, cursor is not one this API returned', input: cursor });
    else value.afterId = id;
  }
  return items.length ? { ok: false, items } : { ok: true, value };
}

function filterOf(q: CheckpointListQuery): CheckpointFilter {
  const filter: CheckpointFilter = {};
  if (q.states.length || q.active || q.failed) {
    const states = new Set<CheckpointState>(q.states);
    if (q.active) for (const s of checkpointStates) if (isActive(s)) states.add(s);
    if (q.failed) for (const s of FAILED_STATES) states.add(s);
    filter.states = [...states];
    if (q.failed) filter.orFinalizeFailed = true;
  }
  if (q.runner) filter.runner = q.runner;
  if (q.since) filter.since = q.since;
  if (q.until) filter.until = q.until;
  return filter;
}

/** Newest first (by id, which follows creation); `total` counts every match, not just this page. */
export async function listCheckpoints(db: Db, q: CheckpointListQuery): Promise<CheckpointList> {
  const { total, rows: page } = await pageCheckpoints(db, filterOf(q), { ...(q.afterId !== undefined ? { afterId: q.afterId } : {}), limit: q.limit + 1 });
  const more = page.length > q.limit;
  const items = page.slice(0, q.limit);
  return { total, items: items.map(toListItem), nextCursor: more ? encodeCursor(items.at(-1)!.id) : null };
}

export interface TransitionView {
  seq: number;
  from: string | null;
  to: string;
  event: string;
  detail: string | null;
  at: string;
}

export interface CheckpointDetail {
  checkpoint: CheckpointListItem & { vmid: number | null; epoch_at_reset: number | null; created_done_at: string | null; reset_started_at: string | null; ready_at: string | null };
  transitions: TransitionView[];
  temporalUiUrl: string;
}

export function temporalUiLink(uiBaseUrl: string, namespace: string, workflowId: string): string {
  return `${uiBaseUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

export async function checkpointDetail(db: Db, name: string, ui: { baseUrl: string; namespace: string }): Promise<CheckpointDetail | null> {
  const row = await findCheckpoint(db, name);
  if (!row) return null;
  const log = await listTransitions(db, name);
  return {
    checkpoint: {
      ...toListItem(row),
      vmid: row.vmid,
      epoch_at_reset: row.epochAtReset,
      created_done_at: naiveUtc(row.createdDoneAt),
      reset_started_at: naiveUtc(row.resetStartedAt),
      ready_at: naiveUtc(row.readyAt),
    },
    transitions: log.map((t) => ({ seq: t.seq, from: t.fromState, to: t.toState, event: t.event, detail: t.detail, at: naiveUtc(t.at)! })),
    temporalUiUrl: temporalUiLink(ui.baseUrl, ui.namespace, name),
  };
}
