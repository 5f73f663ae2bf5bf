// The operator's tunables: each setting is read from E2EPOOL_*, validated with a message naming it,
// and changes what the function it feeds does (alert re-sends, failure-rate sample, retention time,
// instance id).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { alertThresholdsFromConfig } from '../../src/alerts/conditions.js';
import { createAlertDelivery } from '../../src/alerts/delivery.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { instanceIdOf } from '../../src/controller.js';
import { createLogger } from '../../src/logger.js';
import { housekeepingScheduleDefinitions, parseTimeOfDay, RETENTION_SCHEDULE_ID } from '../../temporal/schedules.js';
import { gatewayTaskQueue } from '../../activities/types.js';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  return [];
};

describe('operator settings', () => {
  it('have the defaults that were hard-coded before', () => {
    const c = loadConfig({});
    assert.equal(c.ALERT_RESEND_INTERVAL_SECONDS, 300);
    assert.equal(c.WEBHOOK_MAX_ATTEMPTS, 20);
    assert.equal(c.METRICS_SETTLE_SECONDS, 60);
    assert.equal(c.ALERT_FAILURE_RATE_MIN_SAMPLES, 5);
    assert.equal(c.RETENTION_TIME, '03:17');
    assert.equal(c.INSTANCE_ID, undefined);
    assert.equal(c.CREATE_RATE_LIMIT_BURST, 10);
    assert.equal(c.CREATE_RATE_LIMIT_PER_MINUTE, 60);
  });

  it('are read from the environment and refused with the setting named', () => {
    const c = loadConfig({
      E2EPOOL_ALERT_RESEND_INTERVAL_SECONDS: '0',
      E2EPOOL_WEBHOOK_MAX_ATTEMPTS: '3',
      E2EPOOL_METRICS_SETTLE_SECONDS: '5',
      E2EPOOL_ALERT_FAILURE_RATE_MIN_SAMPLES: '2',
      E2EPOOL_RETENTION_TIME: '23:05',
      E2EPOOL_INSTANCE_ID: 'ctl-a1',
    });
    assert.deepEqual(
      [c.ALERT_RESEND_INTERVAL_SECONDS, c.WEBHOOK_MAX_ATTEMPTS, c.METRICS_SETTLE_SECONDS, c.ALERT_FAILURE_RATE_MIN_SAMPLES, c.RETENTION_TIME, c.INSTANCE_ID],
      [0, 3, 5, 2, '23:05', 'ctl-a1'],
    );
    const problems = problemsOf({ E2EPOOL_RETENTION_TIME: '3:17', E2EPOOL_INSTANCE_ID: 'Ctl A/1', E2EPOOL_WEBHOOK_MAX_ATTEMPTS: '0' });
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems.find((p) => p.startsWith('E2EPOOL_RETENTION_TIME'))!, /HH:MM/);
    assert.match(problems.find((p) => p.startsWith('E2EPOOL_INSTANCE_ID'))!, /task queue/);
    assert.ok(problems.some((p) => p.startsWith('E2EPOOL_WEBHOOK_MAX_ATTEMPTS')));
    for (const bad of ['-a', 'a-', 'a_b', 'x'.repeat(41), 'a.b']) assert.equal(problemsOf({ E2EPOOL_INSTANCE_ID: bad }).length, 1, bad);
  });

  it('E2EPOOL_INSTANCE_ID names the gateway task queue across restarts; unset stays random per start', () => {
    assert.equal(instanceIdOf({ INSTANCE_ID: 'ctl-a1' }), 'ctl-a1');
    assert.equal(gatewayTaskQueue(instanceIdOf({ INSTANCE_ID: 'ctl-a1' })), 'e2epool-gw-ctl-a1');
    assert.equal(instanceIdOf({ INSTANCE_ID: 'ctl-a1' }, 'worker'), 'ctl-a1-worker', 'a worker on the same env file is told apart');
    const a = instanceIdOf({ INSTANCE_ID: undefined });
    const b = instanceIdOf({ INSTANCE_ID: undefined });
    assert.notEqual(a, b);
    assert.match(a, /^[a-z0-9]+-[0-9a-f]{8}$/);
  });

  it('E2EPOOL_RETENTION_TIME sets the hour and minute of the daily retention schedule', () => {
    const calendarOf = (retentionTime?: string) => (housekeepingScheduleDefinitions({ taskQueue: 'q', retentionDays: 90, ...(retentionTime ? { retentionTime } : {}) })[RETENTION_SCHEDULE_ID]!.spec as any).calendars[0];
    assert.deepEqual([calendarOf().hour, calendarOf().minute], [3, 17]);
    assert.deepEqual([calendarOf('23:05').hour, calendarOf('23:05').minute], [23, 5]);
    assert.deepEqual(parseTimeOfDay('00:00'), { hour: 0, minute: 0 });
    assert.throws(() => parseTimeOfDay('24:00'), /HH:MM/);
  });

  it('E2EPOOL_ALERT_FAILURE_RATE_MIN_SAMPLES reaches the alert thresholds', () => {
    assert.equal(alertThresholdsFromConfig(loadConfig({})).failureRateMinSamples, 5);
    assert.equal(alertThresholdsFromConfig(loadConfig({ E2EPOOL_ALERT_FAILURE_RATE_MIN_SAMPLES: '12' })).failureRateMinSamples, 12);
  });

});

describe('E2EPOOL_ALERT_RESEND_INTERVAL_SECONDS', () => {
  let server: http.Server;
  let url: string;
  const received: unknown[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const alert = { key: 'queue_depth:warning', severity: 'warning', message: 'Queue depth 12' };
  const logger = createLogger({ level: 'silent' });

  it('holds the same alert back within the interval', async () => {
    received.length = 0;
    const delivery = createAlertDelivery({ webhookUrls: [url], format: 'generic', logger, minIntervalSeconds: loadConfig({}).ALERT_RESEND_INTERVAL_SECONDS });
    await delivery.deliver(alert);
    await delivery.deliver(alert);
    assert.equal(received.length, 1);
  });

  it('0 sends every time', async () => {
    received.length = 0;
    const delivery = createAlertDelivery({ webhookUrls: [url], format: 'generic', logger, minIntervalSeconds: loadConfig({ E2EPOOL_ALERT_RESEND_INTERVAL_SECONDS: '0' }).ALERT_RESEND_INTERVAL_SECONDS });
    await delivery.deliver(alert);
    await delivery.deliver(alert);
    assert.equal(received.length, 2);
  });
});
