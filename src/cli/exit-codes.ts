// CLI exit codes kept from e2epool: 0 ok, 1 error, 2 agent not running. Usage errors also exit 2,
// as Click did.
export const exitOk = 0;
export const exitError = 1;
export const exitAgentNotRunning = 2;
export const usageExitCode = 2;
