import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Tests never write into the real home folder: the user's cache folder (where the local copy of
// a remote repository's index lives) is a temp folder, for the test processes and every `tv` they
// start. The global setup's teardown removes it.
process.env['XDG_CACHE_HOME'] ??= mkdtempSync(join(tmpdir(), 'tv-test-cache-'));

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // s3rver (the S3-protocol server the tests run in-process) encrypts ListObjectsV2
    // continuation tokens with DES, which OpenSSL 3 disables: listings past 1,000 keys need it.
    execArgv: ['--openssl-legacy-provider'],
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
