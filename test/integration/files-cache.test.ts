import { cp, mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Service } from '../../electron/engine/service';
import { environmentSettings } from '../../electron/engine/settings';
import { seededBytes } from '../unit/prng';
import { S3Server } from '../harness/s3';
import { s3Options, tempDir } from './stores';

let work: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  work = await tempDir('tv-files-cache-');
});
afterAll(() => work?.remove());

let n = 0;
const fresh = (name: string) => join(work.path, `${name}-${++n}`);

/** A client of the repository at `repo` whose files cache is in `cache`. */
function client(
  repo: string,
  cache: string,
  extra: Partial<ConstructorParameters<typeof Service>[0]> = {},
) {
  return new Service({
    repository: repo,
    redisUrl: undefined,
    mode: 'cli',
    workers: 2,
    filesCache: cache,
    ...extra,
  });
}

/**
 * Waits into the next second: the cache trusts no record made in the second its file last
 * changed (the stamps cannot tell a later write in that second), so files are written first.
 */
async function nextSecond(): Promise<void> {
  await sleep(1000 - (Date.now() % 1000) + 20);
}

/** A whole second a day ago (seconds since the epoch). */
const DAY_AGO = Math.floor(Date.now() / 1000) - 86_400;

async function model(files: Record<string, Uint8Array | string>): Promise<string> {
  const dir = fresh('src');
  for (const [path, data] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), data);
  }
  await nextSecond();
  return dir;
}

