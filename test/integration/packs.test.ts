import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, readlink, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { push } from '../../electron/engine/ingest/push';
import { gc } from '../../electron/engine/integrity/gc';
import { repairIndex } from '../../electron/engine/integrity/repair';
import { repairPacks } from '../../electron/engine/integrity/repair-packs';
import { verify } from '../../electron/engine/integrity/verify';
import { Repository } from '../../electron/engine/repository/repository';
import { restore } from '../../electron/engine/restore/restore';
import { ChunkHashPool } from '../../electron/engine/workers/pool';
import { seededBytes } from '../unit/prng';
import { DiskStore } from '../../electron/engine/storage/disk';
import {
  encodeIndexObject,
  encodeLegacyIndex,
  encodeTrailer,
  indexName,
  legacyPackHeader,
  packHeader,
} from '../../electron/engine/storage/packs/format';
import type { PackedStore } from '../../electron/engine/storage/packs/packed-store';
import { metered, RequestMeter } from '../../electron/engine/storage/requests';
import {
  objectKey,
  readAll,
  type BlobStore,
  type BlobWriter,
  type Store,
} from '../../electron/engine/storage/store';
import { RedisServer } from '../harness/redis';
import { S3Server } from '../harness/s3';
import { cachedStore, packedStore, s3Options, s3Store, tempDir } from './stores';

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
/** Files under a folder of the repository, relative to it ("data/ab/ab12..."). */
const filesIn = async (root: string, folder: string): Promise<string[]> => {
  const out: string[] = [];
  const walk = async (dir: string, rel: string) => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(dir, e.name), `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}`);
    }
  };
  await walk(join(root, folder), `${folder}/`);
  return out.sort();
};

/** Open file descriptors of this process on pack files under root (Linux; 0 elsewhere). */
const openPackHandles = async (root: string) => {
  const fds = await readdir('/proc/self/fd').catch(() => [] as string[]);
  const targets = await Promise.all(
    fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
  );
  return targets.filter((t) => t.startsWith(join(root, 'data'))).length;
};

const disposers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});
const folder = async () => {
  const dir = await tempDir('tv-packs-');
  disposers.push(dir.remove);
  return dir.path;
};
/** A client of the folder: its own pack layer, its own index. */
const client = (root: string, packBytes = 256 * 1024): PackedStore => {
  const store = packedStore(new DiskStore(root), { packBytes });
  disposers.push(() => store.close());
  return store;
};

/**
 * A folder holding one pack of one object, written by hand (its record as given, at offset 8),
 * and an index object that names it with `indexedLength` as the pack's length (its own, unless
 * given): for objects and indexes no client would write.
 */
const packOfOne = async (
  o: { hash: string; data: Buffer },
  name: string,
  encoding: number,
  indexedLength?: number,
) => {
  const path = await folder();
  const blobs = new DiskStore(path);
  const record = {
    hash: Buffer.from(o.hash, 'hex'),
    offset: 8,
    storedLength: o.data.length,
    length: o.data.length,
    encoding,
  };
  const pack = Buffer.concat([packHeader(), o.data, encodeTrailer([record])]);
  await blobs.put(`data/${name.slice(0, 2)}/${name}`, pack);
  await blobs.put(
    `index/${indexName(Date.now(), '0'.repeat(16))}`,
    encodeIndexObject({
      packs: [{ name, length: indexedLength ?? pack.length, records: [record] }],
    }),
  );
  await blobs.flush();
  return path;
};

const counted = async <T>(fn: () => Promise<T>) => {
  const meter = new RequestMeter();
  const value = await metered(meter, fn);
  return { value, requests: meter.requests };
};

