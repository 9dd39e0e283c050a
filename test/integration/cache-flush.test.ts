import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Service } from '../../electron/engine/service';
import { RedisServer } from '../harness/redis';
import { S3Server } from '../harness/s3';
import { seededBytes } from '../unit/prng';
import { s3Options, startServers, type TestServers } from './stores';

let servers: TestServers;
let redis: RedisServer;
let s3: S3Server;
let work: TestServers['work'];
beforeAll(async () => {
  servers = await startServers('tv-cache-flush-');
  ({ redis, s3, work } = servers);
});
afterAll(() => servers?.stop());

let n = 0;
async function folder(seed: number): Promise<string> {
  const dir = join(work.path, `src-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'weights.bin'), seededBytes(seed, 3_000_000));
  return dir;
}

/** A client of the team repository, as a fresh `tv` process would be. */
const client = (prefix: string) =>
  new Service({
    repository: `s3://${s3.bucket}/${prefix}`,
    redisUrl: redis.url,
    s3: s3Options(s3),
    mode: 'cli',
    workers: 2,
  });

/**
 * v1, then a v2 of other bytes (so v1's chunks are not the parent's), then Redis loses its keys:
 * pushing v1's bytes again must find every chunk in the bucket, not upload it again.
 */
async function pushTwoVersions(prefix: string): Promise<{ v1: string; chunks: number }> {
  const [v1, v2] = await Promise.all([folder(1), folder(2)]);
  const service = client(prefix);
  try {
    const first = await service.push({ model: 'm', paths: [v1] });
    await service.push({ model: 'm', paths: [v2] });
    return { v1, chunks: first.chunks };
  } finally {
    await service.close();
  }
}

describe('after Redis loses its keys, a push asks the bucket about the misses (ADR-012)', () => {
  for (const how of ['flushed', 'restarted empty'] as const) {
    it(`${how}: chunks the bucket holds are found with batched HEADs, none uploaded, and the keys are written back`, async () => {
      const prefix = `lost-${how.replace(' ', '-')}`;
      const { v1, chunks } = await pushTwoVersions(prefix);
      if (how === 'flushed') {
        const admin = new Redis(redis.url);
        await admin.flushall();
        admin.disconnect();
      } else {
        await redis.kill();
        await redis.restart();
      }
      const service = client(prefix);
      try {
        s3.resetCounts();
        const again = await service.push({ model: 'm', paths: [v1] });
        expect(again).toMatchObject({ version: 'v3', newChunks: 0, newBytes: 0 });
        expect(again.reusedBytes).toBe(again.logicalBytes);
        // One per chunk, and the bucket's when the repository opens.
        expect(s3.count('HEAD')).toBe(chunks + 1);
        // The version's manifest (the cache no longer knows v1's), its record and its ref.
        expect(s3.count('PUT')).toBe(3);
        await (await service.repository()).stack.cache?.idle();
        // The keys are back: a push of the same bytes as a new model asks S3 about no chunk.
        s3.resetCounts();
        const other = await service.push({ model: 'copy', paths: [v1] });
        expect(other).toMatchObject({ newChunks: 0, newBytes: 0 });
        expect(s3.count('HEAD')).toBe(0);
        expect((await service.verify({ full: true })).ok).toBe(true);
      } finally {
        await service.close();
      }
    });
  }
});
