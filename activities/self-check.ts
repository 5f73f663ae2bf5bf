// The activity of the self-check workflow: echoes the message with where it ran, so `dev` and the
// tests can prove a full round trip (client → server → workflow worker → activity worker → back).
import { activityInfo } from '@temporalio/activity';

export interface SelfCheckEchoInput {
  message: string;
}

export interface SelfCheckEcho {
  message: string;
  workflowId: string;
  activityAttempt: number;
  taskQueue: string;
}

export interface SelfCheckActivities {
  echoSelfCheck(input: SelfCheckEchoInput): Promise<SelfCheckEcho>;
}

export function createSelfCheckActivities(): SelfCheckActivities {
  return {
    async echoSelfCheck(input) {
      const info = activityInfo();
      return {
        message: input.message,
        workflowId: info.workflowExecution?.workflowId ?? '',
        activityAttempt: info.attempt,
        taskQueue: info.taskQueue,
      };
    },
  };
}
