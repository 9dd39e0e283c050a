import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reachable } from '../../electron/engine/integrity/reachable';
import { Service } from '../../electron/engine/service';
import { DiskStore } from '../../electron/engine/storage/disk';
import { packNameOfKey } from '../../electron/engine/storage/packs/format';
import { objectKey, readAll, type BlobStore } from '../../electron/engine/storage/store';
import { RedisServer } from '../harness/redis';
import { S3Server } from '../harness/s3';
import { seededBytes } from '../unit/prng';
import {
  cacheKey,
  flipInFile,
  packedStore,
  s3Options,
  s3Store,
  startServers,
  type TestServers,
} from './stores';

let servers: TestServers;
let redis: RedisServer;
let s3: S3Server;
let work: TestServers['work'];
let redisClient: Redis;
beforeAll(async () => {
  servers = await startServers('tv-integrity-');
  ({ redis, s3, work } = servers);
  redisClient = new Redis(redis.url);
});
afterAll(async () => {
  redisClient?.disconnect();
  await servers?.stop();
});

let n = 0;
function teamService(prefix: string): Service {
  return new Service({
    repository: `s3://${s3.bucket}/${prefix}`,
    redisUrl: redis.url,
    s3: s3Options(s3),
    mode: 'cli',
    workers: 2,
  });
}
async function folder(name: string, files: Record<string, Uint8Array>): Promise<string> {
  const dir = join(work.path, `${name}-${++n}`);
  await mkdir(dir, { recursive: true });
  for (const [path, data] of Object.entries(files)) await writeFile(join(dir, path), data);
  return dir;
}

describe('verify', () => {
  it('names the chunks of a pack deleted from the bucket and their versions, removes their stale cache keys, and passes once it is back', async () => {
    const service = teamService('verify');
    try {
      await service.init({ packSize: 256 * 1024 });
      const src = await folder('v', {
        'a.bin': seededBytes(1, 700_000),
        'b.bin': seededBytes(2, 300_000),
      });
      await service.push({ model: 'm', paths: [src] });
      expect((await service.verify()).ok).toBe(true);
      const repo = await service.repository();
      const v1 = await repo.resolve('m@v1');
      const file = v1.record.files.find((f) => f.path === 'a.bin')!;
      const victim = (await repo.readManifest(file.manifest)).chunks[2]!.hash;
      const packs = repo.stack.packs!;
      const [where] = await packs.locateMany([victim]);
      // Every chunk of the version in the same pack, and the files that need them.
      const lost = new Map<string, string>();
      for (const f of v1.record.files) {
        const chunks = (await repo.readManifest(f.manifest)).chunks.map((c) => c.hash);
        const located = await packs.locateMany(chunks);
        chunks.forEach((h, i) => located[i]?.key === where!.key && lost.set(h, f.path));
      }
      const bucket = s3Store(s3, 'verify');
      const saved = await readAll(bucket, where!.key);
      await bucket.delete(where!.key); // behind the cache's back
      const namespace = repo.config.repositoryId;
      expect(await redisClient.exists(cacheKey(namespace, victim))).toBe(1);

      const bad = await service.verify();
      expect(bad.ok).toBe(false);
      expect(bad.damaged.map((d) => d.hash).sort()).toEqual([...lost.keys()].sort());
      expect(bad.damaged.find((d) => d.hash === victim)).toEqual({
        hash: victim,
        kind: 'chunk',
        problem: 'missing',
        neededBy: [{ version: 'm v1', file: 'a.bin' }],
      });
      expect(bad.damagedVersions).toEqual([
        { model: 'm', version: 'v1', id: v1.id, files: [...new Set(lost.values())].sort() },
      ]);
      expect(bad.staleCacheKeysRemoved).toBe(lost.size);
      expect(await redisClient.exists(cacheKey(namespace, victim))).toBe(0);

      await bucket.put(where!.key, saved);
      const full = await service.verify({ full: true });
      expect(full).toMatchObject({ ok: true, full: true, damaged: [] });
      expect(full.packs?.problems).toEqual([]);
      await bucket.close();
    } finally {
      await service.close();
    }
  });
});

