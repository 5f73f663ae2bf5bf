// The test suite: every file under test/ runs in its own process (the Temporal SDK's native module
// and the tests' child processes want one), two files at a time on the 2-core machines we run on.
// The timeouts are the outer bounds; tests that wait on servers set tighter ones of their own.
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// The longest files, longest first. A clean checkout has no timings cache, and vitest would start
// the largest files first, leaving a short file that runs for minutes (the chaos run) to the end.
const LONGEST_FIRST = [
  'test/cli/admin-cli.test.ts',
  'test/e2e/chaos-short.test.ts',
  'test/gateway/fuzz-surfaces.test.ts',
  'test/e2e/compiled-build.test.ts',
  'test/e2e/dev-command.test.ts',
  'test/e2e/dashboard.test.ts',
  'test/workflows/checkpoint-v2.test.ts',
  'test/e2e/production-shape.test.ts',
  'test/workflows/checkpoint-paths.test.ts',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((file) => spec.moduleId.endsWith(file));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: Number(process.env.E2EPOOL_TEST_CONCURRENCY ?? 2),
    testTimeout: 180_000,
    hookTimeout: 240_000,
    teardownTimeout: 30_000,
    reporters: ['verbose'],
    sequence: { sequencer: LongestFirst },
  },
});
