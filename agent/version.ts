// Sent in hello and shown by `e2epool status`. Kept equal to package.json by a unit test, because
// the agent also ships without package.json.
export const AGENT_VERSION = '0.1.0';
