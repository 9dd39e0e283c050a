import { createHash, randomBytes } from 'node:crypto';
import {
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rmdir,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gc } from '../../electron/engine/integrity/gc';
import { Repository } from '../../electron/engine/repository/repository';
import { DiskStore } from '../../electron/engine/storage/disk';
import { objectKey, readAll, type Store } from '../../electron/engine/storage/store';
import { RedisServer } from '../harness/redis';
import { cachedStore, diskStore, tempDir } from './stores';

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const object = (size = 1000) => {
  const data = randomBytes(size);
  return { data, hash: sha(data), key: objectKey(sha(data)) };
};
const keysOf = async (store: Store, prefix = 'objects/') => {
  const keys: string[] = [];
  for await (const entry of store.list(prefix)) keys.push(entry.key);
  return keys.sort();
};
const packFiles = async (root: string) =>
  (await readdir(join(root, 'packs')).catch(() => [] as string[])).sort();

/** Open file descriptors of this process on pack files under root (Linux; 0 elsewhere). */
const openPackHandles = async (root: string) => {
  const fds = await readdir('/proc/self/fd').catch(() => [] as string[]);
  const targets = await Promise.all(
    fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
  );
  return targets.filter((t) => t.startsWith(join(root, 'packs')) && t.endsWith('.pack')).length;
};

const disposers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});
/** A second process's view of the same folder: its own DiskStore, its own index. */
const reader = (root: string) => {
  const store = new DiskStore(root);
  disposers.push(() => store.close());
  return store;
};
const packed = async (packBytes?: number) => {
  const disk = await diskStore(packBytes ? { packBytes } : {});
  disposers.push(disk.dispose);
  return disk;
};

