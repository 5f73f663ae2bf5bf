// GitLab simulator: import from here in tests, `e2epool dev` and `e2epool sim gitlab`.
export {
  DEFAULT_SIM_TOKEN,
  startGitlabSimulator,
  type CallFilter,
  type GitlabSimulator,
  type GitlabSimulatorApi,
  type GitlabSimulatorOptions,
  type SimCall,
} from './simulator.js';
export { runGitlabSimulatorCli, parseGitlabSimulatorArgs, DEFAULT_SIM_PORT, type GitlabSimulatorCliOptions, type GitlabSimulatorFlags } from './cli.js';
export { SIM_ENDPOINTS, type SimEndpoint, type SimFault, type SimFaultTarget } from './faults.js';
export { GitlabSimState, SimInputError, type NewJob, type NewProject, type NewRunner, type SimJob, type SimProject, type SimRunner } from './state.js';
export type { SimWebhookConfig, WebhookDeliveryRecord } from './webhook-sender.js';
export { startSimRunnerLoop, type SimJobResult, type SimRunnerLoop, type SimRunnerLoopOptions } from './runner-loop.js';
