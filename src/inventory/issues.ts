// Describes zod issues the way FastAPI/pydantic did, so 422 bodies keep e2epool's shape
// (`{"detail":[{type, loc, msg, input, ctx?}]}`) and inventory errors read the same way.
import type { z } from 'zod';

export interface ValidationDetailItem {
  type: string;
  loc: Array<string | number>;
  msg: string;
  input: unknown;
  ctx?: Record<string, unknown>;
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function quoteList(values: readonly unknown[]): string {
  const quoted = values.map((v) => `'${String(v)}'`);
  return quoted.length <= 1 ? (quoted[0] ?? '') : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
}

/** One pydantic-style item for one zod issue; `input` is the submitted value at that path. */
export function describeIssue(issue: z.core.$ZodIssue, root: unknown): Omit<ValidationDetailItem, 'loc'> {
  const input = valueAt(root, issue.path);
  switch (issue.code) {
    case 'invalid_type': {
      if (input === undefined) return { type: 'missing', msg: 'Field required', input: null };
      const expected = String(issue.expected);
      if (expected === 'string') return { type: 'string_type', msg: 'Input should be a valid string', input };
      if (expected === 'int' || expected === 'number') {
        if (typeof input === 'string') return { type: 'int_parsing', msg: 'Input should be a valid integer, unable to parse string as an integer', input };
        if (typeof input === 'number') return { type: 'int_from_float', msg: 'Input should be a valid integer, got a number with a fractional part', input };
        return { type: 'int_type', msg: 'Input should be a valid integer', input };
      }
      if (expected === 'boolean') return { type: 'bool_type', msg: 'Input should be a valid boolean', input };
      if (expected === 'array') return { type: 'list_type', msg: 'Input should be a valid list', input };
      if (expected === 'object') {
        return { type: 'model_attributes_type', msg: 'Input should be a valid dictionary or object to extract fields from', input };
      }
      return { type: `${expected}_type`, msg: `Input should be a valid ${expected}`, input };
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'string') {
        return { type: 'string_too_short', msg: `String should have at least ${min} character${min === 1 ? '' : 's'}`, input, ctx: { min_length: min } };
      }
      return { type: 'greater_than_equal', msg: `Input should be greater than or equal to ${min}`, input, ctx: { ge: min } };
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'string') {
        return { type: 'string_too_long', msg: `String should have at most ${max} character${max === 1 ? '' : 's'}`, input, ctx: { max_length: max } };
      }
      return { type: 'less_than_equal', msg: `Input should be less than or equal to ${max}`, input, ctx: { le: max } };
    }
    case 'invalid_format':
      // Our schemas word their pattern messages already (e2epool's pattern, not the JS regex).
      if (issue.message.startsWith('Value error, ')) return { type: 'value_error', msg: issue.message, input };
      return { type: 'string_pattern_mismatch', msg: issue.message, input };
    case 'invalid_value':
      return { type: 'enum', msg: `Input should be ${quoteList(issue.values)}`, input, ctx: { expected: quoteList(issue.values) } };
    default:
      return { type: 'value_error', msg: issue.message, input };
  }
}

/** FastAPI's 422 list; `where` is the first element of `loc` (`body`, `query`, `path`, `header`). */
export function toValidationDetail(error: z.ZodError, root: unknown, where: string): ValidationDetailItem[] {
  return error.issues.map((issue) => {
    const d = describeIssue(issue, root);
    const item: ValidationDetailItem = { type: d.type, loc: [where, ...issue.path.map((p) => (typeof p === 'number' ? p : String(p)))], msg: d.msg, input: d.input };
    if (d.ctx) item.ctx = d.ctx;
    return item;
  });
}

/** One line per issue, e.g. `proxmox_vmid: Input should be a valid integer`, for the loader's errors. */
export function issueLines(error: z.ZodError, root: unknown): string[] {
  return error.issues.map((issue) => {
    const field = issue.path.map(String).join('.') || '(entry)';
    return `${field}: ${describeIssue(issue, root).msg}`;
  });
}
