// Builds the runner-host bundle: one ESM file with the agent daemon and the create/finalize/status
// verbs, no controller code and no native module, runnable by plain Node 20.
//   node --import tsx agent/packaging/build-standalone.ts [outfile]   (default dist/e2epool-agent.mjs)
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../main.ts', import.meta.url));

export async function buildStandalone(outfile: string): Promise<string> {
  // esbuild ships with tsx (already installed); imported lazily so the agent never needs it.
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    legalComments: 'none',
    logLevel: 'warning',
    // Some bundled CommonJS dependencies call require(); give the ESM bundle one.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as e2epoolCreateRequire } from 'node:module';\nconst require = e2epoolCreateRequire(import.meta.url);",
    },
  });
  return outfile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = path.resolve(process.argv[2] ?? 'dist/e2epool-agent.mjs');
  await buildStandalone(out);
  process.stdout.write(`${out}\n`);
}
