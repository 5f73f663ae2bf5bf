// Public entry of the Proxmox simulator for tests and `e2epool dev`.
export { startProxmoxSimulator, defaultSimToken, defaultSimVms, allSimPrivileges } from './server.js';
export type { ProxmoxSimulator, ProxmoxSimulatorOptions, SimToken, SimPrivilege, SimCall } from './server.js';
export type { SimVmInit, PowerState, SimVm, SimTask } from './state.js';
export type { SimFault, SimFaultInput, SimOperation } from './faults.js';
export { simOperations } from './faults.js';
export { simProfiles, resolveDurations } from './profiles.js';
export type { SimDurations, SimProfile, SimTaskType } from './profiles.js';
