// docker-compose.yml as shipped, with the documented .env.example: Debian's docker-compose accepts
// it, every .env setting reaches the controller, the inventory is a directory mount, /metrics stays
// internal, and Prometheus loads rules that name metrics the controller exports.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../temporal/tool-paths.js';

const COMPOSE = '/usr/bin/docker-compose';

describe('docker-compose.yml', () => {
  it('is valid with .env.example and passes every .env setting to the controller', (t) => {
    if (!existsSync(COMPOSE)) {
      if (process.env.CI === 'true') throw new Error(`${COMPOSE} is missing: scripts/install-tools.sh installs Debian's docker-compose`);
      return t.skip('docker-compose not installed (not CI)');
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-compose-'));
    cpSync(path.join(repoRoot, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
    cpSync(path.join(repoRoot, 'deploy'), path.join(dir, 'deploy'), { recursive: true });
    writeFileSync(path.join(dir, '.env'), readFileSync(path.join(repoRoot, '.env.example'), 'utf8') + 'E2EPOOL_READINESS_TIMEOUT_SECONDS=240\n');
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('E2EPOOL_') && k !== 'POSTGRES_PASSWORD'));
    const result = spawnSync(COMPOSE, ['config'], { cwd: dir, env: clean, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    const config = parse(result.stdout) as { services: Record<string, any> };
    const controller = config.services.controller;
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

  it('Prometheus scrapes the internal listener and its rules name metrics the controller exports', () => {
    const prom = parse(readFileSync(path.join(repoRoot, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8'));
    assert.deepEqual(prom.scrape_configs[0].static_configs[0].targets, ['controller:9464']);
    const rules = parse(readFileSync(path.join(repoRoot, 'deploy', 'prometheus', 'rules.yml'), 'utf8')).groups.flatMap((g: { rules: unknown[] }) => g.rules);
    const metricsSource = readFileSync(path.join(repoRoot, 'src', 'metrics', 'metrics.ts'), 'utf8');
    assert.ok(rules.length >= 4);
    for (const r of rules) {
      assert.ok(r.alert && r.expr && ['critical', 'warning'].includes(r.labels?.severity) && r.annotations?.summary && r.annotations?.runbook, JSON.stringify(r));
      for (const name of String(r.expr).match(/e2epool_[a-z_]+/g) ?? []) assert.ok(metricsSource.includes(`'${name}'`), `${r.alert} uses ${name}, which the controller does not export`);
    }
  });
});