describe('a pack lost for good', () => {
  it('pushing the same files again, read (--no-cache), stores its chunks again, and every version is whole', async () => {
    const service = teamService('lost-pack');
    try {
      await service.init({ packSize: 256 * 1024 });
      const src = await folder('lp', {
        'a.bin': seededBytes(11, 700_000),
        'b.bin': seededBytes(12, 300_000),
      });
      await service.push({ model: 'm', paths: [src] });
      const repo = await service.repository();
      const v1 = await repo.resolve('m@v1');
      const file = v1.record.files.find((f) => f.path === 'a.bin')!;
      const victim = (await repo.readManifest(file.manifest)).chunks[2]!.hash;
      const [where] = await repo.stack.packs!.locateMany([victim]);
      const bucket = s3Store(s3, 'lost-pack');
      await bucket.delete(where!.key); // lost, with no copy
      await bucket.close();
      // verify --full drops the lost pack from the index and the cache keys that claimed it.
      const damaged = await service.verify({ full: true });
      expect(damaged.ok).toBe(false);
      const lost = damaged.damaged.map((d) => d.hash);
      expect(lost).toContain(victim);

      // The same files, read again: the previous version names the lost chunks, the index does not.
      const again = await service.push({
        model: 'm',
        paths: [src],
        allowSame: true,
        noCache: true,
      });
      expect(again.version).toBe('v2');
      expect(again.newChunks).toBe(lost.length);
      const after = await service.verify({ full: true });
      expect(after).toMatchObject({ ok: true, damaged: [] });
      const dest = join(work.path, `lost-pack-${++n}`);
      await service.pull('m@v1', dest);
      expect(
        (await readFile(join(dest, 'a.bin'))).equals(Buffer.from(seededBytes(11, 700_000))),
      ).toBe(true);
    } finally {
      await service.close();
    }
  });
});

describe('a push identical to its parent', () => {
  it('keeps the chunks it stored again (a corrupt copy dropped, --no-cache), though it writes no version', async () => {
    const path = join(work.path, `same-folder-${++n}`);
    const service = new Service({ repository: path, redisUrl: undefined, mode: 'cli', workers: 2 });
    try {
      const a = seededBytes(15, 700_000);
      const src = await folder('ls', { 'a.bin': a });
      await service.push({ model: 'm', paths: [src] });
      const repo = await service.repository();
      const v1 = await repo.resolve('m@v1');
      const victim = (await repo.readManifest(v1.record.files[0]!.manifest)).chunks[2]!.hash;
      const [where] = await repo.stack.packs!.locateMany([victim]);
      await flipInFile(repo.stack.blobs.localPath!(where!.key), where!.offset + 7);
      await service.repairPacks([packNameOfKey(where!.key)!]);

      const again = await service.push({ model: 'm', paths: [src], noCache: true });
      expect(again.identicalTo?.version).toBe('v1');
      expect(again.newChunks).toBe(1);
      expect(await service.verify({ full: true })).toMatchObject({ ok: true, damaged: [] });
      const dest = join(work.path, `same-folder-out-${++n}`);
      await service.pull('m@v1', dest);
      expect((await readFile(join(dest, 'a.bin'))).equals(Buffer.from(a))).toBe(true);
    } finally {
      await service.close();
    }
  });
});

describe('a pack lost for good, files sent as streams (browser mode)', () => {
  it('pushing them again with --no-cache stores the lost chunks again: a stream cannot be read twice, so nothing is taken from a guide', async () => {
    const service = teamService('lost-stream');
    const a = seededBytes(13, 700_000);
    const b = seededBytes(14, 300_000);
    const streams = () =>
      [
        ['a.bin', a],
        ['b.bin', b],
      ].map(([path, bytes]) => ({
        path: path as string,
        size: (bytes as Uint8Array).length,
        stream: () => [bytes as Uint8Array],
      }));
    try {
      await service.init({ packSize: 256 * 1024 });
      await service.push({ model: 'm', files: streams() });
      const repo = await service.repository();
      const v1 = await repo.resolve('m@v1');
      const file = v1.record.files.find((f) => f.path === 'a.bin')!;
      const victim = (await repo.readManifest(file.manifest)).chunks[2]!.hash;
      const [where] = await repo.stack.packs!.locateMany([victim]);
      const bucket = s3Store(s3, 'lost-stream');
      await bucket.delete(where!.key);
      await bucket.close();
      const lost = (await service.verify({ full: true })).damaged.map((d) => d.hash);
      expect(lost).toContain(victim);

      const again = await service.push({
        model: 'm',
        files: streams(),
        allowSame: true,
        noCache: true,
      });
      expect(again.newChunks).toBe(lost.length);
      expect(await service.verify({ full: true })).toMatchObject({ ok: true, damaged: [] });
      const dest = join(work.path, `lost-stream-${++n}`);
      await service.pull('m@v1', dest);
      expect((await readFile(join(dest, 'a.bin'))).equals(Buffer.from(a))).toBe(true);
    } finally {
      await service.close();
    }
  });
});

