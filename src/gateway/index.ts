// Public surface of the agent gateway.
export {
  AGENT_WS_PATH,
  CLOSE_CODES,
  AgentGateway,
  createAgentGateway,
  type GatewayDeps,
  type GatewayTuning,
  type SessionEvent,
  type AgentRequestHandler,
  type AgentCommandRequest,
  type AgentCommandOutput,
  type AgentSessionInfo,
  type SessionEndReason,
} from './gateway.js';
export { PresenceStore } from './presence-store.js';
export { registerInstance, heartbeatInstance, markInstanceDraining, startInstanceHeartbeat, INSTANCE_HEARTBEAT_SECONDS } from './instance-store.js';
export { redactSecrets, truncateOutput, sanitizeOutput, MAX_OUTPUT_CHARS } from '../redaction.js';
export { MAX_FRAME_BYTES } from './envelope.js';
