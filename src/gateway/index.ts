// Public surface of the agent gateway: what the controller and the tests take from it.
export { AgentGateway, createAgentGateway, type GatewayTuning, type SessionEvent, type AgentRequestHandler } from './gateway.js';
export { PresenceStore } from './presence-store.js';
export { markInstanceDraining } from './instance-store.js';
