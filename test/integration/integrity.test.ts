import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reachable } from '../../electron/engine/integrity/reachable';
import { Service } from '../../electron/engine/service';
import { objectKey, readAll } from '../../electron/engine/storage/store';
import { RedisServer } from '../harness/redis';
import { S3Server } from '../harness/s3';
import { seededBytes } from '../unit/prng';
import { cacheKey, s3Options, s3Store, startServers, type TestServers } from './stores';

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
  it('names a chunk deleted from the bucket and its version, removes the stale cache key, and passes once it is back', async () => {
    const service = teamService('verify');
    try {
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
      const bucket = s3Store(s3, 'verify');
      const saved = await readAll(bucket, objectKey(victim));
      await bucket.delete(objectKey(victim)); // behind the cache's back
      const namespace = repo.config.repositoryId;
      expect(await redisClient.exists(cacheKey(namespace, victim))).toBe(1);

      const bad = await service.verify();
      expect(bad.ok).toBe(false);
      expect(bad.damaged).toEqual([
        {
          hash: victim,
          kind: 'chunk',
          problem: 'missing',
          neededBy: [{ version: 'm v1', file: 'a.bin' }],
        },
      ]);
      expect(bad.damagedVersions).toEqual([
        { model: 'm', version: 'v1', id: v1.id, files: ['a.bin'] },
      ]);
      expect(bad.staleCacheKeysRemoved).toBe(1);
      expect(await redisClient.exists(cacheKey(namespace, victim))).toBe(0);

      await bucket.put(objectKey(victim), saved);
      const full = await service.verify({ full: true });
      expect(full).toMatchObject({ ok: true, full: true, damaged: [] });
      await bucket.close();
    } finally {
      await service.close();
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
      const src = await folder('gg', { 'w.bin': seededBytes(6, 2_000_000) });
      await service.push({ model: 'gg', paths: [src] });
      await service.remove('gg');
      const t0 = Date.now();
      const first = await service.gc({ graceSeconds: 3600 });
      expect(first.sweptObjects).toBe(0);
      expect(first.deferredObjects).toBeGreaterThan(0);
      // Two hours on, the objects were already unreachable at the previous run, and are old.
      const repo = await service.repository();
      const { gc } = await import('../../electron/engine/integrity/gc');
      const later = await gc(repo, { graceSeconds: 3600, now: t0 + 2 * 3600_000 });
      expect(later.sweptObjects).toBe(first.deferredObjects);

      // A push running while gc runs: its chunks are young and unreachable until its ref lands.
      s3.faults.latencyMs = 15;
      const big = await folder('gp', { 'x.bin': seededBytes(7, 6_000_000) });
      let done = false;
      const pushing = service.push({ model: 'gp', paths: [big] }).finally(() => (done = true));
      const runs = [];
      while (!done) {
        await new Promise((r) => setTimeout(r, 100));
        const run = await service.gc({ graceSeconds: 3600 });
        runs.push({ ...run, whilePushing: !done });
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
        (await readFile(join(dest, 'x.bin'))).equals(Buffer.from(seededBytes(7, 6_000_000))),
      ).toBe(true);
    } finally {
      s3.faults.latencyMs = 0;
      await service.close();
    }
  });
});

describe('team safety', () => {
  it('four workstations pushing to one model at once: four versions, unique numbers, shared chunks stored once', async () => {
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
