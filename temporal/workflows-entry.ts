// What a worker loads its workflows from: the bundle `npm run build` wrote next to the compiled
// code (no webpack at start), or, running from sources, workflows/index.ts bundled at start.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './tool-paths.js';

export const workflowsEntry = path.join(repoRoot, 'workflows', 'index.ts');

/** Compiled: dist/workflow-bundle.js (repoRoot is dist/ there). From sources: none. */
export const prebuiltWorkflowBundle = path.join(repoRoot, 'workflow-bundle.js');

export function workflowSource(): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  return existsSync(prebuiltWorkflowBundle) ? { workflowBundle: { codePath: prebuiltWorkflowBundle } } : { workflowsPath: workflowsEntry };
}
