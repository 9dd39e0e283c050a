#!/usr/bin/env node
// Bundles the Node-only entry points (the `tv` command line and its worker threads) with esbuild.
// Dependencies stay in node_modules; nothing here loads Electron or React.
import { build } from 'esbuild';

await build({
  entryPoints: {
    'cli/tv': 'electron/cli/index.ts',
    // Worker threads load from a file beside the bundle that starts them.
    'cli/chunk-hash-worker': 'electron/engine/workers/chunk-hash-worker.ts',
  },
  outdir: 'out',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  // Code splitting keeps lazily imported dependencies (the AWS SDK, ioredis) out of start-up.
  // Chunks sit beside the worker, which the pool finds relative to its own module.
  splitting: true,
  chunkNames: 'cli/[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
