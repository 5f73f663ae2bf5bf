// deploy/nginx.conf as shipped, loaded by Debian's nginx the way the compose file mounts it (a
// conf.d file inside http{}), with only its upstream, certificate and log paths pointed at this
// test: it passes `nginx -t`, hides /metrics in every spelling, proxies the API, and never writes
// an agent's ?token= to the access log.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../temporal/free-port.js';
import { repoRoot } from '../../temporal/tool-paths.js';
import { writeNginxConfig } from '../helpers/nginx.js';

const NGINX = '/usr/sbin/nginx';
const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-nginx-'));

function get(port: number, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: url, method: 'GET', rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('deploy/nginx.conf', () => {
  let upstream: http.Server;
  const seen: string[] = [];
  let nginx: ChildProcess | undefined;
  let port = 0;

  beforeAll(async () => {
    if (!existsSync(NGINX)) {
      if (process.env.CI === 'true') throw new Error(`${NGINX} is missing: scripts/install-tools.sh installs Debian's nginx-light`);
      return;
    }
    upstream = http.createServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    port = await findFreePort();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', path.join(dir, 'server.key'), '-out', path.join(dir, 'server.crt')], { stdio: 'pipe' });
    const shipped = readFileSync(path.join(repoRoot, 'deploy', 'nginx.conf'), 'utf8');
    const site = shipped
      .replaceAll('http://controller:8080', `http://127.0.0.1:${upstreamPort}`)
      .replaceAll('/etc/nginx/tls/', `${dir}/`)
      .replaceAll('/var/log/nginx/access.log', path.join(dir, 'access.log'))
      .replace(/listen 8443\b/, `listen 127.0.0.1:${port}`);
    assert.notEqual(site, shipped);
    writeNginxConfig(dir, site);
  });
  afterAll(async () => {
    nginx?.kill('SIGTERM');
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes nginx -t as the compose file mounts it', (t) => {
    if (!existsSync(NGINX)) return t.skip('nginx not installed (not CI)');
    const check = spawnSync(NGINX, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
  });

  it('hides /metrics in every spelling, proxies the API, and logs no query string', async (t) => {
    if (!existsSync(NGINX)) return t.skip('nginx not installed (not CI)');
    nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      try {
        await get(port, '/healthz');
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    assert.equal((await get(port, '/healthz')).status, 200);
    for (const variant of ['/metrics', '/METRICS', '/Metrics', '/metrics/', '/metrics?x=1', '/mEtRiCs/']) {
      assert.equal((await get(port, variant)).status, 404, variant);
    }
    assert.ok(!seen.some((u) => /metrics/i.test(u)), `the controller was asked for metrics: ${seen.join(', ')}`);
    await get(port, '/ws/agent?runner_id=r1&token=agent-secret-in-the-query-0123');
    assert.ok(seen.some((u) => u.startsWith('/ws/agent')), 'the agent path is proxied');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const log = readFileSync(path.join(dir, 'access.log'), 'utf8');
    assert.match(log, /"GET \/ws\/agent"/);
    assert.ok(!log.includes('agent-secret-in-the-query'), 'the token is not in the access log');
  });
});