/** Flips one bit of a pack in a bucket (the pack written again, as a faulty copy would be). */
async function flipInBucket(blobs: BlobStore, key: string, at: number): Promise<void> {
  const bytes = await readAll(blobs, key);
  bytes[at] = bytes[at]! ^ 0x01;
  await blobs.put(key, bytes);
}

describe('a corrupt copy in a pack', () => {
  it('on S3: verify --full names its pack; repair packs drops it from the index, its cache key first; a push of the file (--no-cache) stores it again, and the version restores exactly', async () => {
    const service = teamService('corrupt');
    try {
      await service.init({ packSize: 256 * 1024 });
      const a = seededBytes(21, 700_000);
      const src = await folder('cc', { 'a.bin': a, 'b.bin': seededBytes(22, 300_000) });
      await service.push({ model: 'm', paths: [src] });
      const repo = await service.repository();
      const v1 = await repo.resolve('m@v1');
      const file = v1.record.files.find((f) => f.path === 'a.bin')!;
      const victim = (await repo.readManifest(file.manifest)).chunks[2]!.hash;
      const [where] = await repo.stack.packs!.locateMany([victim]);
      const pack = packNameOfKey(where!.key)!;
      const bucket = s3Store(s3, 'corrupt');
      await flipInBucket(bucket, where!.key, where!.offset + 100);
      await bucket.close();
      const namespace = repo.config.repositoryId;
      expect(await redisClient.exists(cacheKey(namespace, victim))).toBe(1);

      const found = await service.verify({ full: true });
      expect(found.ok).toBe(false);
      expect(found.damaged).toEqual([
        {
          hash: victim,
          kind: 'chunk',
          problem: 'corrupt',
          neededBy: [{ version: 'm v1', file: 'a.bin' }],
          corruptIn: [pack],
          intactCopy: false,
        },
      ]);

      const repaired = await service.repairPacks([pack]);
      expect(repaired).toMatchObject({
        packsChecked: 1,
        dropped: [{ hash: victim, pack, intactCopy: false }],
        toPushAgain: [{ hash: victim, neededBy: [{ version: 'm v1', file: 'a.bin' }] }],
        deadBytes: where!.storedLength,
        cacheKeysRemoved: 1,
        packsDeleted: 0,
        problems: [],
      });
      expect(await redisClient.exists(cacheKey(namespace, victim))).toBe(0);
      // A rebuild from the packs' trailers (which still name the copy) does not bring it back.
      expect(await service.repairIndex()).toMatchObject({ packsIndexed: 0, objectsLost: 0 });
      expect((await service.verify({ full: true })).damaged).toMatchObject([
        { hash: victim, problem: 'missing' },
      ]);

      const again = await service.push({
        model: 'm',
        paths: [src],
        allowSame: true,
        noCache: true,
      });
      expect(again.newChunks).toBe(1);
      expect(await service.verify({ full: true })).toMatchObject({ ok: true, damaged: [] });
      const dest = join(work.path, `corrupt-${++n}`);
      await service.pull('m@v1', dest);
      expect((await readFile(join(dest, 'a.bin'))).equals(Buffer.from(a))).toBe(true);
    } finally {
      await service.close();
    }
  });

  it('in a folder, with an intact copy in another pack: repair packs drops only the corrupt one, nothing is pushed again, and the version restores exactly', async () => {
    const path = join(work.path, `corrupt-folder-${++n}`);
    const service = new Service({ repository: path, redisUrl: redis.url, mode: 'cli', workers: 2 });
    try {
      await service.init({ packSize: 256 * 1024 });
      const a = seededBytes(31, 700_000);
      await service.push({ model: 'm', paths: [await folder('cf', { 'a.bin': a })] });
      const repo = await service.repository();
      const v1 = await repo.resolve('m@v1');
      const victim = (await repo.readManifest(v1.record.files[0]!.manifest)).chunks[1]!.hash;
      const [where] = await repo.stack.packs!.locateMany([victim]);
      // A second copy in a pack of its own, as two pushes at the same moment leave.
      const other = packedStore(new DiskStore(path));
      await other.writer.append(victim, await readAll(repo.stack.packs!, objectKey(victim)));
      await other.writer.flush();
      await other.close();
      await flipInFile(repo.stack.blobs.localPath!(where!.key), where!.offset + 7);
      const pack = packNameOfKey(where!.key)!;

      const found = await service.verify({ full: true });
      expect(found.damaged).toMatchObject([
        { hash: victim, problem: 'corrupt', corruptIn: [pack], intactCopy: true },
      ]);
      const repaired = await service.repairPacks();
      expect(repaired.packsChecked).toBeGreaterThan(1);
      expect(repaired).toMatchObject({
        dropped: [{ hash: victim, pack, intactCopy: true }],
        toPushAgain: [],
        cacheKeysRemoved: 1,
        problems: [],
      });
      expect(await redisClient.exists(cacheKey(repo.config.repositoryId, victim))).toBe(0);
      expect(await service.verify({ full: true })).toMatchObject({ ok: true, damaged: [] });
      const dest = join(work.path, `corrupt-folder-out-${++n}`);
      await service.pull('m@v1', dest);
      expect((await readFile(join(dest, 'a.bin'))).equals(Buffer.from(a))).toBe(true);
      // Read back again, every copy is intact: nothing to do.
      expect(await service.repairPacks()).toMatchObject({ dropped: [], deadBytes: 0 });

      // A pack of nothing but a corrupt copy (another pack holds an intact one) is deleted: a pack
      // no index names would be indexed again from its trailer, corrupt copy and all.
      const chunk = (await repo.readManifest(v1.record.files[0]!.manifest)).chunks[0]!.hash;
      const spare = packedStore(new DiskStore(path));
      await spare.sync.sync({ full: true });
      const before = new Set(spare.catalog.livePacks().map((p) => p.name));
      await spare.writer.append(chunk, await readAll(repo.stack.packs!, objectKey(chunk)));
      await spare.writer.flush();
      const lone = spare.catalog.livePacks().find((p) => !before.has(p.name))!;
      expect(lone.count).toBe(1);
      await spare.close();
      await flipInFile(repo.stack.blobs.localPath!(lone.key), 8);
      expect(await service.repairPacks()).toMatchObject({
        dropped: [{ hash: chunk, pack: lone.name, intactCopy: true }],
        deadBytes: 0,
        packsDeleted: 1,
      });
      await expect(stat(repo.stack.blobs.localPath!(lone.key))).rejects.toThrow(/ENOENT/);
      expect(await service.repairIndex()).toMatchObject({ packsIndexed: 0 });
      expect(await service.verify({ full: true })).toMatchObject({ ok: true, damaged: [] });
    } finally {
      await service.close();
    }
  });
});

