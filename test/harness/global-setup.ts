import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
// @ts-expect-error plain ESM script shared with `npm test`, no type declarations
import { ensureSystemDeps } from '../../scripts/system-deps.mjs';

export default function setup(): () => Promise<void> {
  (ensureSystemDeps as () => void)();
  return async () => {
    // The temp cache folder vitest.config.ts made for this run (never a real one).
    const cache = process.env['XDG_CACHE_HOME'];
    if (cache && dirname(cache) === tmpdir() && basename(cache).startsWith('tv-test-cache-'))
      await rm(cache, { recursive: true, force: true });
  };
}
