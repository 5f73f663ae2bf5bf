// The one definition of e2epool's search attributes (ARCHITECTURE §4.11). Pure: workflows may import it.
// Initial values go in the workflow start options; nothing decides anything from visibility queries.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const RunnerIdSearchAttribute = defineSearchAttributeKey('RunnerId', SearchAttributeType.KEYWORD);
export const JobIdSearchAttribute = defineSearchAttributeKey('JobId', SearchAttributeType.KEYWORD);
export const CheckpointStateSearchAttribute = defineSearchAttributeKey('CheckpointState', SearchAttributeType.KEYWORD);
export const BackendSearchAttribute = defineSearchAttributeKey('Backend', SearchAttributeType.KEYWORD);
export const NeedsAttentionSearchAttribute = defineSearchAttributeKey('NeedsAttention', SearchAttributeType.BOOL);

/** A search attribute key as @temporalio/common defines it (that type is not exported by name). */
export interface SearchAttributeDefinition {
  name: string;
  type: SearchAttributeType;
}

/** Every search attribute the namespace must have, in a stable order. */
export const e2epoolSearchAttributes: ReadonlyArray<SearchAttributeDefinition> = [
  RunnerIdSearchAttribute,
  JobIdSearchAttribute,
  CheckpointStateSearchAttribute,
  BackendSearchAttribute,
  NeedsAttentionSearchAttribute,
];

/** The type names the Temporal CLI accepts (`--type Keyword`, `--search-attribute Name=Bool`). */
const cliTypeNames: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

export function cliTypeName(type: SearchAttributeType): string {
  return cliTypeNames[type];
}
