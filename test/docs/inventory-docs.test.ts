import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { INVENTORY_DOC_PATH, renderInventoryReference } from '../../scripts/generate-inventory-docs.js';
import { PROXMOX_REQUIRED_FIELDS, RUNNER_KEYS } from '../../src/inventory/runner-config.js';

/** The table rows of one section, as cells keyed by the first cell's key name. */
function section(doc: string, heading: string): Map<string, string[]> {
  const start = doc.indexOf(`\n## ${heading}`);
  assert.ok(start >= 0, `section ${heading} is missing`);
  const end = doc.indexOf('\n## ', start + 1);
  const rows = new Map<string, string[]>();
  for (const line of doc.slice(start, end < 0 ? undefined : end).split('\n')) {
    const m = /^\| `([a-z_]+)` \|(.*)\|$/.exec(line);
    if (m) rows.set(m[1]!, m[2]!.split(/(?<!\\)\|/).map((c) => c.trim()));
  }
  return rows;
}

describe('inventory reference', () => {
  it('docs/inventory.md is generated from the schema and up to date', () => {
    const committed = readFileSync(INVENTORY_DOC_PATH, 'utf8');
    assert.equal(committed, renderInventoryReference(), 'docs/inventory.md is stale: run npx tsx scripts/generate-inventory-docs.ts');
  });

  it('lists every key the loader accepts under a backend, and the required ones per backend', () => {
    const doc = renderInventoryReference();
    const proxmox = section(doc, '`proxmox` runners');
    const bareMetal = section(doc, '`bare_metal` runners');
    for (const key of RUNNER_KEYS) assert.ok(proxmox.has(key) || bareMetal.has(key), `${key} is missing`);
    const required = section(doc, 'Required keys');
    for (const key of PROXMOX_REQUIRED_FIELDS) {
      assert.deepEqual(required.get(key), ['required', ''], key);
      assert.equal(proxmox.get(key)?.[0], 'yes', key);
      assert.equal(bareMetal.has(key), false, `${key} is Proxmox-only`);
    }
    assert.deepEqual(required.get('reset_cmd'), ['', 'required']);
    assert.deepEqual(required.get('token'), ['required', 'required']);
  });

  it('reads the defaults from the code that applies them', () => {
    const doc = renderInventoryReference();
    const bareMetal = section(doc, '`bare_metal` runners');
    const proxmox = section(doc, '`proxmox` runners');
    // Cells: required, type, default, meaning.
    assert.equal(bareMetal.get('reset_mode')?.[2], '`auto`');
    assert.equal(proxmox.has('reset_mode'), false, 'a Proxmox runner always reboots');
    assert.equal(bareMetal.get('success_action')?.[2], '`cleanup` when `cleanup_cmd` is set, else `reset`');
    assert.equal(proxmox.get('proxmox_verify_tls')?.[2], '`true`');
    assert.equal(proxmox.get('snapshot_vmstate')?.[2], '`false`');
  });
});
