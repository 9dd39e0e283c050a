#!/usr/bin/env node
// `tv`: runs the bundled command line (built by `npm ci` through the prepare script).
import { existsSync } from 'node:fs';

// Writes of a local repository and their fsyncs share libuv's thread pool (4 threads by
// default); read before its first use.
process.env.UV_THREADPOOL_SIZE ??= '8';

const entry = new URL('../out/cli/tv.mjs', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    'tv: the command line is not built yet: run `npm run build:node` in the TensorVault folder\n',
  );
  process.exit(1);
}
await import(entry.href);
