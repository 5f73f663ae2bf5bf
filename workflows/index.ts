// Every workflow the worker registers; the entry point of the workflow bundle.
export { selfCheckWorkflow } from './self-check.js';
export type { SelfCheckInput, SelfCheckResult } from './self-check.js';
export { checkpointWorkflow } from './checkpoint.js';
export { retentionWorkflow, orphanSnapshotAuditWorkflow } from './housekeeping.js';
export type { RetentionInput, RetentionResult, OrphanAuditResult } from './housekeeping.js';
