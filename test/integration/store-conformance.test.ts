import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../electron/engine/storage/memory';
import {
  ObjectNotFoundError,
  objectKey,
  readAll,
  type BlobStore,
  type Store,
} from '../../electron/engine/storage/store';
import { RedisServer } from '../harness/redis';
import { S3Server } from '../harness/s3';
import { cachedStore, diskStore, packedStore, s3Store, tempDir } from './stores';

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const object = (size = 1000) => {
  const data = randomBytes(size);
  return { data, hash: sha(data), key: objectKey(sha(data)) };
};

let redis: RedisServer;
let s3: S3Server;
beforeAll(async () => {
  [redis, s3] = await Promise.all([RedisServer.start(), S3Server.start()]);
});
afterAll(async () => {
  await Promise.all([redis?.dispose(), s3?.stop()]);
});

type Factory = () => Promise<{ store: Store; dispose(): Promise<void> }>;
let prefixes = 0;
/** The pack layer over a blob store, small packs, its local copy (if remote) in a temp folder. */
const packed = async (blobs: BlobStore, dispose: () => Promise<void> = async () => {}) => {
  const cache = await tempDir('tv-conformance-cache-');
  const store = packedStore(blobs, { packBytes: 128 * 1024, cacheDir: cache.path });
  return {
    store,
    dispose: async () => (await store.close(), await dispose(), await cache.remove()),
  };
};
const factories: Record<string, Factory> = {
  MemoryStore: async () => ({ store: new MemoryStore(), dispose: async () => {} }),
  'DiskStore (a file per object, format 1)': diskStore,
  S3Store: async () => {
    const store = s3Store(s3, `conformance-${++prefixes}`);
    return { store, dispose: () => store.close() };
  },
  'packs over DiskStore (format 3)': async () => {
    const disk = await diskStore();
    return packed(disk.store, disk.dispose);
  },
  'packs over S3Store (format 3)': () => packed(s3Store(s3, `conformance-${++prefixes}`)),
  'CachedStore over DiskStore': async () => {
    const disk = await diskStore();
    const cached = await cachedStore(disk.store, redis.url, { namespace: `c${++prefixes}` });
    return {
      store: cached.store,
      dispose: async () => (await cached.dispose(), await disk.dispose()),
    };
  },
  'CachedStore over S3Store': async () => {
    const cached = await cachedStore(s3Store(s3, `conformance-${++prefixes}`), redis.url, {
      namespace: `c${prefixes}`,
    });
    return cached;
  },
  'CachedStore over packs over S3Store': async () => {
    const packs = await packed(s3Store(s3, `conformance-${++prefixes}`));
    const cached = await cachedStore(packs.store, redis.url, { namespace: `c${prefixes}` });
    return {
      store: cached.store,
      dispose: async () => (await cached.dispose(), await packs.dispose()),
    };
  },
};

