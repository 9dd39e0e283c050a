import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FilesCache, type FileStamp } from '../../electron/engine/ingest/files-cache';

const REPO = 'a1b2c3d4e5f60718';
const MANIFEST = 'ab'.repeat(32);
const SECOND = 1_000_000_000n;

/** A stamp whose mtime and ctime are `at` (ms since the epoch). */
function stampAt(at: number, extra: Partial<FileStamp> = {}): FileStamp {
  const ns = String(BigInt(at) * 1_000_000n);
  return { size: 1000, mtimeNs: ns, ctimeNs: ns, ino: '42', dev: '7', ...extra };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tv-files-cache-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('files cache', () => {
  const written = Date.parse('2026-11-30T10:00:00.200Z');
  const later = written + 60_000;

  it('vouches for a file whose every stamp field matches, recorded a second or more after it changed', async () => {
    const cache = await FilesCache.open(dir, REPO, 'm');
    cache.record('/data/m/a.bin', stampAt(written), later, MANIFEST);
    expect(cache.lookup('/data/m/a.bin', stampAt(written))).toBe(MANIFEST);
    for (const field of ['size', 'mtimeNs', 'ctimeNs', 'ino', 'dev'] as const) {
      const changed = { ...stampAt(written) };
      if (field === 'size') changed.size = 1001;
      else if (field === 'mtimeNs' || field === 'ctimeNs')
        changed[field] = String(BigInt(changed[field]) + 1n);
      else changed[field] = '43';
      expect(cache.lookup('/data/m/a.bin', changed), field).toBeUndefined();
    }
    expect(cache.lookup('/data/m/other.bin', stampAt(written))).toBeUndefined();
  });

  it('reads again a file changed within the same second as its record (or after it)', async () => {
    const cache = await FilesCache.open(dir, REPO, 'm');
    // Stamped 0.7 s after the change, in the same second: a later write in that second could
    // leave every field as it was.
    cache.record('/data/m/a.bin', stampAt(written), written + 700, MANIFEST);
    expect(cache.lookup('/data/m/a.bin', stampAt(written))).toBeUndefined();
    // A ctime in that second (a chmod, a rename) counts too.
    const ctimeLate = stampAt(written - 5000, {
      ctimeNs: String((BigInt(written) / 1000n) * SECOND),
    });
    cache.record('/data/m/b.bin', ctimeLate, written + 700, MANIFEST);
    expect(cache.lookup('/data/m/b.bin', ctimeLate)).toBeUndefined();
    // Recorded in the next second (10:00:01.000): trusted.
    cache.record('/data/m/c.bin', stampAt(written), written + 799, MANIFEST);
    expect(cache.lookup('/data/m/c.bin', stampAt(written))).toBeUndefined();
    cache.record('/data/m/c.bin', stampAt(written), written + 800, MANIFEST);
    expect(cache.lookup('/data/m/c.bin', stampAt(written))).toBe(MANIFEST);
  });

  it('keeps its records per repository and model, and reads them back', async () => {
    const cache = await FilesCache.open(dir, REPO, 'm');
    cache.record('/data/m/a.bin', stampAt(written), later, MANIFEST);
    cache.setSources(['/data/m']);
    await cache.save();
    const again = await FilesCache.open(dir, REPO, 'm');
    expect(again.lookup('/data/m/a.bin', stampAt(written))).toBe(MANIFEST);
    expect(again.sources).toEqual(['/data/m']);
    // Another repository, or another model, has none of them.
    const otherRepo = await FilesCache.open(dir, 'ffffffffffffffff', 'm');
    expect(otherRepo.lookup('/data/m/a.bin', stampAt(written))).toBeUndefined();
    const otherModel = await FilesCache.open(dir, REPO, 'n');
    expect(otherModel.lookup('/data/m/a.bin', stampAt(written))).toBeUndefined();
  });

  it('a damaged cache file, or one of another repository copied in, is an empty cache', async () => {
    const cache = await FilesCache.open(dir, REPO, 'm');
    cache.record('/data/m/a.bin', stampAt(written), later, MANIFEST);
    await cache.save();
    const file = join(dir, REPO, 'm.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.slice(0, text.length / 2));
    expect((await FilesCache.open(dir, REPO, 'm')).lookup('/data/m/a.bin', stampAt(written))).toBe(
      undefined,
    );
    await writeFile(file, text.replace(REPO, 'ffffffffffffffff'));
    expect((await FilesCache.open(dir, REPO, 'm')).lookup('/data/m/a.bin', stampAt(written))).toBe(
      undefined,
    );
    // A cache folder that cannot be written costs nothing but the records.
    const blocked = await FilesCache.open(join(file, 'not-a-folder'), REPO, 'm');
    blocked.record('/data/m/a.bin', stampAt(written), later, MANIFEST);
    await expect(blocked.save()).resolves.toBeUndefined();
  });
});
