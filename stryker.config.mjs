// Mutation testing of the pure core (`npm run mutate`): Stryker changes one expression at a
// time in the files below and runs the unit tests that cover it; a mutant that no test
// notices ("survived") is behaviour the specifications do not pin. Only the unit tests run:
// the pure core needs no engine, and mutating it under moto would measure moto.
// Heavy on CPU: concurrency 2 on a shared two-core machine. Report: reports/mutation/.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  checkers: [],
  mutate: [
    'shared/cidr.ts',
    'shared/network-config.ts',
    'shared/network-config-ipv6.ts',
    'shared/config-fields.ts',
    'shared/route-planner.ts',
    'shared/allocator.ts',
  ],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 5_000,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
