// A tiny deterministic workflow that calls one activity and returns its answer: `dev` and the tests
// use it to prove a full round trip through a real server and worker.
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { SelfCheckActivities, SelfCheckEcho } from '../activities/self-check.js';

export interface SelfCheckInput {
  message: string;
}

export type SelfCheckResult = SelfCheckEcho;

const { echoSelfCheck } = proxyActivities<SelfCheckActivities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
});

export async function selfCheckWorkflow(input: SelfCheckInput): Promise<SelfCheckResult> {
  if (typeof input?.message !== 'string') {
    throw ApplicationFailure.nonRetryable('selfCheckWorkflow expects { message: string }', 'validation');
  }
  return await echoSelfCheck({ message: input.message });
}
