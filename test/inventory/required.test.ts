import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { InventoryError } from '../../src/inventory/inventory-file.js';
import { startInventorySync } from '../../src/inventory/watch.js';

describe('a required inventory', () => {
  it('a missing file stops the start with an error naming the path', async () => {
    const registry = { syncInventory: async () => { throw new Error('never reached'); } } as never;
    await assert.rejects(startInventorySync({ registry, path: '/nonexistent/e2epool/inventory/inventory.yml', required: true }), (err: unknown) => {
      assert.ok(err instanceof InventoryError);
      assert.match(err.message, /Inventory file not found: \/nonexistent\/e2epool\/inventory\/inventory\.yml/);
      return true;
    });
  });
});
