import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../electron/engine/storage/memory';
import {
  ObjectNotFoundError,
  objectKey,
  readAll,
  type Store,
} from '../../electron/engine/storage/store';
import { RedisServer } from '../harness/redis';
import { S3Server } from '../harness/s3';
import { cachedStore, diskStore, s3Store } from './stores';

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
const factories: Record<string, Factory> = {
  MemoryStore: async () => ({ store: new MemoryStore(), dispose: async () => {} }),
  'DiskStore (packs, format 2)': diskStore,
  'DiskStore (a file per object, format 1)': () => diskStore({ layout: 'loose' }),
  S3Store: async () => {
    const store = s3Store(s3, `conformance-${++prefixes}`);
    return { store, dispose: () => store.close() };
  },
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
