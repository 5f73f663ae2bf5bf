// Drizzle schema: the read model (projection of workflow state) and the runner registry.
// Migrations in db/migrations are generated from this file with `npm run db:generate`.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgSequence,
  pgTable,
  serial,
  text,
  timestamp,
  uniqueIndex,
  varchar,
} from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const runners = pgTable(
  'runners',
  {
    id: serial('id').primaryKey(),
    runnerId: varchar('runner_id', { length: 255 }).notNull(),
    backend: varchar('backend', { length: 50 }).notNull(),
    /** HMAC-SHA256(TOKEN_PEPPER, token), hex. The plain token is never stored. */
    tokenHash: varchar('token_hash', { length: 64 }).notNull(),
    /**
     * HMAC of the agent's own credential. Set: only it opens agent sessions (CI jobs hold the runner
     * token, never this one). Null: the legacy scheme, the runner token opens them too.
     */
    agentTokenHash: varchar('agent_token_hash', { length: 64 }),
    proxmoxHost: varchar('proxmox_host', { length: 255 }),
    proxmoxUser: varchar('proxmox_user', { length: 255 }),
    proxmoxTokenName: varchar('proxmox_token_name', { length: 255 }),
    /** Secret of the Proxmox API token; never returned by the API nor logged. */
    proxmoxTokenValue: text('proxmox_token_value'),
    proxmoxNode: varchar('proxmox_node', { length: 255 }),
    proxmoxVmid: integer('proxmox_vmid'),
    resetCmd: text('reset_cmd'),
    cleanupCmd: text('cleanup_cmd'),
    readinessCmd: text('readiness_cmd'),
    gitlabRunnerId: integer('gitlab_runner_id'),
    tags: jsonb('tags').$type<string[]>().notNull().default([]),
    /** Fields beyond e2epool's: reset_mode, success_action, gitlab_url, proxmox TLS, guards... */
    options: jsonb('options').$type<Record<string, unknown>>().notNull().default({}),
    /** `inventory` rows are owned by inventory sync; `api` rows are never deactivated by it. */
    source: varchar('source', { length: 20 }).notNull().default('api'),
    isActive: boolean('is_active').notNull().default(true),
    drained: boolean('drained').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('ix_runners_runner_id').on(t.runnerId),
    uniqueIndex('ix_runners_agent_token_hash').on(t.agentTokenHash),
    uniqueIndex('ix_runners_token_hash').on(t.tokenHash),
    check('ck_runner_backend', sql`${t.backend} in ('proxmox', 'bare_metal')`),
    check('ck_runner_source', sql`${t.source} in ('inventory', 'api')`),
  ],
);

export const CHECKPOINT_STATES_SQL = sql.raw(
  `'creating','created','finalize_queued','cleaning','pausing','confirming_idle','resetting','awaiting_readiness','releasing_claim','unpausing','needs_attention','deleted','reset','gc_reset','create_failed','released'`,
);

export const checkpoints = pgTable(
  'checkpoints',
  {
    id: serial('id').primaryKey(),
    /** Also the workflow id and the snapshot name. */
    name: varchar('name', { length: 64 }).notNull(),
    runnerId: varchar('runner_id', { length: 255 }).notNull(),
    jobId: varchar('job_id', { length: 255 }).notNull(),
    projectId: varchar('project_id', { length: 255 }),
    backend: varchar('backend', { length: 50 }).notNull(),
    state: varchar('state', { length: 50 }).notNull(),
    /** Set only by claimRunner, cleared only by releaseClaim. */
    holdsClaim: boolean('holds_claim').notNull().default(false),
    finalizeStatus: varchar('finalize_status', { length: 50 }),
    finalizeSource: varchar('finalize_source', { length: 100 }),
    finalizeQueuedAt: ts('finalize_queued_at'),
    caller: varchar('caller', { length: 255 }),
    needsAttentionReason: varchar('needs_attention_reason', { length: 100 }),
    detail: text('detail'),
    /** VM id recorded at create, checked again before destructive calls. */
    vmid: integer('vmid'),
    ttlExtensions: integer('ttl_extensions').notNull().default(0),
    epochAtReset: bigint('epoch_at_reset', { mode: 'number' }),
    /** Last applied projection sequence number: projections are idempotent and ordered. */
    projectionSeq: integer('projection_seq').notNull().default(0),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    createdDoneAt: ts('created_done_at'),
    resetStartedAt: ts('reset_started_at'),
    readyAt: ts('ready_at'),
    endedAt: ts('ended_at'),
  },
  (t) => [
    uniqueIndex('ix_checkpoints_name').on(t.name),
    index('ix_checkpoints_runner_id').on(t.runnerId, t.createdAt),
    index('ix_checkpoints_job_id').on(t.jobId),
    index('ix_checkpoints_state').on(t.state),
    index('ix_checkpoints_created_at').on(t.createdAt),
    uniqueIndex('ix_one_claim_per_runner').on(t.runnerId).where(sql`${t.holdsClaim}`),
    check('ck_checkpoint_state', sql`${t.state} in (${CHECKPOINT_STATES_SQL})`),
    check('ck_checkpoint_finalize_status', sql`${t.finalizeStatus} is null or ${t.finalizeStatus} in ('success','failure','canceled')`),
  ],
);