describe('verify --full over a lost index', () => {
  it("rebuilds the index from the packs' trailers before anything counts as missing", async () => {
    const service = teamService('lost-index');
    try {
      await service.init({ packSize: 256 * 1024 });
      const data = seededBytes(70, 1_500_000);
      await service.push({ model: 'm', paths: [await folder('li', { 'w.bin': data })] });
    } finally {
      await service.close();
    }
    // Every index object is lost from the bucket.
    const bucket = s3Store(s3, 'lost-index');
    try {
      for await (const entry of bucket.list('index/')) await bucket.delete(entry.key);
    } finally {
      await bucket.close();
    }
    const later = teamService('lost-index');
    try {
      const plain = await later.verify();
      expect(plain.ok).toBe(false);
      expect(plain.damaged.length).toBeGreaterThan(10);
      expect(plain.repaired).toBeUndefined();
      const full = await later.verify({ full: true });
      expect(full).toMatchObject({ ok: true, damaged: [] });
      expect(full.repaired!.packsIndexed).toBeGreaterThan(4);
      expect(full.repaired!.objectsLost).toBe(0);
      expect((await later.verify()).ok).toBe(true);
      const dest = join(work.path, `lost-index-${++n}`);
      await later.pull('m', dest);
      expect(
        (await readFile(join(dest, 'w.bin'))).equals(Buffer.from(seededBytes(70, 1_500_000))),
      ).toBe(true);
    } finally {
      await later.close();
    }
  });
});

