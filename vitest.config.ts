import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // moto missing: one message saying what to run (npm run setup:moto), not a failure per suite
    globalSetup: ['test/support/require-moto.ts'],
    // Integration suites each start their own moto_server; two cores, so keep parallelism modest.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    // The SDK warns on every process that Node 20 support ends in 2027 (DESIGN.md, Known
    // pitfalls); the lock file's versions work, and the warning buries real test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
