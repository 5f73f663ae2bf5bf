// Every workflow the worker registers; the entry point of the workflow bundle.
export { selfCheckWorkflow } from './self-check.js';
export type { SelfCheckInput, SelfCheckResult } from './self-check.js';
export { checkpointV2Workflow } from './checkpoint/workflow.js';
// The first release: registered until no run of it is open (docs/development.md).
export { checkpointWorkflow } from './checkpoint-v1.js';
export { retentionWorkflow, orphanSnapshotAuditWorkflow } from './housekeeping.js';
export type { RetentionInput, RetentionResult, OrphanAuditResult } from './housekeeping.js';