describe('rm and gc', () => {
  it('reclaim exactly the objects only the removed version used; the others still pull byte-identical', async () => {
    const service = teamService('gc');
    try {
      const shared = seededBytes(3, 900_000);
      const v1src = await folder('g1', {
        'shared.bin': shared,
        'only-v1.bin': seededBytes(4, 600_000),
      });
      const v2src = await folder('g2', {
        'shared.bin': shared,
        'only-v2.bin': seededBytes(5, 500_000),
      });
      await service.push({ model: 'g', paths: [v1src] });
      await service.push({ model: 'g', paths: [v2src] });
      const repo = await service.repository();
      const [v1, v2] = await repo.versions('g');
      const only = new Set((await reachable(repo, [v1!])).objects.keys());
      for (const h of (await reachable(repo, [v2!])).objects.keys()) only.delete(h);
      expect(only.size).toBeGreaterThan(3);

      expect(await service.remove('g@v1')).toMatchObject({
        model: 'g',
        removed: [{ version: 'v1' }],
      });
      expect((await service.log('g')).map((v) => v.label)).toEqual(['v2']);
      const dry = await service.gc({ dryRun: true, graceSeconds: 0 });
      expect(dry.sweptObjects).toBe(only.size);
      const result = await service.gc({ graceSeconds: 0 });
      expect(result).toMatchObject({ sweptObjects: only.size, liveVersions: 1 });
      const bucket = s3Store(s3, 'gc');
      const left = await bucket.hasMany([...only].map(objectKey));
      expect(left.every((x) => !x)).toBe(true);
      for (const h of only)
        expect(await redisClient.exists(cacheKey(repo.config.repositoryId, h))).toBe(0);
      await bucket.close();

      const dest = join(work.path, `gc-out-${++n}`);
      await service.pull('g@v2', dest);
      expect((await readFile(join(dest, 'shared.bin'))).equals(Buffer.from(shared))).toBe(true);
      expect((await service.verify()).ok).toBe(true);
      expect(await service.gc({ graceSeconds: 0 })).toMatchObject({
        sweptObjects: 0,
        unreachableObjects: 0,
      });
    } finally {
      await service.close();
    }
  });

  it("with a grace period, sweeps an unreachable object only on a run after it, never a running push's uploads", async () => {
    const service = teamService('gc-grace');
    try {
      // Small packs: the push below seals (and indexes) packs long before its version lands.
      await service.init({ packSize: 256 * 1024 });
      const src = await folder('gg', { 'w.bin': seededBytes(6, 2_000_000) });
      await service.push({ model: 'gg', paths: [src] });
      await service.remove('gg');
      const t0 = Date.now();
      const first = await service.gc({ graceSeconds: 3600 });
      expect(first.sweptObjects).toBe(0);
      expect(first.deferredObjects).toBeGreaterThan(0);
      // Indexed less than the grace period ago, they might be a running push's: a run two hours
      // on condemns them (the cache forgets them, pushes no longer rely on them); a run a grace
      // period after that sweeps them.
      const repo = await service.repository();
      const { gc } = await import('../../electron/engine/integrity/gc');
      const condemning = await gc(repo, { graceSeconds: 3600, now: t0 + 2 * 3600_000 });
      expect(condemning).toMatchObject({ sweptObjects: 0, deferredObjects: first.deferredObjects });
      const later = await gc(repo, { graceSeconds: 3600, now: t0 + 4 * 3600_000 });
      expect(later.sweptObjects).toBe(first.deferredObjects);

      // A push running while gc runs (from another workstation): the push's packs are indexed
      // as they fill, unreachable until its ref lands.
      s3.faults.latencyMs = 40;
      const big = await folder('gp', { 'x.bin': seededBytes(7, 16_000_000) });
      let done = false;
      const pushing = service.push({ model: 'gp', paths: [big] }).finally(() => (done = true));
      const other = teamService('gc-grace');
      const runs = [];
      try {
        while (!done) {
          await new Promise((r) => setTimeout(r, 20));
          const whilePushing = !done;
          runs.push({ ...(await other.gc({ graceSeconds: 3600 })), whilePushing });
        }
      } finally {
        await other.close();
      }
      const pushed = await pushing;
      s3.faults.latencyMs = 0;
      // At least one run saw the push's uploads, unreachable until its ref lands, and kept them.
      expect(runs.some((r) => r.whilePushing && r.unreachableObjects > 0)).toBe(true);
      expect(runs.every((r) => r.sweptObjects === 0)).toBe(true);
      expect(pushed.version).toBe('v1');
      expect((await service.verify({ selector: 'gp', full: true })).ok).toBe(true);
      const dest = join(work.path, `gp-out-${++n}`);
      await service.pull('gp', dest);
      expect(
        (await readFile(join(dest, 'x.bin'))).equals(Buffer.from(seededBytes(7, 16_000_000))),
      ).toBe(true);
    } finally {
      s3.faults.latencyMs = 0;
      await service.close();
    }
  });
});

