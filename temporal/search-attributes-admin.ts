// Lists and registers e2epool's search attributes through the operator service (ARCHITECTURE §4.11).
// `serve`/`worker` call assertSearchAttributes at start; `temporal-dev` and the test helpers register.
import type { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { E2epoolError } from '../src/domain/errors.js';
import { grpcCodeOf, grpcDetailsOf, grpcStatus } from './grpc-status.js';
import { cliTypeName, e2epoolSearchAttributes, type SearchAttributeDefinition } from './search-attributes.js';

type OperatorConnection = Pick<Connection, 'operatorService'>;

// temporal.api.enums.v1.IndexedValueType wire values.
const indexedValueTypes: Record<SearchAttributeType, number> = {
  TEXT: 1,
  KEYWORD: 2,
  INT: 3,
  DOUBLE: 4,
  BOOL: 5,
  DATETIME: 6,
  KEYWORD_LIST: 7,
};

export interface SearchAttributeInspection {
  /** Not registered in the namespace. */
  missing: SearchAttributeDefinition[];
  /** Registered under our name with another type: registering cannot fix it, an operator must. */
  wrongType: Array<SearchAttributeDefinition & { registeredType: number }>;
}

// The namespace's registered attributes by name, or 'unsupported' when the server cannot list them.
async function fetchRegistered(connection: OperatorConnection, namespace: string): Promise<Record<string, number> | 'unsupported'> {
  try {
    const response = await connection.operatorService.listSearchAttributes({ namespace });
    return { ...(response.systemAttributes ?? {}), ...(response.customAttributes ?? {}) } as Record<string, number>;
  } catch (err) {
    if (grpcCodeOf(err) === grpcStatus.UNIMPLEMENTED) return 'unsupported';
    throw new E2epoolError('temporal_unavailable', `Cannot list the search attributes of Temporal namespace '${namespace}': ${grpcDetailsOf(err)}`);
  }
}

function compare(registered: Record<string, number>): SearchAttributeInspection {
  const result: SearchAttributeInspection = { missing: [], wrongType: [] };
  for (const attribute of e2epoolSearchAttributes) {
    const type = registered[attribute.name];
    if (type === undefined) result.missing.push(attribute);
    else if (type !== indexedValueTypes[attribute.type]) result.wrongType.push({ ...attribute, registeredType: type });
  }
  return result;
}

/** Compares the namespace's search attributes with ours. */
export async function inspectSearchAttributes(connection: OperatorConnection, namespace: string): Promise<SearchAttributeInspection> {
  const registered = await fetchRegistered(connection, namespace);
  if (registered === 'unsupported') {
    throw new E2epoolError('not_configured', `The Temporal server cannot list the search attributes of namespace '${namespace}' (ListSearchAttributes is unimplemented).`);
  }
  return compare(registered);
}

export async function listMissingSearchAttributes(connection: OperatorConnection, namespace: string): Promise<SearchAttributeDefinition[]> {
  return (await inspectSearchAttributes(connection, namespace)).missing;
}

/** The `temporal operator search-attribute create` commands that add the given attributes. */
export function searchAttributeCreateCommands(namespace: string, attributes: ReadonlyArray<SearchAttributeDefinition> = e2epoolSearchAttributes): string[] {
  return attributes.map(
    (a) => `temporal operator search-attribute create --namespace ${namespace} --name ${a.name} --type ${cliTypeName(a.type)}`,
  );
}

async function addOne(connection: OperatorConnection, namespace: string, attribute: SearchAttributeDefinition): Promise<boolean> {
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: { [attribute.name]: indexedValueTypes[attribute.type] },
    });
    return true;
  } catch (err) {
    // Another process (a second instance, a concurrent test) registered it first: that is the goal.
    if (grpcCodeOf(err) === grpcStatus.ALREADY_EXISTS) return false;
    throw new E2epoolError(
      'temporal_unavailable',
      `Cannot register search attribute ${attribute.name} (${cliTypeName(attribute.type)}) in Temporal namespace '${namespace}': ${grpcDetailsOf(err)}`,
    );
  }
}

/**
 * Registers whichever of our search attributes the namespace lacks and returns their names.
 * Idempotent. Servers without ListSearchAttributes (the time-skipping test server) get every
 * attribute added one by one, "already exists" counting as done.
 */
export async function registerSearchAttributes(connection: OperatorConnection, namespace: string): Promise<string[]> {
  const registered = await fetchRegistered(connection, namespace);
  let missing: SearchAttributeDefinition[];
  if (registered === 'unsupported') {
    missing = [...e2epoolSearchAttributes];
  } else {
    const inspection = compare(registered);
    if (inspection.wrongType.length > 0) throw wrongTypeError(namespace, inspection.wrongType);
    missing = inspection.missing;
  }
  const added: string[] = [];
  for (const attribute of missing) {
    if (await addOne(connection, namespace, attribute)) added.push(attribute.name);
  }
  return added;
}

function wrongTypeError(namespace: string, wrongType: SearchAttributeInspection['wrongType']): E2epoolError {
  const list = wrongType.map((a) => `${a.name} must be ${cliTypeName(a.type)}`).join(', ');
  return new E2epoolError(
    'not_configured',
    `Temporal namespace '${namespace}' has search attributes of the wrong type: ${list}. Remove them and create them again with:\n` +
      searchAttributeCreateCommands(namespace, wrongType).map((c) => `  ${c}`).join('\n'),
  );
}

/**
 * Start check of `serve` and `worker`: with `register`, adds what is missing; otherwise fails naming
 * each missing attribute and the commands that create it.
 */
export async function assertSearchAttributes(
  connection: OperatorConnection,
  namespace: string,
  opts: { register: boolean },
): Promise<{ registered: string[] }> {
  if (opts.register) return { registered: await registerSearchAttributes(connection, namespace) };
  const { missing, wrongType } = await inspectSearchAttributes(connection, namespace);
  if (wrongType.length > 0) throw wrongTypeError(namespace, wrongType);
  if (missing.length > 0) {
    throw new E2epoolError(
      'not_configured',
      `Temporal namespace '${namespace}' lacks the search attributes ${missing.map((a) => a.name).join(', ')}. ` +
        `Create them with:\n${searchAttributeCreateCommands(namespace, missing).map((c) => `  ${c}`).join('\n')}\n` +
        `or set E2EPOOL_TEMPORAL_REGISTER_SEARCH_ATTRIBUTES=true to register them at start.`,
      { missing: missing.map((a) => a.name) },
    );
  }
  return { registered: [] };
}
