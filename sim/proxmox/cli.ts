// `e2epool sim proxmox`: runs the Proxmox simulator in the foreground until SIGINT/SIGTERM.
import yargs from 'yargs';
import { defaultSimToken, startProxmoxSimulator, type ProxmoxSimulatorOptions, type SimToken } from './server.js';
import type { SimVmInit } from './state.js';

export class SimulatorUsageError extends Error {}

function parseToken(value: string): SimToken {
  const m = /^([^\s@!=]+@[^\s@!=]+![A-Za-z][A-Za-z0-9._-]*)=(\S+)$/.exec(value);
  if (!m) throw new SimulatorUsageError(`--token must look like user@realm!tokenid=secret, got ${JSON.stringify(value.replace(/=.*/, '=***'))}`);
  return { tokenId: m[1]!, secret: m[2]! };
}

function parseVm(value: string, linearChain: boolean): SimVmInit {
  const m = /^([a-zA-Z0-9][a-zA-Z0-9.-]*):(\d+)(?::([A-Za-z0-9.-]+))?$/.exec(value);
  if (!m || Number(m[2]) < 100) throw new SimulatorUsageError(`--vm must look like node:vmid[:name] with vmid >= 100, got ${JSON.stringify(value)}`);
  return { node: m[1]!, vmid: Number(m[2]), name: m[3] ?? `runner-${m[2]}`, tags: ['e2epool'], linearChain };
}

/** Parses the command line into simulator options; throws SimulatorUsageError with a clear message. */
export async function parseProxmoxSimulatorArgs(args: string[]): Promise<ProxmoxSimulatorOptions> {
  const argv = await yargs(args)
    .scriptName('e2epool sim proxmox')
    .option('port', { type: 'number', default: 8006, describe: 'HTTP port (0: any free port)' })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on' })
    .option('https', { type: 'boolean', default: false, describe: 'Also serve HTTPS with a self-signed certificate' })
    .option('https-port', { type: 'number', default: 0, describe: 'HTTPS port (0: any free port)' })
    .option('profile', { choices: ['fast', 'realistic'] as const, default: 'fast' as const, describe: 'Task durations' })
    .option('token', { type: 'string', array: true, describe: 'API token user@realm!tokenid=secret (repeatable)' })
    .option('vm', { type: 'string', array: true, describe: 'VM node:vmid[:name] (repeatable)' })
    .option('linear-chain', { type: 'boolean', default: false, describe: 'ZFS-like: rollback only to the most recent snapshot' })
    .strict()
    .help(false)
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => { throw new SimulatorUsageError(err?.message ?? msg); })
    .parseAsync();
  for (const [name, value] of [['port', argv.port], ['https-port', argv['https-port']]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 65535) throw new SimulatorUsageError(`--${name} must be a port number`);
  }
  const vms = (argv.vm ?? []).map((v) => parseVm(String(v), argv['linear-chain']));
  if (new Set(vms.map((v) => v.vmid)).size !== vms.length) throw new SimulatorUsageError('--vm ids must be unique');
  return {
    host: argv.host,
    port: argv.port,
    https: argv.https,
    httpsPort: argv['https-port'],
    profile: argv.profile,
    tokens: argv.token?.length ? argv.token.map((t) => parseToken(String(t))) : [defaultSimToken],
    vms: vms.length ? vms : [{ node: 'pve1', vmid: 101, name: 'runner-101', tags: ['e2epool'], linearChain: argv['linear-chain'] }],
  };
}

export async function runProxmoxSimulatorCli(args: string[]): Promise<void> {
  let opts: ProxmoxSimulatorOptions;
  try {
    opts = await parseProxmoxSimulatorArgs(args);
  } catch (err) {
    if (err instanceof SimulatorUsageError) {
      process.stderr.write(`Error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const sim = await startProxmoxSimulator(opts);
  const out = process.stdout;
  out.write(`Proxmox simulator listening on ${sim.url}\n`);
  if (sim.httpsUrl) out.write(`HTTPS: ${sim.httpsUrl} (certificate sha256 fingerprint ${sim.fingerprint})\n`);
  out.write(`API base: ${sim.url}/api2/json  admin: ${sim.url}/_sim/  profile: ${opts.profile}\n`);
  for (const t of opts.tokens ?? []) out.write(`token: ${t.tokenId}${t === defaultSimToken ? ` (default secret '${defaultSimToken.secret}')` : ''}\n`);
  for (const vm of sim.state.vms.values()) out.write(`vm: ${vm.node}/${vm.vmid} ${vm.name} ${vm.status}\n`);
  sim.onVmPowerChange((vmid, status) => out.write(`vm ${vmid} is now ${status}\n`));
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await sim.stop();
}