describe('gc beside a push', () => {
  it('sweeps the condemned copies of objects a push is storing again, never the new copies: every version restores exactly', async () => {
    const service = teamService('gc-push');
    const other = teamService('gc-push'); // gc, from another workstation
    const pusher = teamService('gc-push');
    let release = () => {};
    try {
      await service.init({ packSize: 256 * 1024 });
      const shared = seededBytes(60, 1_000_000);
      const gone = seededBytes(61, 3_000_000);
      const kept = seededBytes(62, 1_000_000);
      await service.push({
        model: 'm',
        paths: [await folder('gb1', { 'a.bin': shared, 'b.bin': gone })],
      });
      await service.push({
        model: 'm',
        paths: [await folder('gb2', { 'a.bin': shared, 'c.bin': kept })],
      });
      await service.remove('m@v1');
      // b.bin's chunks are unreachable: a run two hours on condemns them (the cache forgets
      // them; a push from then on stores them again rather than rely on them).
      const repo = await other.repository();
      const { gc } = await import('../../electron/engine/integrity/gc');
      const t0 = Date.now();
      const condemning = await gc(repo, { graceSeconds: 3600, now: t0 + 2 * 3600_000 });
      expect(condemning.deferredObjects).toBeGreaterThan(10);
      expect(condemning.sweptObjects).toBe(0);

      // A push of b.bin again (a new process: `tv push`) has stored it anew, its packs indexed,
      // and waits to write its ref while gc, a grace period on, sweeps the condemned copies.
      const held = new Promise<void>((resolve) => {
        s3.faults.hold = {
          matches: (method, url) => method === 'PUT' && url.includes('/refs/'),
          until: new Promise<void>((r) => (release = r)),
          held: resolve,
        };
      });
      const pushing = pusher.push({
        model: 'm',
        paths: [await folder('gb3', { 'a.bin': shared, 'b.bin': gone })],
      });
      await held;
      const sweeping = await gc(repo, { graceSeconds: 3600, now: t0 + 4 * 3600_000 });
      expect(sweeping.sweptObjects).toBe(condemning.deferredObjects);
      release();
      const v3 = await pushing;
      expect(v3.newBytes).toBe(gone.length);
      // A run later still, once v3 names them: its copies are reachable, nothing is swept.
      const after = await gc(repo, { graceSeconds: 3600, now: t0 + 6 * 3600_000 });
      expect(after.sweptObjects).toBe(0);

      for (const [selector, files] of [
        ['m@v2', { 'a.bin': shared, 'c.bin': kept }],
        ['m@v3', { 'a.bin': shared, 'b.bin': gone }],
      ] as const) {
        const dest = join(work.path, `gc-push-${++n}`);
        await service.pull(selector, dest);
        for (const [name, data] of Object.entries(files))
          expect((await readFile(join(dest, name))).equals(Buffer.from(data))).toBe(true);
      }
      expect((await service.verify({ full: true })).ok).toBe(true);
    } finally {
      release();
      delete s3.faults.hold;
      await pusher.close();
      await other.close();
      await service.close();
    }
  });
});

