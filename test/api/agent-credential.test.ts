// The agent's own credential: once a runner has one, the runner token (the one CI jobs hold) can no
// longer open an agent session, while it still works for /checkpoint/*. Legacy runners keep working.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { agentAuthenticator } from '../../src/inventory/agent-credential.js';
import { parseInventory } from '../../src/inventory/inventory-file.js';
import { runnerView } from '../../src/api/runner-view.js';
import { RunnerRegistry } from '../../src/inventory/registry.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';

describe('agent credential', () => {
  let database: TestDatabase;
  let registry: RunnerRegistry;
  beforeAll(async () => {
    database = await createPgliteDatabase();
    registry = new RunnerRegistry({ db: database.db, pepper: 'agent-credential-test-pepper' });
  });
  afterAll(() => database?.drop());

  it('an API runner starts on the legacy scheme; its agent token then replaces the runner token for sessions only', async () => {
    const { token } = await registry.createRunner({ runner_id: 'api-1', backend: 'bare_metal', reset_cmd: 'r' });
    const authenticate = agentAuthenticator(registry);
    assert.deepEqual(await authenticate('api-1', token), { runnerId: 'api-1' }, 'legacy: the runner token opens sessions');
    assert.equal(runnerView((await registry.getRunner('api-1'))!).agent_credential, 'runner_token');

    const rotated = await registry.rotateAgentToken('api-1');
    assert.ok(rotated && rotated.agentToken.length >= 24 && rotated.agentToken !== token);
    assert.equal(await authenticate('api-1', token), null, 'the runner token cannot open an agent session any more');
    assert.equal(await authenticate(undefined, token), null);
    assert.deepEqual(await authenticate('api-1', rotated.agentToken), { runnerId: 'api-1' });
    assert.equal((await registry.authenticateRunnerToken(token))?.runnerId, 'api-1', 'CI keeps using the runner token for /checkpoint/*');
    assert.equal(await registry.authenticateRunnerToken(rotated.agentToken), null, 'the agent token is not a CI token');
    assert.equal(runnerView(rotated.runner).agent_credential, 'agent_token');
  });

  it('an inventory runner gets its agent_token from the file; the same value as token is refused', async () => {
    const entry = (extra: string) => `runners:\n  - {runner_id: inv-1, backend: bare_metal, token: inv-runner-token-0123456789ab, reset_cmd: r, readiness_cmd: ok, gitlab_runner_id: 1${extra}}\n`;
    await registry.syncInventory(parseInventory(entry(', agent_token: inv-agent-token-0123456789abc')));
    const authenticate = agentAuthenticator(registry);
    assert.equal(await authenticate('inv-1', 'inv-runner-token-0123456789ab'), null);
    assert.deepEqual(await authenticate('inv-1', 'inv-agent-token-0123456789abc'), { runnerId: 'inv-1' });
    assert.throws(() => parseInventory(entry(', agent_token: inv-runner-token-0123456789ab')), /same agent_token as token/);
    await assert.rejects(registry.rotateAgentToken('inv-1'), /set its agent_token there/);
  });
});