describe('files cache', () => {
  it('a re-push reads no unchanged file: their manifests are reused, and the version is the same', async () => {
    const src = await model({ 'a.bin': seededBytes(1, 3_000_000), 'tok/t.json': '{"v": 1}' });
    const svc = client(fresh('repo'), fresh('cache'));
    try {
      const first = await svc.push({ model: 'm', paths: [src] });
      expect(first).toMatchObject({ filesFromCache: 0, bytesFromCache: 0 });
      const again = await svc.push({ model: 'm', paths: [src] });
      expect(again).toMatchObject({
        created: false,
        identicalTo: { version: 'v1' },
        filesFromCache: 2,
        bytesFromCache: 3_000_000 + 8,
      });
      // One file changed: only it is read.
      await writeFile(join(src, 'tok/t.json'), '{"v": 2}');
      const changed = await svc.push({ model: 'm', paths: [src] });
      expect(changed).toMatchObject({
        version: 'v2',
        filesFromCache: 1,
        bytesFromCache: 3_000_000,
      });
      const dest = fresh('out');
      await svc.pull('m@v2', dest);
      expect(await readFile(join(dest, 'tok/t.json'), 'utf8')).toBe('{"v": 2}');
      // --no-cache reads everything.
      const all = await svc.push({ model: 'm', paths: [src], noCache: true, allowSame: true });
      expect(all).toMatchObject({ version: 'v3', filesFromCache: 0 });
    } finally {
      await svc.close();
    }
  });

  /** A model of one file, w.bin, with a whole-second mtime (which utimes can set again exactly), pushed once. */
  async function pushedOnce(seed: number) {
    const src = await model({ 'w.bin': seededBytes(seed, 500_000) });
    const file = join(src, 'w.bin');
    await utimes(file, DAY_AGO, DAY_AGO);
    await nextSecond();
    const svc = client(fresh('repo'), fresh('cache'));
    try {
      await svc.push({ model: 'm', paths: [src] });
    } catch (err) {
      await svc.close();
      throw err;
    }
    return { src, file, svc, before: await stat(file) };
  }

  it('is not fooled by a file rewritten with the same size and mtime: its ctime moved', async () => {
    const { src, file, svc, before } = await pushedOnce(2);
    try {
      await writeFile(file, seededBytes(3, 500_000));
      await utimes(file, DAY_AGO, DAY_AGO);
      const after = await stat(file);
      expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
      const pushed = await svc.push({ model: 'm', paths: [src] });
      expect(pushed).toMatchObject({ version: 'v2', filesFromCache: 0 });
      const dest = fresh('out');
      await svc.pull('m@v2', dest);
      expect((await readFile(join(dest, 'w.bin'))).equals(seededBytes(3, 500_000))).toBe(true);
    } finally {
      await svc.close();
    }
  });

  it('is not fooled by another file put in its place with the same size and mtime: its inode moved', async () => {
    const { src, file, svc, before } = await pushedOnce(4);
    try {
      const replacement = join(src, '.w.new');
      await writeFile(replacement, seededBytes(5, 500_000));
      await utimes(replacement, DAY_AGO, DAY_AGO);
      await rename(replacement, file);
      const after = await stat(file);
      expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
      expect(after.ino).not.toBe(before.ino);
      const pushed = await svc.push({ model: 'm', paths: [src] });
      expect(pushed).toMatchObject({ version: 'v2', filesFromCache: 0 });
    } finally {
      await svc.close();
    }
  });

  it('reads again a file changed in the same second as the push that recorded it', async () => {
    const src = await model({ 'a.bin': seededBytes(6, 200_000) });
    const svc = client(fresh('repo'), fresh('cache'));
    try {
      // Written, then pushed at once (a stamp in the file's mtime second cannot be trusted).
      await writeFile(join(src, 'a.bin'), seededBytes(7, 200_000));
      const written = Math.floor((await stat(join(src, 'a.bin'))).mtimeMs / 1000);
      await svc.push({ model: 'm', paths: [src] });
      const racyAt = Math.floor(Date.now() / 1000);
      const racy = await svc.push({ model: 'm', paths: [src] });
      // The record was made in the second of the write: the file is read again. (When the clock
      // ticked between the write and this push, the push may trust the record; the unit test pins
      // both cases. The file is never taken for another either way.)
      if (racyAt === written) expect(racy.filesFromCache).toBe(0);
      expect(racy.created).toBe(false);
      // Read again, it is recorded again; a record made in a later second than the write holds.
      await nextSecond();
      await svc.push({ model: 'm', paths: [src] });
      const settled = await svc.push({ model: 'm', paths: [src] });
      expect(settled.filesFromCache).toBe(1);
    } finally {
      await svc.close();
    }
  });

  it('writes no manifest its parent holds: an unchanged file costs no upload', async () => {
    const s3 = await S3Server.start();
    const svc = client(`s3://${s3.bucket}/held`, fresh('cache'), { s3: s3Options(s3) });
    try {
      const src = await model({
        'a.bin': seededBytes(11, 300_000),
        'b.bin': seededBytes(12, 300_000),
        'c.json': '{"c": 1}',
      });
      await svc.push({ model: 'm', paths: [src] });
      s3.resetCounts();
      s3.recorded = [];
      const same = await svc.push({ model: 'm', paths: [src], allowSame: true });
      expect(same).toMatchObject({ version: 'v2', filesFromCache: 3, newChunks: 0 });
      // The version record (a loose object), the index object naming it, and its ref; none of the
      // three manifests again.
      const puts = (s3.recorded ?? []).filter((r) => r.startsWith('PUT '));
      expect(puts.filter((r) => r.includes('/objects/'))).toHaveLength(1);
      expect(puts.filter((r) => r.includes('/index/'))).toHaveLength(1);
      expect(puts.filter((r) => r.includes('/refs/'))).toHaveLength(1);
      expect(puts).toHaveLength(3);
    } finally {
      await svc.close();
      await s3.stop();
    }
  });

  it('survives a deleted or damaged cache folder: the push reads everything, and the cache comes back', async () => {
    const src = await model({ 'a.bin': seededBytes(8, 400_000), 'b.txt': 'b' });
    const cache = fresh('cache');
    const svc = client(fresh('repo'), cache);
    try {
      await svc.push({ model: 'm', paths: [src] });
      await rm(cache, { recursive: true, force: true });
      expect((await svc.push({ model: 'm', paths: [src] })).filesFromCache).toBe(0);
      expect((await svc.push({ model: 'm', paths: [src] })).filesFromCache).toBe(2);
      const info = await svc.repositoryInfo();
      const file = join(cache, info.repositoryId, 'm.json');
      await writeFile(file, '{"format": 1, "records": [{"path": 3');
      expect((await svc.push({ model: 'm', paths: [src] })).filesFromCache).toBe(0);
      expect((await svc.push({ model: 'm', paths: [src] })).filesFromCache).toBe(2);
    } finally {
      await svc.close();
    }
  });

  it('never reuses a manifest across repositories, nor one its repository does not hold', async () => {
    const src = await model({ 'a.bin': seededBytes(9, 700_000) });
    const cache = fresh('cache');
    // An empty repository and its copy: the same repository id, soon different contents.
    const repoA = fresh('repo');
    const init = client(repoA, cache);
    await init.init();
    await init.close();
    const copy = fresh('repo-copy');
    await cp(repoA, copy, { recursive: true });
    const a = client(repoA, cache);
    const other = client(fresh('repo'), cache);
    const b = client(copy, cache);
    try {
      await a.push({ model: 'm', paths: [src] });
      expect((await a.push({ model: 'm', paths: [src] })).filesFromCache).toBe(1);
      // Another repository: its own records (none).
      expect((await other.push({ model: 'm', paths: [src] })).filesFromCache).toBe(0);
      // The copy shares the id but holds no such manifest: the file is read, and the version
      // names only what the copy holds.
      const pushed = await b.push({ model: 'm', paths: [src] });
      expect(pushed).toMatchObject({ version: 'v1', filesFromCache: 0, newBytes: 700_000 });
      expect((await b.verify({ selector: 'm' })).ok).toBe(true);
      const dest = fresh('out');
      await b.pull('m', dest);
      expect((await readFile(join(dest, 'a.bin'))).equals(seededBytes(9, 700_000))).toBe(true);
    } finally {
      await Promise.all([a.close(), other.close(), b.close()]);
    }
  });

  it('is off where the settings turn it off', async () => {
    const src = await model({ 'a.bin': seededBytes(10, 100_000) });
    const settings = environmentSettings(fresh('repo'), undefined);
    const saved = await settings.load();
    const svc = client(saved.repository, fresh('cache'), {
      settings: { ...settings, load: async () => ({ ...saved, filesCache: false }) },
    });
    try {
      await svc.push({ model: 'm', paths: [src] });
      expect((await svc.push({ model: 'm', paths: [src] })).filesFromCache).toBe(0);
    } finally {
      await svc.close();
    }
  });
});
