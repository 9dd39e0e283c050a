import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Service } from '../../electron/engine/service';
import { decodeCatalog } from '../../electron/engine/storage/packs/catalog-snapshot';
import { seededBytes } from '../unit/prng';
import { flipInFile, tempDir } from './stores';

let work: { path: string; remove(): Promise<void> };
beforeAll(async () => {
  work = await tempDir('tv-snapshot-');
});
afterAll(async () => {
  await work?.remove();
});

let n = 0;
/** A service as one `tv` process: its own cache folder (a workstation), no Redis. */
function workstation(repo: string, cache: string): Service {
  return new Service({ repository: repo, redisUrl: undefined, mode: 'cli', cacheDir: cache });
}
async function folder(files: Record<string, Uint8Array>): Promise<string> {
  const dir = join(work.path, `src-${++n}`);
  await mkdir(dir, { recursive: true });
  for (const [path, data] of Object.entries(files)) await writeFile(join(dir, path), data);
  return dir;
}
/** Pushes in a process of its own, closed after (as `tv push` is). */
async function pushOnce(repo: string, cache: string, model: string, src: string) {
  const service = workstation(repo, cache);
  try {
    return await service.push({ model, paths: [src] });
  } finally {
    await service.close();
  }
}
async function snapshotOf(cache: string): Promise<string> {
  const [dir] = await readdir(join(cache, 'repositories'));
  return join(cache, 'repositories', dir!, 'catalog');
}
async function ownerOf(repo: string, cache: string) {
  const [dir] = await readdir(join(cache, 'repositories'));
  return { repositoryId: dir!.split('-')[0]!, location: repo };
}

describe('the catalog snapshot', () => {
  it('a new process starts from it and applies only the index objects written since', async () => {
    const repo = join(work.path, `repo-${++n}`);
    const mine = join(work.path, `cache-${++n}`);
    const a = seededBytes(1, 900_000);
    await pushOnce(repo, mine, 'm', await folder({ 'a.bin': a, 'b.bin': seededBytes(2, 700_000) }));
    const written = await readFile(await snapshotOf(mine));
    expect(decodeCatalog(written, await ownerOf(repo, mine))?.objects.count).toBeGreaterThan(20);

    // A teammate stores b.bin's next version (one index object more).
    const v2 = await folder({ 'a.bin': a, 'b.bin': seededBytes(3, 700_000) });
    await pushOnce(repo, join(work.path, `cache-${++n}`), 'other', v2);
    const applied = async (cache: string) => {
      const service = workstation(repo, cache);
      try {
        const packs = (await service.repository()).stack.packs!;
        await packs.sync.sync();
        return { changes: packs.catalog.changes, objects: packs.catalog.objects.size };
      } finally {
        await service.close();
      }
    };
    const fromSnapshot = await applied(mine);
    const fromNothing = await applied(join(work.path, `cache-${++n}`));
    expect(fromSnapshot).toEqual({ changes: 1, objects: fromNothing.objects });
    expect(fromNothing.changes).toBe(2);
    // And decides as a catalog built whole would: the teammate's chunks are stored.
    expect((await pushOnce(repo, mine, 'm', v2)).newChunks).toBe(0);
  });

  it('objects gc deleted after it was written are not taken as stored: a push stores them again', async () => {
    const repo = join(work.path, `repo-${++n}`);
    const mine = join(work.path, `cache-${++n}`);
    const teammate = join(work.path, `cache-${++n}`);
    const x = seededBytes(10, 800_000);
    const old = await folder({ 'x.bin': x });
    await pushOnce(repo, mine, 'm', old);
    await pushOnce(repo, mine, 'm', await folder({ 'y.bin': seededBytes(11, 500_000) }));
    const before = await readFile(await snapshotOf(mine));

    // A teammate removes v1 and collects it: x.bin's chunks and the index objects naming them go.
    const gcing = workstation(repo, teammate);
    try {
      await gcing.remove('m@v1');
      const gc = await gcing.gc({ graceSeconds: 0 });
      expect(gc.sweptObjects).toBeGreaterThan(10);
    } finally {
      await gcing.close();
    }
    // This workstation's snapshot still names them.
    expect((await readFile(await snapshotOf(mine))).equals(before)).toBe(true);
    const again = await pushOnce(repo, mine, 'm', old);
    expect(again.newChunks).toBeGreaterThan(10);
    const service = workstation(repo, mine);
    try {
      expect(await service.verify({ full: true })).toMatchObject({ ok: true, damaged: [] });
      const dest = join(work.path, `out-${++n}`);
      await service.pull(`m@${again.version}`, dest);
      expect((await readFile(join(dest, 'x.bin'))).equals(Buffer.from(x))).toBe(true);
    } finally {
      await service.close();
    }
  });

  it('a damaged snapshot, or one of another repository, is passed over', async () => {
    const repo = join(work.path, `repo-${++n}`);
    const cache = join(work.path, `cache-${++n}`);
    const src = await folder({ 'a.bin': seededBytes(20, 600_000) });
    await pushOnce(repo, cache, 'm', src);
    const path = await snapshotOf(cache);
    const id = (await ownerOf(repo, cache)).repositoryId;
    const bytes = await readFile(path);
    expect(decodeCatalog(bytes, { repositoryId: id, location: repo })).toBeDefined();
    expect(decodeCatalog(bytes, { repositoryId: id, location: `${repo}-copy` })).toBeUndefined();
    expect(decodeCatalog(bytes, { repositoryId: 'other', location: repo })).toBeUndefined();
    await flipInFile(path, Math.floor(bytes.length / 2));
    expect(
      decodeCatalog(await readFile(path), { repositoryId: id, location: repo }),
    ).toBeUndefined();
    // A push from the damaged one: as from none.
    const again = await pushOnce(repo, cache, 'n', src);
    expect(again.newChunks).toBe(0);
    expect(decodeCatalog(await readFile(path), { repositoryId: id, location: repo })).toBeDefined();
  });
});
