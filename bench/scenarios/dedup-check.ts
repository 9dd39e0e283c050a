import { createHash } from 'node:crypto';
import { CachedStore } from '../../electron/engine/storage/cached';
import { MemoryStore } from '../../electron/engine/storage/memory';
import { RedisConnection } from '../../electron/engine/storage/redis';
import { objectKey } from '../../electron/engine/storage/store';
import { RedisServer } from '../../test/harness/redis';
import { round, type BenchContext, type ScenarioResult } from '../report';

/**
 * Existence checks of chunks the cache already knows (a warm push): CachedStore.hasMany (MGET per
 * 1000 keys) against the seed's path, one awaited `has` per chunk, on the same keys in one run.
 */
export async function dedupCheck(ctx: BenchContext): Promise<ScenarioResult> {
  const n = ctx.quick ? 20_000 : 100_000;
  const server = await RedisServer.start();
  const connection = new RedisConnection(server.url);
  const redis = connection.client;
  const backend = new MemoryStore();
  const store = new CachedStore(backend, connection, { namespace: 'bench', startupMs: 5_000 });
  try {
    await connection.waitReady(5_000);
    const hashes = Array.from({ length: n }, (_, i) =>
      createHash('sha256').update(`chunk-${i}`).digest('hex'),
    );
    const keys = hashes.map(objectKey);
    for (let i = 0; i < n; i += 1000) {
      const pipeline = redis.pipeline();
      for (const h of hashes.slice(i, i + 1000)) pipeline.set(`tv:obj:bench:${h}`, '1', 'EX', 3600);
      await pipeline.exec();
    }
    ctx.log(`dedup-check: ${n} warm keys, batched then one has per key`);
    // Warm both paths up (JIT, connection) before timing either.
    await store.hasMany(keys.slice(0, 5_000));
    for (const key of keys.slice(0, 2_000)) await store.has(key);
    let started = performance.now();
    const found = await store.hasMany(keys);
    const batchPerSec = n / ((performance.now() - started) / 1000);
    if (found.some((f) => !f)) throw new Error('dedup-check: a warm key was reported missing');
    started = performance.now();
    for (const key of keys) await store.has(key);
    const perCallPerSec = n / ((performance.now() - started) / 1000);
    const ratio = batchPerSec / perCallPerSec;
    const health = store.health();
    if (health.fallbacks > 0)
      throw new Error(
        `dedup-check: ${health.fallbacks} Redis fallbacks: the figures are not of the cache`,
      );
    return {
      json: {
        dedupCheck: {
          batchPerSec: round(batchPerSec, 0),
          perCallPerSec: round(perCallPerSec, 0),
          ratio: round(ratio, 1),
          keys: n,
        },
      },
      rows: [
        {
          scenario: 'dedup-check',
          metric: 'hasMany keys/s',
          value: round(batchPerSec, 0).toString(),
          note: `${n} keys, MGET x1000`,
        },
        {
          scenario: 'dedup-check',
          metric: 'per-call has keys/s',
          value: round(perCallPerSec, 0).toString(),
          note: "the seed's path",
        },
        {
          scenario: 'dedup-check',
          metric: 'ratio',
          value: round(ratio, 1).toString(),
          note: 'target >= 40',
        },
      ],
    };
  } finally {
    await store.close();
    await server.dispose();
  }
}