describe('packs in a folder (format 3)', () => {
  it('a loose object whose write fails is not named by the flush that took it while it was under way', async () => {
    const path = await folder();
    const store = client(path);
    const [good, bad] = [object(500), object(500)];
    // The bad one's shard folder cannot be made: a file stands where it would go.
    await mkdir(join(path, 'objects'), { recursive: true });
    await writeFile(join(path, 'objects', bad.hash.slice(0, 2)), 'in the way');
    const puts = [good, bad].map((o) => store.put(o.key, o.data, { loose: true }));
    // A flush of another caller's, while both writes are under way.
    const flushed = store.flush();
    const [ok, failed] = await Promise.allSettled(puts);
    expect(ok!.status).toBe('fulfilled');
    expect(failed!.status).toBe('rejected');
    await flushed;
    const other = client(path);
    expect(await other.hasMany([good.key, bad.key])).toEqual([true, false]);
  });

  it('other clients see objects once their pack is sealed, byte for byte; the writer sees them at once', async () => {
    const path = await folder();
    const store = client(path, 64 << 20);
    const objects = Array.from({ length: 50 }, (_, i) => object(1000 + i * 997));
    await Promise.all(objects.map((o) => store.put(o.key, o.data)));
    expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    expect((await readAll(store, objects[3]!.key)).equals(objects[3]!.data)).toBe(true);
    const other = client(path);
    expect(await other.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => false));

    await store.flush();
    expect(await other.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    for (const o of objects) expect((await readAll(other, o.key)).equals(o.data)).toBe(true);
    expect(await keysOf(other)).toEqual(objects.map((o) => o.key).sort());
    // One pack and one index object; no file per object.
    expect(await filesIn(path, 'data')).toEqual([
      expect.stringMatching(/^data\/([0-9a-f]{2})\/\1[0-9a-f]{30}$/),
    ]);
    expect(await filesIn(path, 'index')).toEqual([
      expect.stringMatching(/^index\/\d{13}-[0-9a-f]{16}$/),
    ]);
    expect(await filesIn(path, 'objects')).toEqual([]);
  });

  it('seals a full pack as it goes, its index written at once, keeping each object whole under concurrency; reads keep a few handles open', async () => {
    const path = await folder();
    const store = client(path);
    const objects = Array.from({ length: 400 }, () =>
      object(20_000 + Math.floor(Math.random() * 50_000)),
    );
    await Promise.all(objects.map((o) => store.put(o.key, o.data)));
    // Packs that filled up were sealed and indexed before any flush: another client sees them.
    const other = client(path);
    const before = (await other.hasMany(objects.map((o) => o.key))).filter(Boolean).length;
    expect(before).toBeGreaterThan(300);
    await store.flush();
    expect(await other.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    await Promise.all(objects.map((o) => readAll(other, o.key)));
    for (const o of objects) expect((await readAll(other, o.key)).equals(o.data)).toBe(true);
    expect(await openPackHandles(path)).toBeLessThanOrEqual(16);
    await other.close();
    expect(await openPackHandles(path)).toBe(0);
    const packs = await filesIn(path, 'data');
    expect(packs.length).toBeGreaterThan(40);
    expect(await filesIn(path, 'index')).toHaveLength(packs.length);
  });

  it('a put of an object the index names writes nothing, in this client or another', async () => {
    const path = await folder();
    const store = client(path);
    const o = object(50_000);
    await store.put(o.key, o.data);
    await store.flush();
    const files = await filesIn(path, 'data');
    await Promise.all([store.put(o.key, o.data), store.put(o.key, o.data)]);
    await store.flush();
    const other = client(path);
    await other.put(o.key, o.data);
    await other.flush();
    expect(await filesIn(path, 'data')).toEqual(files);
  });

  it('a client that dies before its flush leaves its open pack unnamed: sealed packs stay, gc removes the rest once old', async () => {
    const path = await folder();
    const repo = await Repository.init({ repository: path, packSize: 64 * 1024 });
    const objects = Array.from({ length: 30 }, () => object(10_000));
    for (const o of objects) await repo.store.put(o.key, o.data);
    await repo.close(); // as if killed: no flush
    const reopened = await Repository.open({ repository: path });
    disposers.push(() => reopened.close());
    const present = await reopened.store.hasMany(objects.map((o) => o.key));
    // Every sealed pack's objects survive; the open pack's (the last few) do not.
    expect(present.filter(Boolean).length).toBeGreaterThanOrEqual(20);
    expect(present.slice(0, present.lastIndexOf(true) + 1).every(Boolean)).toBe(true);
    expect(present.at(-1)).toBe(false);
    // Nothing of the open pack is left under a name: its temp file goes with gc, once old.
    const temps = (await readdir(path, { recursive: true })).filter((f) => f.endsWith('.tmp'));
    expect((await gc(reopened, { graceSeconds: 3600 })).abandonedBytes).toBe(0);
    const old = new Date(Date.now() - 7200_000);
    for (const t of temps) await utimes(join(path, t), old, old).catch(() => {});
    await gc(reopened, { graceSeconds: 3600 });
    expect((await readdir(path, { recursive: true })).filter((f) => f.endsWith('.tmp'))).toEqual(
      [],
    );
  });

  it('delete rewrites a pack without the object: the rest stays readable, also by a client holding the old index', async () => {
    const path = await folder();
    const store = client(path, 64 << 20);
    const objects = Array.from({ length: 20 }, () => object(10_000));
    for (const o of objects) await store.put(o.key, o.data);
    await store.flush();
    const other = client(path);
    expect(await other.has(objects[0]!.key)).toBe(true); // loads the index now
    const [pack] = await filesIn(path, 'data');

    const gone = objects.slice(0, 5);
    for (const o of gone) await store.delete(o.key);
    expect(await store.has(gone[0]!.key)).toBe(false);
    expect(await filesIn(path, 'data')).not.toContain(pack);
    // The client that loaded the old index: the deleted objects are gone for it too (a push of
    // its must not rely on them), the rest read from their new pack.
    expect(await other.hasMany(gone.map((o) => o.key))).toEqual(gone.map(() => false));
    for (const o of objects.slice(5))
      expect((await readAll(other, o.key)).equals(o.data)).toBe(true);
    expect(await keysOf(client(path))).toHaveLength(15);
    // Deleting everything in a pack removes it, and its index.
    for (const o of objects.slice(5)) await store.delete(o.key);
    expect(await filesIn(path, 'data')).toEqual([]);
    expect(await keysOf(client(path))).toEqual([]);
  });

  it('a pack whose index object cannot be written is forgotten, so its objects are written again', async () => {
    const path = await folder();
    const store = client(path);
    const o = object(30_000);
    await store.put(o.key, o.data);
    // A file stands where the index folder goes: no index object can be written.
    await writeFile(join(path, 'index'), 'not a folder');
    await expect(store.flush()).rejects.toThrow(/cannot access index\/\d{13}-[0-9a-f]{16} in/);
    await rm(join(path, 'index'));
    expect(await store.has(o.key)).toBe(false);
    await store.put(o.key, o.data);
    await store.flush();
    expect((await readAll(client(path), o.key)).equals(o.data)).toBe(true);
  });

  it("a version is never written while an object it stored is in a pack that failed, whichever caller's flush heard of it", async () => {
    // The first pack of the folder cannot be finished (the disk went away).
    const createWriter = DiskStore.prototype.createWriter;
    let failed = false;
    const spy = vi.spyOn(DiskStore.prototype, 'createWriter').mockImplementation(function (
      this: DiskStore,
      key: string,
    ): BlobWriter {
      const writer = createWriter.call(this, key);
      if (failed || !key.startsWith('data/')) return writer;
      failed = true;
      return {
        get size() {
          return writer.size;
        },
        append: (data) => writer.append(data),
        read: (offset, length) => writer.read(offset, length),
        finish: async () => {
          await writer.abort();
          throw new Error('the disk went away');
        },
        abort: () => writer.abort(),
      };
    });
    disposers.push(async () => spy.mockRestore());
    const repo = await Repository.init({ repository: await folder(), packSize: 64 * 1024 });
    disposers.push(() => repo.close());
    const first = Array.from({ length: 7 }, () => object(10_000)); // fills the first pack
    for (const o of first) await repo.store.put(o.key, o.data);
    // Another caller's flush hears of the failure; the first caller's then passes, and what
    // tells it is the check of its own objects before its version's ref.
    await expect(repo.store.flush()).rejects.toThrow(/the disk went away/);
    await repo.store.flush();
    const stats = {
      logicalBytes: 0,
      newBytes: 0,
      reusedBytes: 0,
      reusedFromParentBytes: 0,
      chunks: 0,
      newChunks: 0,
      metadataBytes: 0,
      seconds: 0,
    };
    const record = {
      format: 1 as const,
      kind: 'version' as const,
      model: 'm',
      parent: null,
      createdAt: new Date().toISOString(),
      author: 'test',
      message: '',
      files: [],
      stats,
    };
    const hashes = first.map((o) => o.hash);
    await expect(repo.publish(record, undefined, hashes)).rejects.toThrow(
      /^\d+ objects of this version could not be stored \(an upload failed\): no version was written; push again$/,
    );
    expect(await repo.versions('m')).toEqual([]);
    // Stored again, they are durable, and the version is written.
    for (const o of first) await repo.store.put(o.key, o.data);
    expect((await repo.publish(record, undefined, hashes)).number).toBe(1);
  });

  it('a damaged index object is refused with a message that says what to do; repair index replaces it from the trailers', async () => {
    const path = await folder();
    const repo = await Repository.init({ repository: path });
    disposers.push(() => repo.close());
    const objects = Array.from({ length: 10 }, () => object(5_000));
    for (const o of objects) await repo.store.put(o.key, o.data);
    await repo.store.flush();
    const [index] = await filesIn(path, 'index');
    const file = join(path, index!);
    const bytes = await readFile(file);
    bytes[20] = bytes[20]! ^ 0xff;
    await writeFile(file, bytes);
    await expect(client(path).has(objects[0]!.key)).rejects.toThrow(
      /the index object index\/\d{13}-[0-9a-f]{16} in .* is damaged \(checksum mismatch\): run `tv repair index` \(it rebuilds the index from the packs\)/,
    );
    const repaired = await repairIndex(repo);
    expect(repaired).toMatchObject({ packsIndexed: 1, damagedIndexObjects: 1, objectsLost: 0 });
    expect(await filesIn(path, 'index')).not.toContain(index);
    const other = client(path);
    expect(await other.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    for (const o of objects) expect((await readAll(other, o.key)).equals(o.data)).toBe(true);
  });

  it('a lost index object: verify --full names the pack no index names, repair index indexes it again from its trailer', async () => {
    const path = await folder();
    const repo = await Repository.init({ repository: path });
    disposers.push(() => repo.close());
    const o = object(40_000);
    await repo.store.put(o.key, o.data);
    await repo.store.flush();
    for (const f of await filesIn(path, 'index')) await rm(join(path, f));
    const fresh = await Repository.open({ repository: path });
    disposers.push(() => fresh.close());
    expect(await fresh.store.has(o.key)).toBe(false);
    expect((await verify(fresh, { full: true })).packs).toMatchObject({ checked: 0, unindexed: 1 });
    expect(await repairIndex(fresh)).toMatchObject({ packsIndexed: 1, packsMissing: 0 });
    expect((await readAll(fresh.store, o.key)).equals(o.data)).toBe(true);
    expect((await verify(fresh, { full: true })).packs).toEqual({
      checked: 1,
      unindexed: 0,
      problems: [],
    });
  });

  it('an object stored with an encoding this version does not know is refused: upgrade', async () => {
    const o = object(1000);
    const name = 'ab'.repeat(16);
    const path = await packOfOne(o, name, 7);
    await expect(readAll(client(path), o.key)).rejects.toThrow(
      `object ${o.hash} in data/ab/${name} is stored with encoding 7, which this version of TensorVault does not know: upgrade TensorVault`,
    );
  });

  it('pack offsets survive packs past 4 GiB', async () => {
    const path = await folder();
    const o = object(5000);
    const name = 'cd'.repeat(16);
    const far = 5 * 1024 ** 3;
    const record = {
      hash: Buffer.from(o.hash, 'hex'),
      offset: far,
      storedLength: 5000,
      length: 5000,
      encoding: 0,
    };
    const trailer = encodeTrailer([record]);
    await mkdir(join(path, 'data', 'cd'), { recursive: true });
    const handle = await open(join(path, 'data', 'cd', name), 'w');
    await handle.write(packHeader(), 0, 8, 0);
    await handle.write(o.data, 0, o.data.length, far);
    await handle.write(trailer, 0, trailer.length, far + 5000);
    await handle.close();
    const blobs = new DiskStore(path);
    await blobs.put(
      `index/${indexName(Date.now(), '0'.repeat(16))}`,
      encodeIndexObject({
        packs: [{ name, length: far + 5000 + trailer.length, records: [record] }],
      }),
    );
    expect((await readAll(client(path), o.key)).equals(o.data)).toBe(true);
  });

  it('an index object naming bytes outside its pack is refused, naming the object', async () => {
    const o = object(1000);
    const path = await packOfOne(o, 'ef'.repeat(16), 0, 900);
    await expect(readAll(client(path), o.key)).rejects.toThrow(
      `object ${o.hash} lies outside the pack's objects (bytes 8-1008)`,
    );
  });

  it('reads format 2 packs and format 1 loose objects beside format 3 packs, and lists each object once', async () => {
    const path = await folder();
    const blobs = new DiskStore(path);
    const loose = object(700);
    const legacy = object(900);
    const packed = object(1100);
    await blobs.put(loose.key, loose.data);
    // A format 2 pack and its .idx.
    await blobs.put(
      'packs/0123456789abcdef01234567.pack',
      Buffer.concat([legacyPackHeader(), legacy.data]),
    );
    await blobs.put(
      'packs/0123456789abcdef01234567.idx',
      encodeLegacyIndex([{ hash: Buffer.from(legacy.hash, 'hex'), offset: 8, length: 900 }]),
    );
    await blobs.flush();
    const store = packedStore(blobs, { packBytes: 1 << 20 });
    disposers.push(() => store.close());
    await store.put(packed.key, packed.data);
    await store.put(legacy.key, legacy.data); // named by the .idx: not written again
    await store.flush();
    const other = client(path);
    expect((await readAll(other, legacy.key)).equals(legacy.data)).toBe(true);
    expect((await readAll(other, packed.key)).equals(packed.data)).toBe(true);
    // A loose object no index names is read by its key (manifests and version records are).
    expect((await readAll(other, loose.key)).equals(loose.data)).toBe(true);
    expect(await keysOf(other)).toEqual([legacy.key, packed.key].sort());
    // The .idx gone (gc of another client removed the pack): gone for every reader.
    await rm(join(path, 'packs', '0123456789abcdef01234567.idx'));
    expect(await other.has(legacy.key)).toBe(false);
  });
});

describe('reading many objects', () => {
  it('reads objects in any order, repeated or not, from one ranged read per run of a pack, into their places', async () => {
    const blobs = new DiskStore(await folder());
    const store = packedStore(blobs, { packBytes: 1 << 20 });
    disposers.push(() => store.close());
    const objects = Array.from({ length: 60 }, (_, i) => object(1000 + i * 331));
    for (const o of objects) await store.put(o.key, o.data);
    await store.flush();
    const other = packedStore(blobs, { packBytes: 1 << 20 });
    disposers.push(() => other.close());
    // Shuffled, with repeats, skipping some (gaps inside a pack cost less than a request).
    const picks = [5, 3, 3, 40, 0, 59, 7, 7, 7, 22, 41, 39].map((i) => objects[i]!);
    await other.sync.sync();
    const read = await counted(() => other.readMany(picks.map((o) => o.hash)));
    read.value.forEach((bytes, i) => expect(bytes.equals(picks[i]!.data)).toBe(true));
    expect(read.requests.get).toBe(1); // one pack: one ranged read
    // Into a buffer, at given places, with the lengths the caller expects.
    const lengths = picks.map((o) => o.data.length);
    const positions = lengths.map((_, i) => lengths.slice(0, i).reduce((a, b) => a + b, 7));
    const dest = Buffer.alloc(7 + lengths.reduce((a, b) => a + b, 0));
    await other.readInto(
      picks.map((o) => o.hash),
      dest,
      positions,
      lengths,
    );
    picks.forEach((o, i) =>
      expect(dest.subarray(positions[i]!, positions[i]! + o.data.length).equals(o.data)).toBe(true),
    );
    await expect(
      other.readInto([picks[0]!.hash], Buffer.alloc(10_000), [0], [picks[0]!.data.length + 1]),
    ).rejects.toThrow(/is \d+ bytes by the index, \d+ by its manifest/);
  });
});

describe('packs on S3', () => {
  let s3: S3Server;
  let n = 0;
  beforeAll(async () => {
    s3 = await S3Server.start();
  });
  afterAll(() => s3?.stop());

  const remote = (
    prefix: string,
    cacheDir: string,
    packBytes = 256 * 1024,
    extra: { sparseSealMs?: number } = {},
  ) => {
    const store = packedStore(s3Store(s3, prefix), {
      packBytes,
      cacheDir,
      repositoryId: prefix,
      ...extra,
    });
    disposers.push(() => store.close());
    return store;
  };

  it('a pack that new objects only trickle into is sealed once it has been open long enough, not at the end; one filling fast is not', async () => {
    const prefix = `sparse-${++n}`;
    const packs = async (store: PackedStore) => (await keysOf(store.blobs, 'data/')).length;
    const cache = await folder();
    // Sealed early at once (0 ms) where allowed; a pack of 8 MiB is never full here.
    const [a, b, c, d] = [object(600_000), object(600_000), object(600_000), object(600_000)];
    // Under 1 MiB: a few objects wait, however much was passed over.
    const few = remote(prefix, cache, 8 << 20, { sparseSealMs: 0 });
    await few.put(a.key, a.data);
    few.passedOver(64 << 20);
    // 1.2 MB, but new objects are more than a fifth of what went by: a push of new data.
    const dense = remote(prefix, cache, 8 << 20, { sparseSealMs: 0 });
    await dense.put(a.key, a.data);
    dense.passedOver(4 << 20);
    await dense.put(b.key, b.data);
    await new Promise((r) => setTimeout(r, 50));
    for (const store of [few, dense]) await store.writer.close();
    expect(await packs(few)).toBe(0);

    const sparse = remote(prefix, cache, 8 << 20, { sparseSealMs: 0 });
    await sparse.put(a.key, a.data);
    await sparse.put(b.key, b.data);
    sparse.passedOver(5 << 20);
    // Sealed in the background: its index is written, and another client sees both objects.
    await vi.waitFor(async () => expect(await packs(sparse)).toBe(1));
    const other = remote(prefix, await folder());
    await vi.waitFor(async () => {
      await other.sync.sync();
      expect(await other.hasMany([a.key, b.key])).toEqual([true, true]);
    });
    // The next objects open a pack of their own, sealed by an append as well as by a pass.
    await sparse.put(c.key, c.data);
    sparse.passedOver(50 << 20);
    await sparse.put(d.key, d.data);
    await vi.waitFor(async () => expect(await packs(sparse)).toBe(2));
    await sparse.flush();
    expect(await packs(sparse)).toBe(2);
    expect((await sparse.readMany([a, b, c, d].map((o) => o.hash))).map(sha)).toEqual(
      [a, b, c, d].map((o) => o.hash),
    );

    // Not open long enough, or not allowed at all (a folder's packs): sealed at the flush only.
    for (const slow of [
      remote(`${prefix}-slow`, await folder(), 8 << 20, { sparseSealMs: 60_000 }),
      remote(`${prefix}-never`, await folder(), 8 << 20),
    ]) {
      await slow.put(a.key, a.data);
      await slow.put(b.key, b.data);
      slow.passedOver(1 << 30);
      await slow.put(c.key, c.data);
      await new Promise((r) => setTimeout(r, 50));
      expect(await packs(slow)).toBe(0);
      await slow.flush();
      expect(await packs(slow)).toBe(1);
    }
  });
  it('a client lists and fetches only the index objects written since its local copy; a damaged or missing copy costs requests, never answers', async () => {
    const prefix = `incremental-${++n}`;
    const cacheA = await folder();
    const cacheB = await folder();
    const writer = remote(prefix, cacheA);
    const first = Array.from({ length: 30 }, () => object(30_000));
    for (const o of first) await writer.put(o.key, o.data);
    await writer.flush();
    const indexes = (await keysOf(writer.blobs, 'index/')).length;
    expect(indexes).toBeGreaterThan(2);

    // A client that never saw the repository fetches every index object, and keeps them.
    const b1 = remote(prefix, cacheB);
    const cold = await counted(() => b1.hasMany(first.map((o) => o.key)));
    expect(cold.value).toEqual(first.map(() => true));
    expect(cold.requests).toMatchObject({ list: 1, get: indexes });

    // Later, in a new process: one listing, and only the new index objects fetched.
    const second = Array.from({ length: 10 }, () => object(30_000));
    for (const o of second) await writer.put(o.key, o.data);
    await writer.flush();
    const added = (await keysOf(writer.blobs, 'index/')).length - indexes;
    const b2 = remote(prefix, cacheB);
    const warm = await counted(() => b2.hasMany([...first, ...second].map((o) => o.key)));
    expect(warm.value.every(Boolean)).toBe(true);
    expect(warm.requests).toMatchObject({ list: 1, get: added });

    // A damaged copy is fetched again; a missing one too (and the next listing is whole).
    const copies = await readdir(join(cacheB, 'repositories'));
    const dir = join(cacheB, 'repositories', copies[0]!, 'index');
    const held = (await readdir(dir)).sort();
    await writeFile(join(dir, held[0]!), 'garbage');
    await rm(join(dir, held[1]!));
    const b3 = remote(prefix, cacheB);
    const repaired = await counted(() => b3.hasMany([...first, ...second].map((o) => o.key)));
    expect(repaired.value.every(Boolean)).toBe(true);
    expect(repaired.requests.get).toBe(2);
  });

  it('lists more than 1,000 index objects (continuation tokens)', async () => {
    const prefix = `many-${++n}`;
    const blobs = s3Store(s3, prefix);
    disposers.push(() => blobs.close());
    const objects = Array.from({ length: 1010 }, () => object(40));
    const names: string[] = [];
    await Promise.all(
      objects.map(async (o, i) => {
        const name = indexName(Date.now() - 5000 + i, randomBytes(8).toString('hex'));
        names.push(name);
        await blobs.put(
          `index/${name}`,
          encodeIndexObject({
            loose: [
              {
                hash: Buffer.from(o.hash, 'hex'),
                offset: 0,
                storedLength: 40,
                length: 40,
                encoding: 0,
              },
            ],
          }),
        );
      }),
    );
    const store = remote(prefix, await folder());
    expect(await store.hasMany(objects.map((o) => o.key))).toEqual(objects.map(() => true));
    expect((await keysOf(store)).length).toBe(1010);
  });

  it('a format 1 repository on S3 is upgraded: its objects stay and are read, new chunks go to packs, gc removes loose objects no version needs', async () => {
    const prefix = `upgrade-${++n}`;
    const dir = await folder();
    const options = {
      repository: `s3://${s3.bucket}/${prefix}`,
      s3: s3Options(s3),
      cacheDir: join(dir, 'cache'),
    };
    const repo = await Repository.init({ ...options, format: 1 });
    disposers.push(() => repo.close());
    const pool = new ChunkHashPool(2);
    disposers.push(() => pool.close());
    const file = (name: string, data: Uint8Array) => ({
      path: name,
      size: data.length,
      stream: async function* () {
        yield data;
      },
    });
    const v1data = seededBytes(50, 600_000);
    const v2data = seededBytes(51, 500_000);
    await push(repo, { model: 'm', files: [file('a.bin', v1data)], pool });
    const loose = (await keysOf(repo.stack.blobs)).filter((k) => k.startsWith('objects/'));
    expect(loose.length).toBeGreaterThan(5);
    expect(await repo.upgrade()).toEqual({ from: 1, to: 3, looseObjects: loose.length });
    await push(repo, { model: 'm', files: [file('a.bin', v1data), file('b.bin', v2data)], pool });
    expect((await keysOf(repo.stack.blobs, 'data/')).length).toBe(1);
    // Both versions read back whole, from loose objects and from the pack.
    for (const [selector, files] of [
      ['m@v1', { 'a.bin': v1data }],
      ['m@v2', { 'a.bin': v1data, 'b.bin': v2data }],
    ] as const) {
      const dest = join(dir, selector.replace('@', '-'));
      await restore(repo, await repo.resolve(selector), dest, { pool });
      for (const [name, data] of Object.entries(files))
        expect((await readFile(join(dest, name))).equals(Buffer.from(data))).toBe(true);
    }
    expect((await verify(repo, { full: true })).ok).toBe(true);
    // v2 removed: gc sweeps what only it needed (chunks of b.bin, in the pack; its record and
    // manifest, loose), and no loose object v1 needs.
    await repo.remove('m@v2');
    const swept = await gc(repo, { graceSeconds: 0 });
    expect(swept.sweptObjects).toBeGreaterThan(3);
    expect((await keysOf(repo.stack.blobs)).filter((k) => k.startsWith('objects/'))).toEqual(loose);
    expect((await verify(repo, { full: true })).ok).toBe(true);
  });

  it('a pack bigger than a part goes up as a multipart upload, each part with its checksum', async () => {
    const prefix = `multipart-${++n}`;
    const blobs = s3Store(s3, prefix, { partBytes: 5 << 20 });
    const store = packedStore(blobs, { packBytes: 12 << 20 });
    disposers.push(() => store.close());
    const objects = Array.from({ length: 13 }, () => object(1 << 20));
    s3.resetCounts();
    for (const o of objects) await store.put(o.key, o.data);
    await store.flush();
    expect(s3.count('POST')).toBe(2); // started and completed
    expect(s3.lastHeaders.get('PUT')?.['x-amz-checksum-sha256']).toBeTruthy();
    const other = packedStore(s3Store(s3, prefix), {});
    disposers.push(() => other.close());
    for (const o of objects) expect((await readAll(other, o.key)).equals(o.data)).toBe(true);
  });
});

describe('a Redis cache over packs', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis?.dispose());

  it('claims an object only once its pack and index are durable: as each pack is sealed, not before', async () => {
    const path = await folder();
    const packs = client(path, 64 * 1024);
    const cached = await cachedStore(packs, redis.url, { namespace: 'packs-claims' });
    disposers.push(cached.dispose);
    const objects = Array.from({ length: 30 }, () => object(10_000));
    for (const o of objects) await cached.store.put(o.key, o.data);
    await cached.store.idle();
    const early = await cached.store.claims(objects.map((o) => o.hash));
    // Sealed packs (full before the flush) are claimed; the open one's objects are not yet.
    expect(early!.filter(Boolean).length).toBeGreaterThan(10);
    expect(early!.at(-1)).toBe(false);
    await cached.store.flush();
    await cached.store.idle();
    expect(await cached.store.claims(objects.map((o) => o.hash))).toEqual(objects.map(() => true));
  });

  it('an existence check of an object in the open pack answers yes, and claims nothing until the pack is durable', async () => {
    const path = await folder();
    const packs = client(path, 1 << 20);
    const cached = await cachedStore(packs, redis.url, { namespace: 'packs-open-claims' });
    disposers.push(cached.dispose);
    const o = object(10_000);
    await cached.store.put(o.key, o.data);
    // Another file of the same push holds the same chunk: asked again, Redis misses and the
    // pack layer says this client holds it; it is not durable, so no key is written back.
    expect(await cached.store.hasMany([o.key])).toEqual([true]);
    await cached.store.idle();
    expect(await cached.store.claims([o.hash])).toEqual([false]);
    await cached.store.flush();
    await cached.store.idle();
    expect(await cached.store.claims([o.hash])).toEqual([true]);
  });
});

