#!/usr/bin/env node
// Bundles the Node-only entry points (the `tv` command line and its worker threads) with esbuild.
// Dependencies are bundled in: resolving and translating CommonJS packages file by file at every
// start costs time (~60 ms for the small ones; the AWS SDK and ioredis, hundreds of files, made
// `tv log` on S3 take 1.5x the CPU). Those loaded only on demand (the AWS SDK, ioredis) go into
// chunks of their own, which a local repository never loads. Packages that load files of their
// own at run time (a native addon, a .wasm file) stay in node_modules, as does hash-wasm (only
// blake3 repositories load it). Nothing here loads Electron or React.
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

await rm('out/cli', { recursive: true, force: true });

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
  // The codecs load a native addon (lz4-napi) and a .wasm file (zstd) from their own folders.
  external: ['hash-wasm', 'electron', 'lz4-napi', '@bokuweb/zstd-wasm'],
  // Bundled CommonJS code calls require() for Node's own modules.
  banner: {
    js: "import { createRequire as __tvCreateRequire } from 'node:module'; const require = __tvCreateRequire(import.meta.url);",
  },
  sourcemap: true,
  logLevel: 'warning',
});