for (const [name, factory] of Object.entries(factories)) {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      ({ store, dispose } = await factory());
    });
    afterAll(() => dispose());

    it('stores an object and gives back the same bytes', async () => {
      const o = object(300_000);
      expect(await store.has(o.key)).toBe(false);
      await store.put(o.key, o.data, { sha256: o.hash });
      expect(await store.has(o.key)).toBe(true);
      expect((await readAll(store, o.key)).equals(o.data)).toBe(true);
      await store.flush();
      expect((await readAll(store, o.key)).equals(o.data)).toBe(true);
    });

    it('stores an empty object', async () => {
      const o = object(0);
      await store.put(o.key, o.data, { sha256: o.hash });
      expect((await readAll(store, o.key)).length).toBe(0);
    });

    it('is idempotent: putting an object twice keeps one copy', async () => {
      const o = object();
      await store.put(o.key, o.data);
      await store.put(o.key, o.data);
      const listed = [];
      for await (const entry of store.list(o.key)) listed.push(entry);
      expect(listed).toEqual([expect.objectContaining({ key: o.key, size: o.data.length })]);
    });

    it('answers hasMany in the order asked, mixing present and absent', async () => {
      const present = [object(), object()];
      for (const o of present) await store.put(o.key, o.data);
      const absent = object();
      const keys = [present[0]!.key, absent.key, present[1]!.key, absent.key];
      expect(await store.hasMany(keys)).toEqual([true, false, true, false]);
      expect(await store.hasMany([])).toEqual([]);
    });

    it('fails a get of an absent object with ObjectNotFoundError naming it', async () => {
      const o = object();
      await expect(store.get(o.key)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.get(o.key)).rejects.toThrow(o.key);
    });

    it('deletes an object, and deleting it again is fine', async () => {
      const o = object();
      await store.put(o.key, o.data);
      await store.delete(o.key);
      expect(await store.has(o.key)).toBe(false);
      await store.delete(o.key);
    });

    it('lists by prefix, and keeps plain (non-object) keys too', async () => {
      await store.put('refs/model-a/v1', Buffer.from('one'));
      await store.put('refs/model-a/v2', Buffer.from('two'));
      await store.put('refs/model-b/v1', Buffer.from('three'));
      const keys = [];
      for await (const entry of store.list('refs/model-a/')) keys.push(entry.key);
      expect(keys.sort()).toEqual(['refs/model-a/v1', 'refs/model-a/v2']);
      expect((await readAll(store, 'refs/model-b/v1')).toString()).toBe('three');
      const objects = [];
      for await (const entry of store.list('objects/')) objects.push(entry.key);
      expect(objects.every((k) => /^objects\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(k))).toBe(true);
      await store.flush();
    });

    it('refuses keys that could escape the store', async () => {
      for (const bad of ['../etc/passwd', '/abs', 'a//b', 'a/./b', '']) {
        await expect(store.put(bad, Buffer.from('x'))).rejects.toThrow(/invalid storage key/);
      }
    });
  });
}

type BlobFactory = () => Promise<{ store: BlobStore; dispose(): Promise<void> }>;
const blobFactories: Record<string, BlobFactory> = {
  MemoryStore: async () => ({ store: new MemoryStore(), dispose: async () => {} }),
  DiskStore: diskStore,
  S3Store: async () => {
    const store = s3Store(s3, `blobs-${++prefixes}`, { partBytes: 5 << 20 });
    return { store, dispose: () => store.close() };
  },
};

for (const [name, factory] of Object.entries(blobFactories)) {
  describe(`blob store conformance: ${name}`, () => {
    let store: BlobStore;
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      ({ store, dispose } = await factory());
    });
    afterAll(() => dispose());

    it('reads byte ranges of a blob; an absent blob is ObjectNotFoundError, a range past its end an error', async () => {
      const data = randomBytes(100_000);
      await store.put('data/ab/range', data);
      expect((await store.getRange('data/ab/range', 0, 10)).equals(data.subarray(0, 10))).toBe(
        true,
      );
      expect(
        (await store.getRange('data/ab/range', 99_990, 10)).equals(data.subarray(99_990)),
      ).toBe(true);
      expect((await store.getRange('data/ab/range', 5, 0)).length).toBe(0);
      await expect(store.getRange('data/ab/absent', 0, 10)).rejects.toBeInstanceOf(
        ObjectNotFoundError,
      );
      await expect(store.getRange('data/ab/range', 99_995, 10)).rejects.toThrow();
    });

    it('a blob written piece by piece appears whole at finish, never before; an aborted one never', async () => {
      const parts = Array.from({ length: 7 }, (_, i) => randomBytes(1_000_000 + i));
      const writer = store.createWriter('data/cd/written', { expectedBytes: 2_000_000 });
      for (const p of parts) await writer.append(p);
      expect(writer.size).toBe(parts.reduce((n, p) => n + p.length, 0));
      expect(await store.has('data/cd/written')).toBe(false);
      expect(
        (await writer.read(3_000_000, 100)).equals(
          Buffer.concat(parts).subarray(3_000_000, 3_000_100),
        ),
      ).toBe(true);
      await writer.finish();
      expect((await readAll(store, 'data/cd/written')).equals(Buffer.concat(parts))).toBe(true);
      const aborted = store.createWriter('data/cd/aborted');
      await aborted.append(randomBytes(1000));
      await aborted.abort();
      expect(await store.has('data/cd/aborted')).toBe(false);
    });

    it('lists only the keys after startAfter', async () => {
      for (const k of ['a', 'b', 'c', 'd']) await store.put(`sorted/${k}`, Buffer.from(k));
      const keys: string[] = [];
      for await (const e of store.list('sorted/', { startAfter: 'sorted/b' })) keys.push(e.key);
      expect(keys.sort()).toEqual(['sorted/c', 'sorted/d']);
    });
  });
}

