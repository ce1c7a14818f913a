import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The unit tests of the pure core (CIDR math, config validation, allocator, route planning):
// what `npm run mutate` runs against each mutant, with fewer property cases (test/support/mutation-setup.ts). The agent's and the CLIs' unit tests also
// import the core, but they specify other modules and would multiply the mutation run's cost.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/unit/**/*.test.ts'],
    exclude: ['test/unit/agent-*.test.ts', 'test/unit/admin-*.test.ts', 'test/unit/http-*.test.ts'],
    setupFiles: ['test/support/mutation-setup.ts'],
  },
});
