import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { mapLimit } from '../../electron/engine/concurrency';
import { CachedStore } from '../../electron/engine/storage/cached';
import { MemoryStore } from '../../electron/engine/storage/memory';
import { RedisConnection } from '../../electron/engine/storage/redis';
import { objectKey } from '../../electron/engine/storage/store';
import { RedisCluster, RedisServer } from '../../test/harness/redis';
import { round, type BenchContext, type Row, type ScenarioResult } from '../report';

const ROUNDS = 5;
const IN_FLIGHT = 8;

/** The documented cache key (docs/format.md, "The Redis cache"). */
const cacheKey = (hash: string) => `tv:obj:{bench:${hash.slice(0, 2)}}:${hash}`;

interface Measured {
  hasManyPerSec: number;
  rawPerSec: number;
  ratio: number;
}

/**
 * Existence checks of chunks the cache already knows (a warm push), on one redis-server and on a
 * 3-master Redis Cluster: CachedStore.hasMany against a raw ioredis loop over the same keys on the
 * same Redis (one server: MGETs of 1,000 keys, 8 in flight; cluster: an MGET per slot, 8 in
 * flight), in alternating rounds, medians of 5. On one server also the seed's path, one awaited
 * `has` per chunk.
 */
export async function dedupCheck(ctx: BenchContext): Promise<ScenarioResult> {
  const n = ctx.quick ? 20_000 : 100_000;
  const hashes = Array.from({ length: n }, (_, i) =>
    createHash('sha256').update(`chunk-${i}`).digest('hex'),
  );
  ctx.log(`dedup-check: ${n} warm keys on one server`);
  const server = await RedisServer.start();
  let single: Measured & { perCallPerSec: number };
  try {
    single = await onServer(server.url, hashes, ctx);
  } finally {
    await server.dispose();
  }
  ctx.log(`dedup-check: ${n} warm keys on a 3-master cluster`);
  const cluster = await RedisCluster.start();
  let clustered: Measured;
  try {
    clustered = await onCluster(cluster, hashes);
  } finally {
    await cluster.dispose();
  }
  const rows: Row[] = [
    {
      scenario: 'dedup-check',
      metric: 'hasMany keys/s, one server',
      value: round(single.hasManyPerSec, 0).toString(),
      note: `${n} keys, MGET x1000`,
    },
    {
      scenario: 'dedup-check',
      metric: 'raw MGET loop keys/s, one server',
      value: round(single.rawPerSec, 0).toString(),
      note: `1000 keys a call, ${IN_FLIGHT} in flight`,
    },
    {
      scenario: 'dedup-check',
      metric: 'hasMany / raw, one server',
      value: round(single.ratio, 2).toString(),
      note: `median of ${ROUNDS} rounds (target >= 0.6)`,
    },
    {
      scenario: 'dedup-check',
      metric: 'hasMany / per-call has',
      value: round(single.hasManyPerSec / single.perCallPerSec, 1).toString(),
      note: `per-call ${round(single.perCallPerSec, 0)} keys/s (the seed's path; target >= 40)`,
    },
    {
      scenario: 'dedup-check',
      metric: 'hasMany keys/s, cluster',
      value: round(clustered.hasManyPerSec, 0).toString(),
      note: '3 masters, an MGET per slot, sent together per master',
    },
    {
      scenario: 'dedup-check',
      metric: 'raw per-slot MGET keys/s, cluster',
      value: round(clustered.rawPerSec, 0).toString(),
      note: `${IN_FLIGHT} in flight`,
    },
    {
      scenario: 'dedup-check',
      metric: 'hasMany / raw, cluster',
      value: round(clustered.ratio, 2).toString(),
      note: `median of ${ROUNDS} rounds (target >= 0.5)`,
    },
  ];
  return {
    json: {
      dedupCheck: {
        keys: n,
        batchPerSec: round(single.hasManyPerSec, 0),
        perCallPerSec: round(single.perCallPerSec, 0),
        ratio: round(single.hasManyPerSec / single.perCallPerSec, 1),
        rawMgetPerSec: round(single.rawPerSec, 0),
        vsRaw: round(single.ratio, 2),
        cluster: {
          batchPerSec: round(clustered.hasManyPerSec, 0),
          rawPerSlotPerSec: round(clustered.rawPerSec, 0),
          vsRaw: round(clustered.ratio, 2),
        },
      },
    },
    rows,
  };
}