describe('S3Store uploads', () => {
  it('sign the sha256 the caller gives as the payload hash (S3 rejects a body that does not match it)', async () => {
    const store = s3Store(s3, `signing-${++prefixes}`);
    try {
      const { data, hash, key } = object();
      await store.put(key, data, { sha256: hash });
      let headers = s3.lastHeaders.get('PUT');
      expect(headers?.['x-amz-content-sha256']).toBe(hash);
      expect(headers?.['x-amz-checksum-sha256']).toBe(Buffer.from(hash, 'hex').toString('base64'));
      // The digest is taken from the caller, not computed again: a claimed one is what is signed.
      const claimed = 'cd'.repeat(32);
      await store.put(objectKey(claimed), data, { sha256: claimed });
      expect(s3.lastHeaders.get('PUT')?.['x-amz-content-sha256']).toBe(claimed);
      // Without a known digest the SDK hashes the body to sign it.
      const other = object();
      await store.put('plain/key', other.data);
      headers = s3.lastHeaders.get('PUT');
      expect(headers?.['x-amz-content-sha256']).toBe(other.hash);
      expect(headers?.['x-amz-checksum-sha256']).toBeUndefined();
      expect(await readAll(store, key)).toEqual(data);
    } finally {
      await store.close();
    }
  });

  it("a blob written piece by piece sends the sha256 of its bytes, and each part of a multipart upload its own part's", async () => {
    const store = s3Store(s3, `writer-sums-${++prefixes}`, { partBytes: 5 << 20 });
    const checksum = () => s3.lastHeaders.get('PUT')?.['x-amz-checksum-sha256'];
    const base64 = (data: Uint8Array) => Buffer.from(sha(data), 'hex').toString('base64');
    try {
      // One PUT: pieces of odd sizes through a buffer that starts small and grows.
      const pieces = [1000, 70_000, 3 << 20, 1].map((n) => randomBytes(n));
      const whole = store.createWriter('data/ab/whole', { expectedBytes: 4096 });
      for (const p of pieces) await whole.append(p);
      await whole.finish();
      const all = Buffer.concat(pieces);
      expect(checksum()).toBe(base64(all));
      expect(s3.lastHeaders.get('PUT')?.['x-amz-content-sha256']).toBe(sha(all));
      expect((await readAll(store, 'data/ab/whole')).equals(all)).toBe(true);
      // A multipart upload: 5 MiB parts, then a last part of the 2 MiB left, summed on its own.
      const big = randomBytes(12 << 20);
      const parts = store.createWriter('data/ab/parts', { expectedBytes: 1 << 20 });
      for (let at = 0; at < big.length; at += 777_777)
        await parts.append(big.subarray(at, Math.min(big.length, at + 777_777)));
      await parts.finish();
      expect(checksum()).toBe(base64(big.subarray(10 << 20)));
      expect((await readAll(store, 'data/ab/parts')).equals(big)).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('object keys', () => {
  it('shard by the hash and refuse malformed hashes with one clear error', () => {
    const hash = 'ab'.repeat(32);
    expect(objectKey(hash)).toBe(`objects/ab/${hash}`);
    expect(() => objectKey('xyz')).toThrow(
      'malformed object hash "xyz": expected 64 lowercase hex characters',
    );
    expect(() => objectKey('AB'.repeat(32))).toThrow(/malformed object hash/);
    expect(() => objectKey('../' + 'a'.repeat(61))).toThrow(/malformed object hash/);
  });
});
