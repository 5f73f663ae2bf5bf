import { test } from 'vitest';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AgentConfigError,
  assertCredentials,
  configFilePath,
  loadAgentConfig,
} from '../../agent/config.js';
import { resolveSocketGid } from '../../agent/daemon.js';
import { AGENT_VERSION } from '../../agent/version.js';

function tempFile(content: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-agent-config-'));
  const file = path.join(dir, 'agent.yml');
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

const missing = '/nonexistent/e2epool/agent.yml';

test('defaults match e2epool when no file and no env', () => {
  const { config, file, warnings } = loadAgentConfig({ configPath: missing, env: {} });
  assert.equal(file, null);
  assert.deepEqual(warnings, []);
  assert.equal(config.controllerUrl, 'ws://localhost:8080/ws/agent');
  assert.equal(config.runnerId, '');
  assert.equal(config.token, '');
  assert.equal(config.socketPath, '/var/run/e2epool-agent.sock');
  assert.equal(config.reconnectMaxDelay, 60);
  assert.equal(config.heartbeatInterval, 30);
  assert.equal(config.socketMode, 0o660);
  assert.equal(config.socketGroup, undefined);
  assert.equal(config.allowRemoteCommands, false);
  assert.equal(config.shutdownGraceSeconds, 30);
  assert.equal(config.createTimeout, 330);
  assert.equal(config.requestTimeout, 30);
  assert.equal(config.maxOutputBytes, 65536);
  assert.deepEqual(config.commands, {});
});

test('file path: --config, then E2EPOOL_AGENT_CONFIG, then /etc/e2epool/agent.yml', () => {
  assert.equal(configFilePath({ configPath: '/a.yml', env: { E2EPOOL_AGENT_CONFIG: '/b.yml' } }), '/a.yml');
  assert.equal(configFilePath({ env: { E2EPOOL_AGENT_CONFIG: '/b.yml' } }), '/b.yml');
  assert.equal(configFilePath({ env: {} }), '/etc/e2epool/agent.yml');
});

test('YAML values are read, env vars override them, unknown keys are warnings', () => {
  const file = tempFile(
    [
      'controller_url: wss://ctl.example/ws/agent',
      'runner_id: from-file',
      'token: file-token',
      'socket_path: /tmp/x.sock',
      'heartbeat_interval: 10',
      'reconnect_max_delay: "45"',
      'socket_mode: 0640',
      'socket_group: ci',
      'allow_remote_commands: true',
      'commands:',
      '  reset: /usr/local/bin/reset-host',
      '  readiness: "true"',
      'colour: blue',
    ].join('\n'),
  );
  const { config, warnings } = loadAgentConfig({
    env: { E2EPOOL_AGENT_CONFIG: file, E2EPOOL_RUNNER_ID: 'from-env', E2EPOOL_HEARTBEAT_INTERVAL: '5', E2EPOOL_AGENT_SOCKET_MODE: '0600' },
  });
  assert.equal(config.controllerUrl, 'wss://ctl.example/ws/agent');
  assert.equal(config.runnerId, 'from-env');
  assert.equal(config.token, 'file-token');
  assert.equal(config.heartbeatInterval, 5);
  assert.equal(config.reconnectMaxDelay, 45);
  assert.equal(config.socketMode, 0o600);
  assert.equal(config.socketGroup, 'ci');
  assert.equal(config.allowRemoteCommands, true);
  assert.deepEqual(config.commands, { reset: '/usr/local/bin/reset-host', readiness: 'true' });
  assert.deepEqual(warnings, [`unknown key 'colour' in ${file} ignored`]);
});

test('socket_mode written as YAML 0660 means octal, not decimal 660', () => {
  const { config } = loadAgentConfig({ configPath: tempFile('socket_mode: 0660\n'), env: {} });
  assert.equal(config.socketMode, 0o660);
  assert.equal(loadAgentConfig({ configPath: tempFile("socket_mode: '0o640'\n"), env: {} }).config.socketMode, 0o640);
});

test('socket_group: none means no chown; an empty group is an error', () => {
  assert.equal(loadAgentConfig({ configPath: tempFile('socket_group: none\n'), env: {} }).config.socketGroup, null);
  assert.throws(() => loadAgentConfig({ configPath: tempFile('socket_group: ""\n'), env: {} }), /socket_group/);
});

test('invalid values name every bad key and where it came from, without echoing values', () => {
  const file = tempFile('heartbeat_interval: soon\ncontroller_url: http://x/?token=leak\ncommands:\n  "bad name": x\n  "1st": y\n');
  let err: unknown;
  try {
    loadAgentConfig({ configPath: file, env: { E2EPOOL_RECONNECT_MAX_DELAY: '-3', E2EPOOL_AGENT_ALLOW_REMOTE_COMMANDS: 'maybe' } });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof AgentConfigError);
  const msg = (err as Error).message;
  assert.match(msg, /Invalid agent configuration/);
  assert.ok(msg.includes(`(${file})`), 'names the file');
  assert.match(msg, /- heartbeat_interval: .*expected number/);
  assert.match(msg, /- controller_url: must be a ws:\/\/ or wss:\/\/ URL/);
  assert.match(msg, /- reconnect_max_delay \(E2EPOOL_RECONNECT_MAX_DELAY\): /);
  assert.match(msg, /- allow_remote_commands \(E2EPOOL_AGENT_ALLOW_REMOTE_COMMANDS\): /);
  assert.match(msg, /commands\.bad name: command names start with a letter/);
  assert.match(msg, /commands\.1st: /);
  assert.doesNotMatch(msg, /leak/);
});

test('broken YAML and a non-mapping file are clear errors', () => {
  assert.throws(() => loadAgentConfig({ configPath: tempFile('a: [1,\n'), env: {} }), /not valid YAML/);
  assert.throws(() => loadAgentConfig({ configPath: tempFile('- a\n- b\n'), env: {} }), /must contain a mapping/);
});

test('missing runner_id or token: the e2epool message', () => {
  const { config } = loadAgentConfig({ configPath: missing, env: { E2EPOOL_RUNNER_ID: 'r1' } });
  assert.throws(() => assertCredentials(config), { message: 'runner_id and token must be configured' });
  assert.doesNotThrow(() => assertCredentials({ ...config, token: 't' }));
});

test('socket group: default gitlab-runner when it exists, else refuse naming the setting', () => {
  const { config } = loadAgentConfig({ configPath: missing, env: {} });
  assert.equal(resolveSocketGid(config, null, (name) => (name === 'gitlab-runner' ? 999 : null)), 999);
  assert.throws(() => resolveSocketGid(config, '/etc/e2epool/agent.yml', () => null), /socket_group: .*\/etc\/e2epool\/agent\.yml.*socket_group: none/);
  assert.equal(resolveSocketGid({ ...config, socketGroup: null }, null, () => 5), null);
  assert.throws(() => resolveSocketGid({ ...config, socketGroup: 'ghosts' }, null, () => null), /socket_group 'ghosts' does not exist/);
  assert.equal(resolveSocketGid({ ...config, socketGroup: 'root' }, null), 0);
});

test('AGENT_VERSION matches package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  assert.equal(AGENT_VERSION, pkg.version);
});

