import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROFILE } from '../../electron/engine/chunking/params';
import { cutPoints } from '../../electron/engine/chunking/stream';
import { Service } from '../../electron/engine/service';
import { DiskStore } from '../../electron/engine/storage/disk';
import { seededBytes } from '../unit/prng';
import { tempDir } from './stores';

/** Objects a reader of the repository finds: in indexed packs, and loose files of format 1. */
async function objectsIn(repo: string): Promise<Set<string>> {
  const store = new DiskStore(repo);
  const found = new Set<string>();
  try {
    for await (const entry of store.list('objects/')) found.add(entry.key.slice(-64));
  } finally {
    await store.close();
  }
  return found;
}

/** Bytes of objects written so far, whether a reader can see them yet or not. */
async function bytesWritten(repo: string): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else total += (await stat(path).catch(() => ({ size: 0 }))).size;
    }
  };
  await Promise.all([walk(join(repo, 'packs')), walk(join(repo, 'objects'))]);
  return total;
}

const SIZE = 96 << 20;

describe('a push killed at any point (SIGKILL)', () => {
  let work: { path: string; remove(): Promise<void> };
  let src: string;
  let chunkHashes: string[];
  beforeAll(async () => {
    work = await tempDir('tv-crash-');
    src = join(work.path, 'src');
    await mkdir(src);
    const data = seededBytes(77, SIZE);
    await writeFile(join(src, 'weights.bin'), data);
    chunkHashes = cutPoints(data, DEFAULT_PROFILE).map((end, i, all) =>
      createHash('sha256')
        .update(data.subarray(all[i - 1] ?? 0, end))
        .digest('hex'),
    );
  });
  afterAll(() => work.remove());

  for (const [label, fraction] of [
    ['just after it started uploading', 0.002],
    ['a third of the way', 0.33],
    ['near the end', 0.9],
  ] as const) {
    it(`${label}: leaves no version, and the next push uploads only what is missing`, async () => {
      const repo = join(work.path, `repo-${label.replace(/\W+/g, '-')}`);
      const child = spawn(process.execPath, ['bin/tv.mjs', 'push', 'crash', src], {
        env: { ...process.env, TV_REPO: repo },
        stdio: 'ignore',
      });
      const threshold = Math.max(1, Math.floor(SIZE * fraction));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      let killedEarly = false;
      for (;;) {
        if ((await bytesWritten(repo)) >= threshold) break;
        if (child.exitCode !== null) {
          killedEarly = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      child.kill('SIGKILL');
      await exited;
      expect(killedEarly, 'the push finished before it could be killed').toBe(false);

      const service = new Service({
        repository: repo,
        redisUrl: undefined,
        mode: 'cli',
        workers: 2,
      });
      try {
        await expect(service.log('crash')).rejects.toThrow(/model "crash" has no versions/);
        expect((await service.verify()).ok).toBe(true);
        const present = await objectsIn(repo);
        const stillMissing = new Set(chunkHashes.filter((h) => !present.has(h)));
        const result = await service.push({ model: 'crash', paths: [src] });
        expect(result.version).toBe('v1');
        expect(result.newChunks).toBe(stillMissing.size);
        expect(result.newBytes + result.reusedBytes).toBe(result.logicalBytes);
        // The finished version names only objects that exist.
        const after = await objectsIn(repo);
        expect(chunkHashes.every((h) => after.has(h))).toBe(true);
        expect((await service.verify({ full: true })).ok).toBe(true);
      } finally {
        await service.close();
      }
    });
  }
});
