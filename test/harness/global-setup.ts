import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain ESM script shared with `npm test`, no type declarations
import { ensureSystemDeps } from '../../scripts/system-deps.mjs';

export default function setup(): () => void {
  (ensureSystemDeps as () => void)();
  // Never the real home folder: the files cache (and anything else kept in the user's cache
  // folder) goes to a folder of this run, inherited by the test workers and the `tv` they start.
  const cache = mkdtempSync(join(tmpdir(), 'tv-test-cache-'));
  process.env['XDG_CACHE_HOME'] = cache;
  return () => rmSync(cache, { recursive: true, force: true });
}