describe('pack files of a folder repository', () => {
  it('other processes see objects once flushed, byte for byte; the writer sees them at once', async () => {
    const { store, path } = await packed();
    const objects = Array.from({ length: 50 }, (_, i) => object(1000 + i * 997));
    await Promise.all(objects.map((o) => store.put(o.key, o.data)));
    expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    const other = reader(path);
    expect(await other.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => false));
    expect(await packFiles(path)).toEqual([expect.stringMatching(/^[0-9a-f]{24}\.pack$/)]);

    await store.flush();
    expect(await other.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    for (const o of objects) expect((await readAll(other, o.key)).equals(o.data)).toBe(true);
    expect(await keysOf(other)).toEqual(objects.map((o) => o.key).sort());
    const files = await packFiles(path);
    expect(files).toHaveLength(2);
    expect(files.map((f) => f.slice(-4)).sort()).toEqual(['.idx', 'pack']);
    // No file per object.
    await expect(stat(join(path, 'objects'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('seals a full pack as it goes, and keeps each object whole across seals under concurrency', async () => {
    const { store, path } = await packed(256 * 1024);
    const objects = Array.from({ length: 400 }, () =>
      object(20_000 + Math.floor(Math.random() * 50_000)),
    );
    await Promise.all(objects.map((o) => store.put(o.key, o.data)));
    // Some packs filled up and were sealed before any flush: another process sees those objects.
    const other = reader(path);
    const before = (await other.hasMany(objects.map((o) => o.key))).filter(Boolean).length;
    expect(before).toBeGreaterThan(0);
    await store.flush();
    expect(await other.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    for (const o of objects) expect((await readAll(other, o.key)).equals(o.data)).toBe(true);
    // Reads keep a few pack handles open, not one per pack read (nor one per object).
    await Promise.all(objects.map((o) => readAll(other, o.key)));
    expect(await openPackHandles(path)).toBeLessThanOrEqual(16);
    await other.close();
    expect(await openPackHandles(path)).toBe(0);
    const files = await packFiles(path);
    const packs = files.filter((f) => f.endsWith('.pack'));
    expect(packs.length).toBeGreaterThan(40);
    expect(files.filter((f) => f.endsWith('.idx'))).toHaveLength(packs.length);
    for (const pack of packs)
      expect((await stat(join(path, 'packs', pack))).size).toBeLessThan(256 * 1024 + 70_000);
  });

  it('a put of an object it holds writes nothing', async () => {
    const { store, path } = await packed();
    const o = object(50_000);
    await store.put(o.key, o.data);
    await store.flush();
    const size = async () =>
      (await Promise.all((await packFiles(path)).map((f) => stat(join(path, 'packs', f))))).reduce(
        (n, s) => n + s.size,
        0,
      );
    const bytes = await size();
    await store.put(o.key, o.data);
    await Promise.all([store.put(o.key, o.data), store.put(o.key, o.data)]);
    await store.flush();
    expect(await size()).toBe(bytes);
  });

  it('a push that died before its flush leaves a pack no one reads, which gc removes once old', async () => {
    const { store, path } = await packed();
    const kept = object();
    await store.put(kept.key, kept.data);
    await store.flush();
    const lost = object(100_000);
    await store.put(lost.key, lost.data);
    await store.close(); // as if killed: no flush, no index
    const other = reader(path);
    expect(await other.has(lost.key)).toBe(false);
    expect(await other.has(kept.key)).toBe(true);
    const abandoned = (await packFiles(path)).filter((f) => f.endsWith('.pack'));
    expect(abandoned).toHaveLength(2);
    expect(await other.removeAbandoned(3600_000)).toEqual({ files: 0, bytes: 0 });
    const old = new Date(Date.now() - 7200_000);
    for (const f of abandoned) await utimes(join(path, 'packs', f), old, old);
    const removed = await other.removeAbandoned(3600_000);
    expect(removed.files).toBe(1);
    expect(removed.bytes).toBeGreaterThan(100_000);
    expect((await readAll(other, kept.key)).equals(kept.data)).toBe(true);
  });

  it('delete rewrites the pack at flush: the rest stays readable (also by a reader holding the old index) and keeps its age', async () => {
    const { store, path } = await packed();
    const objects = Array.from({ length: 20 }, () => object(10_000));
    for (const o of objects) await store.put(o.key, o.data);
    await store.flush();
    const other = reader(path);
    expect(await other.has(objects[0]!.key)).toBe(true); // loads the index now
    const [idx] = (await packFiles(path)).filter((f) => f.endsWith('.idx'));
    const old = new Date(Date.now() - 86_400_000);
    await utimes(join(path, 'packs', idx!), old, old);
    const aged = reader(path);
    const ageBefore = (await entries(aged)).get(objects[5]!.key)!.modified!.getTime();

    const gone = objects.slice(0, 5);
    for (const o of gone) await store.delete(o.key);
    expect(await store.has(gone[0]!.key)).toBe(false);
    await store.flush();
    const files = await packFiles(path);
    expect(files).toHaveLength(2);
    expect(files).not.toContain(idx);

    // The reader that loaded the old index: the deleted objects are gone for it too (a push of
    // its must not name them), the rest read from their new pack.
    expect(await other.hasMany(gone.map((o) => o.key))).toEqual(gone.map(() => false));
    for (const o of objects.slice(5))
      expect((await readAll(other, o.key)).equals(o.data)).toBe(true);
    const fresh = reader(path);
    expect(await fresh.hasMany(gone.map((o) => o.key))).toEqual(gone.map(() => false));
    const listed = await entries(fresh);
    expect(listed.size).toBe(15);
    expect(listed.get(objects[5]!.key)!.modified!.getTime()).toBe(ageBefore);
    // Two flushes at once (gc beside a push) rewrite a pack once.
    await store.delete(objects[5]!.key);
    await Promise.all([store.flush(), store.flush()]);
    expect(await packFiles(path)).toHaveLength(2);
    expect(await reader(path).has(objects[5]!.key)).toBe(false);
    expect((await readAll(reader(path), objects[6]!.key)).equals(objects[6]!.data)).toBe(true);
    // Deleting everything in a pack removes it.
    for (const o of objects.slice(6)) await store.delete(o.key);
    await store.flush();
    expect(await packFiles(path)).toEqual([]);
  });

  it('a pack whose index cannot be written is forgotten, so the objects are written again', async () => {
    const { store, path } = await packed();
    const o = object(30_000);
    await store.put(o.key, o.data);
    const [pack] = await packFiles(path);
    const blocker = join(path, 'packs', pack!.replace(/\.pack$/, '.idx'));
    await mkdir(blocker); // the index's rename will fail
    await expect(store.flush()).rejects.toThrow(/cannot access packs in/);
    await rmdir(blocker);
    expect(await store.has(o.key)).toBe(false);
    await store.put(o.key, o.data);
    await store.flush();
    expect((await readAll(reader(path), o.key)).equals(o.data)).toBe(true);
  });

  it('a damaged index is refused with a message that says what to do', async () => {
    const { store, path } = await packed();
    const o = object();
    await store.put(o.key, o.data);
    await store.flush();
    const [idx] = (await packFiles(path)).filter((f) => f.endsWith('.idx'));
    const file = join(path, 'packs', idx!);
    const bytes = await readFile(file);
    bytes[20] = bytes[20]! ^ 0xff;
    await writeFile(file, bytes);
    await expect(reader(path).has(o.key)).rejects.toThrow(
      `the pack index ${file} is damaged (checksum mismatch): restore it from a backup, or remove it and its objects count as missing`,
    );
  });

  it('reads objects stored one file each (format 1) beside packed ones, and lists both', async () => {
    const { store, path } = await packed();
    const loose = new DiskStore(path, { layout: 'loose' });
    disposers.push(() => loose.close());
    const a = object();
    const b = object();
    await loose.put(a.key, a.data);
    await loose.flush();
    await store.put(b.key, b.data);
    await store.flush();
    expect((await readFile(join(path, ...a.key.split('/')))).equals(a.data)).toBe(true);
    const other = reader(path);
    expect(await other.hasMany([a.key, b.key])).toEqual([true, true]);
    expect((await readAll(other, a.key)).equals(a.data)).toBe(true);
    expect(await keysOf(other)).toEqual([a.key, b.key].sort());
    await expect(store.put('packs/x', Buffer.from('x'))).rejects.toThrow(/packs\/ is reserved/);
  });

  it('pack offsets survive files past 4 GiB', async () => {
    const { store, path } = await packed();
    const o = object(5000);
    await store.put(o.key, o.data);
    await store.flush();
    // Rewrite the pack so the object sits at 5 GiB (a sparse file), with an index saying so.
    const { encodeIndex } = await import('../../electron/engine/storage/packs');
    const [name] = (await packFiles(path))
      .filter((f) => f.endsWith('.pack'))
      .map((f) => f.slice(0, -5));
    const far = 5 * 1024 ** 3;
    const handle = await open(join(path, 'packs', `${name}.pack`), 'r+');
    await handle.write(o.data, 0, o.data.length, far);
    await handle.close();
    await writeFile(
      join(path, 'packs', `${name}.idx`),
      encodeIndex([{ hash: Buffer.from(o.hash, 'hex'), offset: far, length: o.data.length }]),
    );
    expect((await readAll(reader(path), o.key)).equals(o.data)).toBe(true);
  });
});

const entries = async (store: Store) => {
  const map = new Map<string, { modified?: Date | undefined; size: number }>();
  for await (const e of store.list('objects/')) map.set(e.key, e);
  return map;
};

describe('a Redis cache over a packed folder', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis?.dispose());

  it('claims an object only once the flush made it durable and visible', async () => {
    const { store: disk } = await packed();
    const cached = await cachedStore(disk, redis.url, { namespace: 'packs-claims' });
    disposers.push(cached.dispose);
    const objects = Array.from({ length: 30 }, () => object());
    for (const o of objects) await cached.store.put(o.key, o.data);
    expect(await cached.store.claims(objects.map((o) => o.hash))).toEqual(objects.map(() => false));
    await cached.store.flush();
    expect(await cached.store.claims(objects.map((o) => o.hash))).toEqual(objects.map(() => true));
  });
});

describe('gc in a packed folder', () => {
  it('removes what an unfinished push left once older than the grace period, and reports it', async () => {
    const dir = await tempDir('tv-gc-packs-');
    disposers.push(dir.remove);
    const path = join(dir.path, 'repo');
    const crashed = await Repository.open({ repository: path, createIfMissing: {} });
    const o = object(200_000);
    await crashed.store.put(o.key, o.data);
    await crashed.close(); // never flushed: a pack with no index
    const repo = await Repository.open({ repository: path });
    disposers.push(() => repo.close());
    expect((await gc(repo, { graceSeconds: 3600 })).abandonedBytes).toBe(0);
    const [pack] = await packFiles(path);
    const old = new Date(Date.now() - 7200_000);
    await utimes(join(path, 'packs', pack!), old, old);
    expect((await gc(repo, { graceSeconds: 3600, dryRun: true })).abandonedBytes).toBe(0);
    const result = await gc(repo, { graceSeconds: 3600 });
    expect(result.abandonedBytes).toBeGreaterThan(200_000);
    expect(await packFiles(path)).toEqual([]);
  });
});

describe('repository formats', () => {
  it('a new folder repository is format 2 and packs its objects; a format 1 folder keeps a file per object', async () => {
    const dir = await tempDir('tv-formats-');
    disposers.push(dir.remove);
    const fresh = await Repository.open({ repository: join(dir.path, 'new'), createIfMissing: {} });
    disposers.push(() => fresh.close());
    expect(fresh.info().format).toBe(2);
    const o = object();
    await fresh.store.put(o.key, o.data);
    await fresh.store.flush();
    expect((await packFiles(join(dir.path, 'new'))).length).toBe(2);

    const oldPath = join(dir.path, 'old');
    const created = await Repository.open({ repository: oldPath, createIfMissing: {} });
    await created.close();
    const config = JSON.parse(await readFile(join(oldPath, 'config'), 'utf8')) as {
      format: number;
    };
    await writeFile(join(oldPath, 'config'), JSON.stringify({ ...config, format: 1 }));
    const older = await Repository.open({ repository: oldPath });
    disposers.push(() => older.close());
    expect(older.info().format).toBe(1);
    await older.store.put(o.key, o.data);
    await older.store.flush();
    expect((await readFile(join(oldPath, ...o.key.split('/')))).equals(o.data)).toBe(true);
    expect(await packFiles(oldPath)).toEqual([]);

    // Upgraded: new objects go to packs, the loose one is still read; a second upgrade is a no-op.
    expect(await older.upgrade()).toEqual({ from: 1, to: 2 });
    expect(JSON.parse(await readFile(join(oldPath, 'config'), 'utf8'))).toMatchObject({
      format: 2,
    });
    const p = object();
    await older.store.put(p.key, p.data);
    await older.store.flush();
    expect((await packFiles(oldPath)).length).toBe(2);
    const reopened = await Repository.open({ repository: oldPath });
    disposers.push(() => reopened.close());
    expect(reopened.info().format).toBe(2);
    expect(await reopened.store.hasMany([o.key, p.key])).toEqual([true, true]);
    expect(await reopened.upgrade()).toEqual({ from: 2, to: 2 });
  });
});
