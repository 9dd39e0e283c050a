import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    // Budgets catch a hang; they are not speed checks (the bench measures speed). On a 2-core
    // machine loaded by other work, a test runs up to 5x slower than idle: a 60 s budget failed
    // tests that take 25 s idle.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // The S3-protocol server runs in the test processes; it encrypts ListObjectsV2 continuation
    // tokens with DES, which OpenSSL 3 serves only with its legacy provider: without it, a
    // listing of more than 1,000 keys fails with a 500.
    execArgv: ['--openssl-legacy-provider'],
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
