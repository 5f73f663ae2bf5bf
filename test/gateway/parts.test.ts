// Gateway building blocks without I/O: flood limits, output redaction and caps, the session
// registry's epoch rules, and handshake credential parsing.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'vitest';
import fc from 'fast-check';
import { MAX_OUTPUT_CHARS, redactSecrets, sanitizeOutput, truncateOutput } from '../../src/redaction.js';
import { readCredentials } from '../../src/gateway/handshake.js';
import { FloodGuard, TokenBucket } from '../../src/gateway/rate-limit.js';
import { SessionRegistry } from '../../src/gateway/session-registry.js';
import type { AgentSession } from '../../src/gateway/session.js';

describe('rate limits', () => {
  it('a token bucket allows the burst, then the rate', () => {
    const bucket = new TokenBucket(10, 5, 0);
    const first = Array.from({ length: 7 }, () => bucket.take(0));
    assert.deepEqual(first, [true, true, true, true, true, false, false]);
    assert.equal(bucket.take(100), true, 'one token back after 100 ms at 10/s');
    assert.equal(bucket.take(100), false);
    assert.equal(bucket.take(10_000), true);
  });

  it('the flood guard rejects over the limit and closes only a sustained flood', () => {
    const guard = new FloodGuard({ messagesPerSecond: 50, burst: 100, rejectedBurst: 200, rejectedPerSecond: 10 }, 0);
    const verdicts = Array.from({ length: 301 }, () => guard.check(0));
    assert.equal(verdicts.filter((v) => v === 'accept').length, 100);
    assert.equal(verdicts.filter((v) => v === 'reject').length, 200);
    assert.equal(verdicts.at(-1), 'close');
    // A steady agent at the allowed rate is never rejected.
    const steady = new FloodGuard({ messagesPerSecond: 50, burst: 100, rejectedBurst: 200, rejectedPerSecond: 10 }, 0);
    for (let t = 0; t < 60_000; t += 20) assert.equal(steady.check(t), 'accept');
  });
});

describe('command output', () => {
  it('redacts token-looking values', () => {
    const cases: Array<[string, string]> = [
      ['curl -H "Authorization: Bearer abcdefghijk123"', 'curl -H "Authorization: ***"'],
      ['url=https://x/?private_token=glpat-abcdefghij1234567890&x=1', 'url=https://x/?private_token=***&x=1'],
      ['PVEAPIToken=root@pam!ci=1234-5678', 'PVEAPIToken=***'],
      ['clone https://user:s3cret@git.example.com/repo', 'clone https://user:***@git.example.com/repo'],
      ['{"password": "hunter2"}', '{"password": "***"}'],
      ['runner token glrt-AbCdEfGhIjKlMnOp registered', 'runner token *** registered'],
      ['nothing to see here: exit 0', 'nothing to see here: exit 0'],
    ];
    for (const [input, expected] of cases) assert.equal(redactSecrets(input), expected, input);
  });

  it('caps output at 64 KiB with a marker', () => {
    assert.equal(truncateOutput('short'), 'short');
    const out = sanitizeOutput('z'.repeat(200_000));
    assert.ok(out.length <= MAX_OUTPUT_CHARS);
    assert.match(out, /\n\[truncated \d+ characters\]$/);
    fc.assert(
      fc.property(fc.string({ maxLength: 3000 }), fc.integer({ min: 60, max: 2000 }), (s, max) => {
        assert.ok(sanitizeOutput(s, max).length <= max);
      }),
    );
  });
});

describe('session registry', () => {
  const session = (runnerId: string, sessionEpoch: number) => ({ runnerId, sessionEpoch }) as unknown as AgentSession;

  it('the higher epoch wins, whatever the order of registration', () => {
    const registry = new SessionRegistry();
    const s5 = session('r1', 5);
    const s6 = session('r1', 6);
    assert.deepEqual(registry.register(s6), { accepted: true, replaced: null });
    assert.deepEqual(registry.register(s5), { accepted: false, replaced: null });
    assert.equal(registry.get('r1'), s6);
    const s7 = session('r1', 7);
    assert.deepEqual(registry.register(s7), { accepted: true, replaced: s6 });
    assert.equal(registry.sessionsOf('r1').length, 3);
  });

  it("removing an old session never removes the one that replaced it", () => {
    const registry = new SessionRegistry();
    const old = session('r1', 1);
    const fresh = session('r1', 2);
    registry.register(old);
    registry.register(fresh);
    assert.equal(registry.remove(old), false);
    assert.equal(registry.get('r1'), fresh);
    assert.equal(registry.remove(fresh), true);
    assert.equal(registry.get('r1'), undefined);
    assert.equal(registry.size, 0);
  });
});

describe('handshake credentials', () => {
  const req = (authorization?: string) => ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;
  const url = (q: string) => new URL(`http://h/ws/agent${q}`);

  it('reads the header or the e2epool query', () => {
    assert.deepEqual(readCredentials(req(), url('?runner_id=r1&token=t')), { ok: true, runnerId: 'r1', token: 't' });
    assert.deepEqual(readCredentials(req('Bearer t2'), url('?runner_id=r1&token=t')), { ok: true, runnerId: 'r1', token: 't2' });
    assert.deepEqual(readCredentials(req('Bearer t2'), url('')), { ok: true, runnerId: undefined, token: 't2' });
  });

  it('refuses missing or malformed credentials with 401', () => {
    for (const [auth, q] of [[undefined, ''], [undefined, '?runner_id=r1'], [undefined, '?runner_id=r1&token='], ['bearer t', ''], ['Basic x', ''], ['Bearer ', '']] as const) {
      const r = readCredentials(req(auth), url(q));
      assert.equal(r.ok, false, `${auth} ${q}`);
      if (!r.ok) assert.equal(r.status, 401);
    }
  });
});

describe('query tokens can be turned off', () => {
  it('refuses ?token= when the controller accepts the header only', () => {
    const req = (authorization?: string) => ({ headers: authorization ? { authorization } : {} }) as never;
    const url = new URL('ws://c/ws/agent?runner_id=r1&token=t');
    assert.deepEqual(readCredentials(req(), url, { allowQueryToken: false }), { ok: false, status: 401, detail: 'Send the token in the Authorization header: tokens in the URL are turned off on this controller' });
    assert.deepEqual(readCredentials(req('Bearer t2'), url, { allowQueryToken: false }), { ok: true, runnerId: 'r1', token: 't2' });
  });
});

describe('URL scrubbing: the controller and the agent agree', () => {
  it('masks token parameters and URL credentials the same way in both copies', async () => {
    const { stripSecretsFromUrl } = await import('../../src/redaction.js');
    const { redactUrl } = await import('../../agent/log.js');
    const cases: Array<[string, string]> = [
      ['/ws/agent?runner_id=r1&token=s3cret', '/ws/agent?runner_id=r1&token=***'],
      ['wss://c/ws/agent?token=a&x=1', 'wss://c/ws/agent?token=***&x=1'],
      ['https://x/api?private_token=glpat-1&access_token=z&job_token=j', 'https://x/api?private_token=***&access_token=***&job_token=***'],
      ['https://user:pass@host/path', 'https://user:***@host/path'],
      ['/dashboard?tab=runners', '/dashboard?tab=runners'],
    ];
    for (const [input, expected] of cases) {
      assert.equal(stripSecretsFromUrl(input), expected, input);
      assert.equal(redactUrl(input), expected, `agent: ${input}`);
    }
  });
});
