import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { assertTransportAllowed, gitlabCredentialsFor, isLoopbackHost, isPlaintextToNetwork } from '../../src/integrations/transport-policy.js';
import { checkRunnerRules } from '../../src/inventory/runner-config.js';

const global = { url: 'https://gitlab.example.com', token: 'glpat-global' };
const runner = (over: Partial<Parameters<typeof gitlabCredentialsFor>[0]> = {}) => ({ runnerId: 'r1', gitlabUrl: null, gitlabToken: null, allowInsecureTransport: false, ...over });

describe('transport policy', () => {
  it('knows loopback hosts', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]', '::1']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['10.0.0.1', 'gitlab.example.com', '128.0.0.1', 'localhost.evil.com']) assert.equal(isLoopbackHost(h), false, h);
  });

  it('plain http is refused to another host, allowed to this machine and when the runner says so', () => {
    assert.equal(isPlaintextToNetwork('http://10.0.0.5:8006'), true);
    assert.equal(isPlaintextToNetwork('https://10.0.0.5:8006'), false);
    assert.equal(isPlaintextToNetwork('http://127.0.0.1:9000'), false);
    assert.throws(() => assertTransportAllowed('http://gitlab.lan', 'gitlab_url', false), /plain http to another host/);
    assert.doesNotThrow(() => assertTransportAllowed('http://gitlab.lan', 'gitlab_url', true));
  });

  it('sends the global token only to the global origin', () => {
    assert.deepEqual(gitlabCredentialsFor(runner(), global), { baseUrl: global.url, token: global.token });
    assert.deepEqual(gitlabCredentialsFor(runner({ gitlabUrl: 'https://gitlab.example.com/' }), global).token, global.token, 'same origin, other path');
    assert.throws(() => gitlabCredentialsFor(runner({ gitlabUrl: 'https://evil.example.net' }), global), /own gitlab_url .* but no gitlab_token/);
    assert.throws(() => gitlabCredentialsFor(runner({ gitlabUrl: 'http://gitlab.example.com' }), global), /no gitlab_token/, 'http is another origin');
    assert.deepEqual(gitlabCredentialsFor(runner({ gitlabUrl: 'https://other.example.net', gitlabToken: 'glpat-own' }), global), { baseUrl: 'https://other.example.net', token: 'glpat-own' });
    assert.throws(() => gitlabCredentialsFor(runner({ gitlabUrl: 'http://other.lan', gitlabToken: 'glpat-own' }), global), /plain http/);
  });

  it('the runner rules refuse plain http to another host at load and in the admin API', () => {
    const base = { runner_id: 'r1', backend: 'bare_metal', reset_cmd: 'true' } as const;
    assert.deepEqual(checkRunnerRules({ ...base, gitlab_url: 'http://gitlab.lan' }), { rule: 'insecure_transport', field: 'gitlab_url' });
    assert.equal(checkRunnerRules({ ...base, gitlab_url: 'http://gitlab.lan', allow_insecure_transport: true }), null);
    assert.equal(checkRunnerRules({ ...base, gitlab_url: 'http://127.0.0.1:8080' }), null);
    assert.deepEqual(checkRunnerRules({ runner_id: 'p1', backend: 'proxmox', proxmox_host: 'http://pve.lan:8006', proxmox_user: 'u', proxmox_token_name: 't', proxmox_token_value: 'v', proxmox_node: 'n', proxmox_vmid: 100 }), { rule: 'insecure_transport', field: 'proxmox_host' });
  });
});
