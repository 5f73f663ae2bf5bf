// IPC request types the agent accepts from the CLI.

/** Forwarded to the controller unchanged (e2epool's request types). */
export const FORWARDED_TYPES = ['create', 'finalize', 'status', 'ping'] as const;
/** Answered by the agent itself: its connection and session (`e2epool status` without a checkpoint). */
export const AGENT_STATUS_TYPE = 'agent_status';