async function onServer(
  url: string,
  hashes: string[],
  ctx: BenchContext,
): Promise<Measured & { perCallPerSec: number }> {
  const store = new CachedStore(new MemoryStore(), new RedisConnection(url), {
    namespace: 'bench',
    startupMs: 5_000,
  });
  const raw = new Redis(url);
  try {
    await warm(raw, hashes);
    // The raw loop's keys are built before it is timed: it measures Redis and ioredis alone.
    const batches: string[][] = [];
    for (let i = 0; i < hashes.length; i += 1000)
      batches.push(hashes.slice(i, i + 1000).map(cacheKey));
    const rawLoop = async () => {
      const replies = await mapLimit(batches, IN_FLIGHT, (keys) => raw.mget(keys));
      if (replies.flat().some((v) => v !== '1')) throw new Error('dedup-check: a key is missing');
    };
    const measured = await alternate(store, hashes, rawLoop);
    ctx.log("dedup-check: the seed's path (one has per key)");
    const keys = hashes.slice(0, Math.min(hashes.length, 20_000)).map(objectKey);
    const started = performance.now();
    for (const key of keys) await store.has(key);
    const perCallPerSec = keys.length / ((performance.now() - started) / 1000);
    return { ...measured, perCallPerSec };
  } finally {
    raw.disconnect();
    await store.close();
  }
}

async function onCluster(cluster: RedisCluster, hashes: string[]): Promise<Measured> {
  const store = new CachedStore(new MemoryStore(), new RedisConnection(cluster.url), {
    namespace: 'bench',
    startupMs: 5_000,
  });
  const raw = new Cluster(cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })));
  try {
    await warm(raw, hashes);
    // The keys of each slot, in MGETs of up to 1,000, built before the loop is timed.
    const bySlot = new Map<number, string[]>();
    for (const hash of hashes) {
      const key = cacheKey(hash);
      const slot = calculateSlot(key);
      const list = bySlot.get(slot);
      if (list) list.push(key);
      else bySlot.set(slot, [key]);
    }
    const batches: string[][] = [];
    for (const keys of bySlot.values())
      for (let i = 0; i < keys.length; i += 1000) batches.push(keys.slice(i, i + 1000));
    const rawLoop = async () => {
      const replies = await mapLimit(batches, IN_FLIGHT, (keys) => raw.mget(keys));
      if (replies.flat().some((v) => v !== '1')) throw new Error('dedup-check: a key is missing');
    };
    return await alternate(store, hashes, rawLoop);
  } finally {
    raw.disconnect();
    await store.close();
  }
}

/** Writes every key, in the documented layout, through a client of its own. */
async function warm(client: Redis | Cluster, hashes: string[]): Promise<void> {
  await mapLimit(
    Array.from({ length: Math.ceil(hashes.length / 1000) }, (_, i) => i * 1000),
    4,
    async (start) => {
      await Promise.all(
        hashes.slice(start, start + 1000).map((h) => client.set(cacheKey(h), '1', 'EX', 3600)),
      );
    },
  );
}

/** hasMany and the raw loop in alternating rounds after a warm-up of each: medians of keys/s. */
async function alternate(
  store: CachedStore,
  hashes: string[],
  rawLoop: () => Promise<void>,
): Promise<Measured> {
  const keys = hashes.map(objectKey);
  const hasMany = async () => {
    const found = await store.hasMany(keys);
    if (found.some((f) => !f)) throw new Error('dedup-check: a warm key was reported missing');
  };
  await hasMany();
  await rawLoop();
  const ours: number[] = [];
  const theirs: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const a = await rate(hashes.length, hasMany);
    const b = await rate(hashes.length, rawLoop);
    ours.push(a);
    theirs.push(b);
    ratios.push(a / b);
  }
  if (store.health().fallbacks > 0)
    throw new Error(
      `dedup-check: ${store.health().fallbacks} Redis fallbacks: the figures are not of the cache`,
    );
  return { hasManyPerSec: median(ours), rawPerSec: median(theirs), ratio: median(ratios) };
}

async function rate(n: number, fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  return n / ((performance.now() - started) / 1000);
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
