import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROFILE } from '../../electron/engine/chunking/params';
import { cutPoints } from '../../electron/engine/chunking/stream';
import { Service } from '../../electron/engine/service';
import { DiskStore } from '../../electron/engine/storage/disk';
import { packsInFlight } from '../../electron/engine/storage/compose';
import type { BlobStore } from '../../electron/engine/storage/store';
import { seededBytes } from '../unit/prng';
import { packedStore, s3Options, s3Store, startServers, tempDir, type TestServers } from './stores';

/** Objects a reader of the repository finds: what its index names. */
async function objectsIn(blobs: BlobStore): Promise<Set<string>> {
  const store = packedStore(blobs);
  const found = new Set<string>();
  try {
    for await (const entry of store.list('objects/')) found.add(entry.key.slice(-64));
  } finally {
    await store.close();
  }
  return found;
}

/**
 * The objects of a bucket once the S3-protocol server has finished the requests a killed client
 * had already sent (their packs and indexes may still land after the kill): two listings 500 ms
 * apart that agree.
 */
async function settledObjects(blobs: BlobStore): Promise<Set<string>> {
  let before = await objectsIn(blobs);
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const after = await objectsIn(blobs);
    if (after.size === before.size) return after;
    before = after;
  }
}

/** Bytes of packs written so far, whether an index names them yet or not (temp files too). */
async function bytesWritten(repo: string): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else total += (await stat(path).catch(() => ({ size: 0 }))).size;
    }
  };
  await walk(join(repo, 'data'));
  return total;
}

const SIZE = 96 << 20;

function chunksOf(data: Uint8Array): string[] {
  return cutPoints(data, DEFAULT_PROFILE).map((end, i, all) =>
    createHash('sha256')
      .update(data.subarray(all[i - 1] ?? 0, end))
      .digest('hex'),
  );
}

describe('a push to a folder killed at any point (SIGKILL)', () => {
  let work: { path: string; remove(): Promise<void> };
  let src: string;
  let chunkHashes: string[];
  beforeAll(async () => {
    work = await tempDir('tv-crash-');
    src = join(work.path, 'src');
    await mkdir(src);
    const data = seededBytes(77, SIZE);
    await writeFile(join(src, 'weights.bin'), data);
    chunkHashes = chunksOf(data);
  });
  afterAll(() => work.remove());

  for (const [label, fraction] of [
    ['just after it started uploading', 0.002],
    ['a third of the way', 0.33],
    ['near the end', 0.9],
  ] as const) {
    it(`${label}: leaves no version, and the next push writes only what no index names`, async () => {
      const repo = join(work.path, `repo-${label.replace(/\W+/g, '-')}`);
      // Packs of 4 MiB: the push seals (and indexes) several before it is killed.
      const init = new Service({ repository: repo, redisUrl: undefined, mode: 'cli' });
      await init.init({ packSize: 4 << 20 });
      await init.close();
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
        const present = await objectsIn(new DiskStore(repo));
        const stillMissing = new Set(chunkHashes.filter((h) => !present.has(h)));
        const result = await service.push({ model: 'crash', paths: [src] });
        expect(result.version).toBe('v1');
        expect(result.newChunks).toBe(stillMissing.size);
        expect(result.newBytes + result.reusedBytes).toBe(result.logicalBytes);
        // The finished version names only objects that exist.
        const after = await objectsIn(new DiskStore(repo));
        expect(chunkHashes.every((h) => after.has(h))).toBe(true);
        expect((await service.verify({ full: true })).ok).toBe(true);
      } finally {
        await service.close();
      }
    });
  }
});

describe('a push to S3 killed with kill -9 and run again', () => {
  let servers: TestServers;
  beforeAll(async () => {
    servers = await startServers('tv-crash-s3-');
  });
  afterAll(() => servers?.stop());

  for (const redis of [true, false]) {
    it(`re-uploads only the packs that were in flight (${redis ? 'with' : 'without'} Redis)`, async () => {
      const { s3, work } = servers;
      const prefix = `resume-${redis ? 'cached' : 'plain'}`;
      const packSize = 1 << 20;
      const size = 24 << 20;
      const src = join(work.path, `${prefix}-src`);
      await mkdir(src);
      const data = seededBytes(redis ? 78 : 79, size);
      await writeFile(join(src, 'weights.bin'), data);
      const repository = `s3://${s3.bucket}/${prefix}`;
      const options = {
        repository,
        redisUrl: redis ? servers.redis.url : undefined,
        s3: s3Options(s3),
        mode: 'cli' as const,
        workers: 2,
      };
      const init = new Service(options);
      await init.init({ packSize });
      await init.close();

      // Slow requests, so that the push is killed with packs durable and packs in flight.
      s3.faults.latencyMs = 40;
      s3.resetCounts();
      const child = spawn(process.execPath, ['bin/tv.mjs', 'push', 'm', src], {
        env: {
          ...process.env,
          ...s3.awsEnv(),
          TV_REPO: repository,
          TV_REDIS_URL: redis ? servers.redis.url : '',
        },
        stdio: 'ignore',
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const bucket = s3Store(s3, prefix);
      try {
        for (;;) {
          let indexes = 0;
          for await (const _ of bucket.list('index/')) indexes++;
          if (indexes >= 6 || child.exitCode !== null) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        expect(child.exitCode, 'the push finished before it could be killed').toBeNull();
        child.kill('SIGKILL');
        await exited;
        s3.faults.latencyMs = 0;
        const durable = await settledObjects(bucket);
        const firstRun = s3.bytesIn.get('PUT') ?? 0;
        expect(durable.size).toBeGreaterThan(0);

        s3.resetCounts();
        const service = new Service(options);
        try {
          const result = await service.push({ model: 'm', paths: [src] });
          const secondRun = s3.bytesIn.get('PUT') ?? 0;
          // Nothing durable before the kill is uploaded again (with Redis, a chunk whose claim
          // the kill cut off is a cache miss the push stores: the index says it is there, so
          // nothing is sent, but the push counts it among its new chunks)...
          const chunks = chunksOf(data);
          const missing = new Set(chunks.filter((h) => !durable.has(h))).size;
          if (redis) expect(result.newChunks).toBeGreaterThanOrEqual(missing);
          else expect(result.newChunks).toBe(missing);
          // ...and what both runs sent beyond the data itself (and a little metadata) is at
          // most the packs that were in flight when the push was killed.
          const uploadedTwice = firstRun + secondRun - size;
          expect(uploadedTwice).toBeLessThanOrEqual(packsInFlight(packSize, true) * packSize * 1.1);
          expect(result.uploadedBytes).toBe(secondRun);
          const dest = join(work.path, `${prefix}-out`);
          await service.pull('m', dest);
          expect((await stat(join(dest, 'weights.bin'))).size).toBe(size);
          expect((await service.verify({ full: true })).ok).toBe(true);
        } finally {
          await service.close();
        }
      } finally {
        s3.faults.latencyMs = 0;
        child.kill('SIGKILL');
        await bucket.close();
      }
    });
  }
});
