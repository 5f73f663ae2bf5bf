// A state group of src/domain as an SQL list. Only domain constants reach sql.raw, never input.
import { sql, type SQL } from 'drizzle-orm';
import { isCheckpointState, type CheckpointState } from '../domain/checkpoint-states.js';

export function statesSql(states: readonly CheckpointState[]): SQL {
  if (states.length === 0 || !states.every(isCheckpointState)) throw new Error('statesSql takes checkpoint states only');
  return sql.raw(states.map((s) => `'${s}'`).join(','));
}
