// Location of the workflow bundle's entry point (workflows/index.ts), for Worker.create.
import path from 'node:path';
import { repoRoot } from './tool-paths.js';

export const workflowsEntry = path.join(repoRoot, 'workflows', 'index.ts');
