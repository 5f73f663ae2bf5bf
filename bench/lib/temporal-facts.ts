// Facts read from the Temporal server after a run: history length per workflow and whether any
// workflow task failed (a wedged workflow), decoded only as far as the checks need.
import { Connection, Client } from '@temporalio/client';
import proto from '@temporalio/proto';

const EventType = proto.temporal.api.enums.v1.EventType;
const WorkflowTaskFailedCause = proto.temporal.api.enums.v1.WorkflowTaskFailedCause;

export interface WorkflowFacts {
  workflowId: string;
  status: string;
  historyLength: number;
  /** WorkflowTaskFailed events in its history (only read when asked for). */
  workflowTaskFailures?: number;
  /** First failure message of a failed workflow task. */
  workflowTaskFailure?: string;
  continuedAsNew?: boolean;
}

export async function connect(address: string): Promise<{ connection: Connection; client: Client }> {
  const connection = await Connection.connect({ address, connectTimeout: 10_000 });
  return { connection, client: new Client({ connection, namespace: 'default' }) };
}

/** Every checkpoint workflow execution (newest first), with its history length. */
export async function listCheckpointWorkflows(client: Client, limit = 5000): Promise<WorkflowFacts[]> {
  const out: WorkflowFacts[] = [];
  for await (const wf of client.workflow.list({ query: "WorkflowType IN ('checkpointV2Workflow', 'checkpointWorkflow')" })) {
    // Visibility records the length when a run closes; ask an open run itself.
    const historyLength = wf.status.name === 'RUNNING' ? (await client.workflow.getHandle(wf.workflowId, wf.runId).describe()).historyLength : wf.historyLength;
    out.push({ workflowId: wf.workflowId, status: wf.status.name, historyLength });
    if (out.length >= limit) break;
  }
  return out;
}

/** Reads a history and counts its failed workflow tasks. */
export async function inspectHistory(client: Client, workflowId: string, runId?: string): Promise<Pick<WorkflowFacts, 'workflowTaskFailures' | 'workflowTaskFailure' | 'historyLength' | 'continuedAsNew'>> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  let failures = 0;
  let first: string | undefined;
  let continuedAsNew = false;
  for (const event of history.events ?? []) {
    // UnhandledCommand is the server refusing a completion because a signal arrived meanwhile (a
    // late duplicate finalize as the run ends): the next task handles it. Not a failure of our code.
    const cause = event.workflowTaskFailedEventAttributes?.cause;
    if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED && cause !== WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND) {
      failures += 1;
      first ??= event.workflowTaskFailedEventAttributes?.failure?.message ?? 'workflow task failed';
    }
    if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW) continuedAsNew = true;
  }
  return { historyLength: history.events?.length ?? 0, workflowTaskFailures: failures, ...(first ? { workflowTaskFailure: first } : {}), continuedAsNew };
}
