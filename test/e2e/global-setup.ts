import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Never the real home folder: what `tv` keeps in the user's cache folder (the files cache, kept
 * reports, the local copy of an index) goes to a folder of this run, inherited by the test workers
 * and every `tv` they start. A spec may still give its own.
 */
export default function setup(): () => void {
  const cache = mkdtempSync(join(tmpdir(), 'tv-e2e-cache-'));
  process.env['XDG_CACHE_HOME'] = cache;
  return () => rmSync(cache, { recursive: true, force: true });
}