export const checkpointTransitions = pgTable(
  'checkpoint_transitions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    checkpointName: varchar('checkpoint_name', { length: 64 }).notNull(),
    runnerId: varchar('runner_id', { length: 255 }).notNull(),
    /** Sequence number assigned by the workflow; (name, seq) makes re-projection idempotent. */
    seq: integer('seq').notNull(),
    fromState: varchar('from_state', { length: 50 }),
    toState: varchar('to_state', { length: 50 }).notNull(),
    event: varchar('event', { length: 100 }).notNull(),
    detail: text('detail'),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('ix_transitions_name_seq').on(t.checkpointName, t.seq),
    index('ix_transitions_at').on(t.at),
  ],
);

/** Increasing across instances: a session is fresh after a reset when its epoch is greater. */
export const agentSessionEpoch = pgSequence('agent_session_epoch', { startWith: 1 });

export const agentPresence = pgTable('agent_presence', {
  runnerId: varchar('runner_id', { length: 255 }).primaryKey(),
  instanceId: varchar('instance_id', { length: 64 }).notNull(),
  sessionEpoch: bigint('session_epoch', { mode: 'number' }).notNull(),
  bootId: varchar('boot_id', { length: 100 }),
  agentVersion: varchar('agent_version', { length: 100 }),
  /** null for legacy agents (no hello). */
  declaredCommands: jsonb('declared_commands').$type<string[] | null>(),
  connectedAt: ts('connected_at').notNull().defaultNow(),
  lastSeen: ts('last_seen').notNull().defaultNow(),
});

/**
 * The last ended session of each runner's agent, copied from agent_presence when that row is
 * removed (disconnect, or the holding instance stopping): the dashboard's "last seen" of an
 * offline runner. A live session is always read from agent_presence.
 */
export const agentLastSessions = pgTable('agent_last_sessions', {
  runnerId: varchar('runner_id', { length: 255 }).primaryKey(),
  sessionEpoch: bigint('session_epoch', { mode: 'number' }).notNull(),
  bootId: varchar('boot_id', { length: 100 }),
  agentVersion: varchar('agent_version', { length: 100 }),
  connectedAt: ts('connected_at').notNull(),
  lastSeenAt: ts('last_seen_at').notNull(),
  disconnectedAt: ts('disconnected_at').notNull().defaultNow(),
});

export const controllerInstances = pgTable('controller_instances', {
  instanceId: varchar('instance_id', { length: 64 }).primaryKey(),
  startedAt: ts('started_at').notNull().defaultNow(),
  lastSeen: ts('last_seen').notNull().defaultNow(),
  draining: boolean('draining').notNull().default(false),
});

/** Small key/value settings that survive restarts: maintenance mode, inventory content hash. */
export const controllerSettings = pgTable('controller_settings', {
  key: varchar('key', { length: 100 }).primaryKey(),
  value: jsonb('value').notNull(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const webhookInbox = pgTable(
  'webhook_inbox',
  {
    eventId: varchar('event_id', { length: 200 }).primaryKey(),
    provider: varchar('provider', { length: 20 }).notNull(),
    jobId: varchar('job_id', { length: 255 }),
    status: varchar('status', { length: 50 }),
    payload: jsonb('payload').notNull(),
    receivedAt: ts('received_at').notNull().defaultNow(),
    processedAt: ts('processed_at'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: ts('next_attempt_at').notNull().defaultNow(),
    outcome: varchar('outcome', { length: 100 }),
    lastError: text('last_error'),
  },
  (t) => [index('ix_webhook_inbox_pending').on(t.nextAttemptAt).where(sql`${t.processedAt} is null`)],
);

export const alerts = pgTable(
  'alerts',
  {
    id: serial('id').primaryKey(),
    /** Dedupe key, e.g. `needs_attention:<checkpoint>` or `runner_offline:<runner>`. */
    key: varchar('key', { length: 255 }).notNull(),
    severity: varchar('severity', { length: 20 }).notNull(),
    message: text('message').notNull(),
    runnerId: varchar('runner_id', { length: 255 }),
    checkpointName: varchar('checkpoint_name', { length: 64 }),
    openedAt: ts('opened_at').notNull().defaultNow(),
    lastSentAt: ts('last_sent_at'),
    resolvedAt: ts('resolved_at'),
  },
  (t) => [uniqueIndex('ix_alerts_open_key').on(t.key).where(sql`${t.resolvedAt} is null`)],
);

export const auditLog = pgTable('audit_log', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  actor: varchar('actor', { length: 100 }).notNull(),
  action: varchar('action', { length: 100 }).notNull(),
  target: varchar('target', { length: 255 }),
  detail: jsonb('detail'),
  at: ts('at').notNull().defaultNow(),
});

/** Per-node caps on concurrent Proxmox operations, held across instances. */
export const nodeLeases = pgTable(
  'node_leases',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeKey: varchar('node_key', { length: 255 }).notNull(),
    holder: varchar('holder', { length: 255 }).notNull(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [uniqueIndex('ix_node_leases_holder').on(t.nodeKey, t.holder)],
);