describe('repository formats', () => {
  it('a new folder repository is format 3 and packs its chunks; a format 1 folder keeps a file per object until upgraded', async () => {
    const dir = await folder();
    const fresh = await Repository.init({ repository: join(dir, 'new') });
    disposers.push(() => fresh.close());
    expect(fresh.info()).toMatchObject({ format: 3, packSize: 64 << 20 });
    const o = object();
    await fresh.store.put(o.key, o.data);
    await fresh.store.flush();
    expect(await filesIn(join(dir, 'new'), 'data')).toHaveLength(1);

    const oldPath = join(dir, 'old');
    const older = await Repository.init({ repository: oldPath, format: 1 });
    disposers.push(() => older.close());
    expect(older.info()).toMatchObject({ format: 1, packSize: null });
    await older.store.put(o.key, o.data);
    await older.store.flush();
    expect((await readFile(join(oldPath, ...o.key.split('/')))).equals(o.data)).toBe(true);
    expect(await filesIn(oldPath, 'data')).toEqual([]);

    // Upgraded: the loose object is named in the index, new chunks go to packs; once only.
    expect(await older.upgrade()).toEqual({ from: 1, to: 3, looseObjects: 1 });
    expect(JSON.parse(await readFile(join(oldPath, 'config'), 'utf8'))).toMatchObject({
      format: 3,
      packSize: 64 << 20,
    });
    const p = object();
    await older.store.put(p.key, p.data);
    await older.store.flush();
    expect(await filesIn(oldPath, 'data')).toHaveLength(1);
    const reopened = await Repository.open({ repository: oldPath });
    disposers.push(() => reopened.close());
    expect(reopened.info().format).toBe(3);
    expect(await reopened.store.hasMany([o.key, p.key])).toEqual([true, true]);
    expect(await reopened.upgrade()).toEqual({ from: 3, to: 3, looseObjects: 0 });
  });

  /** A new folder repository whose config says format 2 (as one written before format 3). */
  const formatTwoFolder = async (): Promise<string> => {
    const path = await folder();
    const fresh = await Repository.init({ repository: path });
    await fresh.close();
    const config = JSON.parse(await readFile(join(path, 'config'), 'utf8')) as Record<
      string,
      unknown
    >;
    delete config['packSize'];
    await writeFile(join(path, 'config'), JSON.stringify({ ...config, format: 2 }));
    return path;
  };

  it('a format 2 folder is read, refuses writes with a message saying to upgrade, and is upgraded in place', async () => {
    const path = await formatTwoFolder();
    const blobs: BlobStore = new DiskStore(path);
    const legacy = object(900);
    await blobs.put(
      'packs/0123456789abcdef01234567.pack',
      Buffer.concat([legacyPackHeader(), legacy.data]),
    );
    await blobs.put(
      'packs/0123456789abcdef01234567.idx',
      encodeLegacyIndex([{ hash: Buffer.from(legacy.hash, 'hex'), offset: 8, length: 900 }]),
    );
    const repo = await Repository.open({ repository: path });
    disposers.push(() => repo.close());
    expect((await readAll(repo.store, legacy.key)).equals(legacy.data)).toBe(true);
    const o = object();
    await expect(repo.store.put(o.key, o.data)).rejects.toThrow(
      /is a repository of format 2, which this version reads but does not write: run `tv upgrade`/,
    );
    expect(await repo.upgrade()).toMatchObject({ from: 2, to: 3 });
    await repo.store.put(o.key, o.data);
    await repo.store.flush();
    expect(await repo.store.hasMany([o.key, legacy.key])).toEqual([true, true]);
  });

  it('repair packs over a format 2 pack with a corrupt copy: its intact objects move to a format 3 pack, the corrupt one is dropped, the old pack and .idx go', async () => {
    const path = await formatTwoFolder();
    const [good, bad] = [object(900), object(700)];
    const corrupt = Buffer.from(bad.data);
    corrupt[5] = corrupt[5]! ^ 0x01;
    const blobs: BlobStore = new DiskStore(path);
    await blobs.put(
      'packs/89abcdef0123456789abcdef.pack',
      Buffer.concat([legacyPackHeader(), good.data, corrupt]),
    );
    await blobs.put(
      'packs/89abcdef0123456789abcdef.idx',
      encodeLegacyIndex([
        { hash: Buffer.from(good.hash, 'hex'), offset: 8, length: 900 },
        { hash: Buffer.from(bad.hash, 'hex'), offset: 908, length: 700 },
      ]),
    );
    const repo = await Repository.open({ repository: path });
    disposers.push(() => repo.close());
    await repo.upgrade();
    expect(await repairPacks(repo, ['89abcdef0123456789abcdef'])).toMatchObject({
      packsChecked: 1,
      dropped: [{ hash: bad.hash, pack: '89abcdef0123456789abcdef', intactCopy: false }],
    });
    expect(await filesIn(path, 'packs')).toEqual([]);
    const other = client(path);
    expect(await other.hasMany([good.key, bad.key])).toEqual([true, false]);
    expect((await readAll(other, good.key)).equals(good.data)).toBe(true);
  });
});