test('the shipped example config is valid', () => {
  // Installed with mode 0600, as the packaging does.
  const file = tempFile(readFileSync(new URL('../../agent/packaging/agent.example.yml', import.meta.url), 'utf8'));
  const { config, warnings } = loadAgentConfig({ configPath: file, env: {} });
  assert.deepEqual(warnings, []);
  assert.equal(config.socketMode, 0o660);
  assert.equal(config.socketGroup, 'gitlab-runner');
  assert.deepEqual(Object.keys(config.commands).sort(), ['cleanup', 'readiness', 'reset']);
  assert.equal(config.allowRemoteCommands, false);
});

test('refuses settings that expose the token or the host', () => {
  const problems = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
    try {
      loadAgentConfig({ configPath: tempFile(yaml), env });
      return [];
    } catch (err) {
      return String((err as Error).message).split('\n').slice(1).map((l) => l.trim());
    }
  };
  const base = 'runner_id: r1\ntoken: secret-token-of-the-agent-123\n';
  assert.deepEqual(problems(`${base}controller_url: wss://ctl.example.com/ws/agent\n`), []);
  assert.deepEqual(problems(`${base}controller_url: ws://127.0.0.1:8080/ws/agent\nallow_remote_commands: true\n`), [], 'loopback ws is this machine');
  assert.match(problems(`${base}controller_url: ws://ctl.example.com/ws/agent\n`).join('\n'), /ws:\/\/ to another host sends the token in clear text/);
  assert.deepEqual(problems(`${base}controller_url: ws://ctl.example.com/ws/agent\nallow_insecure_transport: true\n`), []);
  assert.match(problems(`${base}controller_url: ws://ctl.example.com/ws/agent\nallow_insecure_transport: true\nallow_remote_commands: true\n`).join('\n'), /allow_remote_commands: needs wss:\/\//);
  assert.match(problems(`${base}socket_mode: 0666\n`).join('\n'), /socket_mode: 0666 is wider than 0660/);
  assert.deepEqual(problems(`${base}socket_mode: 0600\n`), []);
  const readable = tempFile(base);
  chmodSync(readable, 0o644);
  assert.throws(() => loadAgentConfig({ configPath: readable, env: {} }), /is readable by every user \(mode 0644\) and holds the token: chmod 600/);
  assert.throws(() => loadAgentConfig({ configPath: readable, env: {} }), (err: Error) => !err.message.includes('secret-token-of-the-agent'));
});
