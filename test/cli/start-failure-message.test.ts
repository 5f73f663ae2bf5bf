// A start that fails on the database says so and names the setting to fix: pg's own
// `connect ECONNREFUSED 127.0.0.1:5999` says neither. Other failures are left as they are.
import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { explainStartFailure } from '../../src/cli/command.js';

describe('start failures on the database', () => {
  it('name E2EPOOL_DATABASE_URL and leave other failures alone', () => {
    const config = { DATABASE_URL: 'postgresql://e2epool:secret@db.internal:5999/e2epool' };
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5999'), { code: 'ECONNREFUSED', port: 5999 });
    const explained = explainStartFailure(refused, config) as Error;
    assert.equal(explained.message, 'cannot reach the database at db.internal:5999/e2epool (E2EPOOL_DATABASE_URL): ECONNREFUSED');
    assert.ok(!explained.message.includes('secret'));
    const auth = Object.assign(new Error('password authentication failed for user "e2epool"'), { code: '28P01' });
    assert.match((explainStartFailure(auth, config) as Error).message, /^the database at db\.internal:5999\/e2epool \(E2EPOOL_DATABASE_URL\) refused: password authentication failed/);
    const temporal = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7233'), { code: 'ECONNREFUSED', port: 7233 });
    assert.equal(explainStartFailure(temporal, config), temporal, 'another port is not the database');
    const sqlError = Object.assign(new Error('syntax error'), { code: '42601' });
    assert.equal(explainStartFailure(sqlError, config), sqlError);
    assert.equal(explainStartFailure(refused, { DATABASE_URL: 'pglite:.data/pglite' }), refused);
  });
});