describe('a workstation that has never seen the repository', () => {
  it('with Redis up, pushes chunks Redis knows without fetching any index object; with Redis flushed, the index answers and nothing is uploaded twice', async () => {
    const data = seededBytes(40, 3_000_000);
    const src = await folder('fresh', { 'w.bin': data });
    const first = teamService('fresh');
    try {
      await first.push({ model: 'a', paths: [src] });
    } finally {
      await first.close();
    }
    const workstation = async (fn: (s: Service) => Promise<void>) => {
      const cache = join(work.path, `cache-${++n}`);
      const service = new Service({
        repository: `s3://${s3.bucket}/fresh`,
        redisUrl: redis.url,
        s3: s3Options(s3),
        mode: 'cli',
        workers: 2,
        cacheDir: cache,
      });
      try {
        await fn(service);
      } finally {
        await service.close();
      }
      return cache;
    };
    // Every chunk of model b is one of model a's: Redis answers for all of them.
    const cache = await workstation(async (service) => {
      const pushed = await service.push({ model: 'b', paths: [src] });
      expect(pushed).toMatchObject({ newBytes: 0, newChunks: 0 });
      expect(pushed.requests.get).toBe(0);
    });
    const held = await readdir(join(cache, 'repositories')).catch(() => []);
    const copies =
      held.length > 0 ? await readdir(join(cache, 'repositories', held[0]!, 'index')) : [];
    expect(copies.length).toBeLessThanOrEqual(1); // its own index object, at most
    // Redis flushed: the index (fetched now) answers; no chunk is sent again (only the new
    // version's record, its index object and its ref).
    await redisClient.flushall();
    await workstation(async (service) => {
      const pushed = await service.push({ model: 'c', paths: [src] });
      expect(pushed.uploadedBytes).toBeLessThan(10_000);
      expect(pushed.requests.get).toBeGreaterThan(0);
    });
  });
});

describe('team safety', () => {
  it('four workstations pushing to one model at once: four versions, unique numbers, every chunk listed once and readable', async () => {
    const shared = seededBytes(8, 1_500_000);
    const sources = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        folder(`ws${i}`, { 'shared.bin': shared, [`own-${i}.bin`]: seededBytes(20 + i, 400_000) }),
      ),
    );
    const env = {
      ...process.env,
      TV_REPO: `s3://${s3.bucket}/team`,
      TV_REDIS_URL: redis.url,
      ...s3.awsEnv(),
    };
    // Create the repository first, as a team would, then push from four processes at once.
    const init = teamService('team');
    await init.init();
    await init.close();
    const results = await Promise.all(
      sources.map(
        (src) =>
          new Promise<{ code: number | null; out: string }>((resolve) => {
            const child = spawn(
              process.execPath,
              ['bin/tv.mjs', 'push', 'shared-model', src, '--json'],
              { env, stdio: ['ignore', 'pipe', 'pipe'] },
            );
            let out = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            child.once('close', (code) => resolve({ code, out }));
          }),
      ),
    );
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    const service = teamService('team');
    try {
      const log = await service.log('shared-model');
      expect(log.map((v) => v.label)).toEqual(['v1', 'v2', 'v3', 'v4']);
      expect(new Set(log.map((v) => v.id)).size).toBe(4);
      const repo = await service.repository();
      const sharedChunks = (
        await repo.readManifest(
          (await repo.resolve('shared-model@v1')).record.files.find((f) => f.path === 'shared.bin')!
            .manifest,
        )
      ).chunks;
      // Pushes at the same moment each pack what none of them had yet: a shared chunk may lie
      // in several packs; the index lists it once, and any copy serves.
      const keys: string[] = [];
      for await (const e of repo.stack.backend.list('objects/')) keys.push(e.key);
      for (const c of sharedChunks)
        expect(keys.filter((k) => k === objectKey(c.hash))).toHaveLength(1);
      expect((await service.verify({ full: true })).ok).toBe(true);
    } finally {
      await service.close();
    }
  });

  it('Redis flushed in the middle of a push, or between pushes, changes speed only, never correctness', async () => {
    const service = teamService('flush');
    try {
      s3.faults.latencyMs = 5;
      const data = seededBytes(30, 5_000_000);
      const src = await folder('fl', { 'm.bin': data });
      let flushed = false;
      await service.push({
        model: 'fl',
        paths: [src],
        onProgress: (p) => {
          if (!flushed && p.bytesHashed > 1_000_000) {
            flushed = true;
            void redisClient.flushall();
          }
        },
      });
      expect(flushed).toBe(true);
      await redisClient.flushall();
      // The same files again, on purpose: a version only with allowSame.
      const again = await service.push({ model: 'fl', paths: [src], allowSame: true });
      expect(again).toMatchObject({ version: 'v2', newBytes: 0 });
      expect((await service.verify({ full: true })).ok).toBe(true);
      const dest = join(work.path, `fl-out-${++n}`);
      await service.pull('fl@v2', dest);
      expect((await readFile(join(dest, 'm.bin'))).equals(Buffer.from(data))).toBe(true);
    } finally {
      s3.faults.latencyMs = 0;
      await service.close();
    }
  });
});
