import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import type { RedisConnection } from './redis';

/** Counters every client of a repository adds to in Redis (see RedisClaims.addTotals). */
export interface CacheTotals {
  /** Existence checks the cache answered "stored" (no backend call). */
  hits: number;
  /** Existence checks the cache did not answer (asked the backend). */
  misses: number;
  /** Misses the backend held, whose keys were written back. */
  backfills: number;
  /** Keys written after an upload (write-through). */
  uploads: number;
  /** Checks and writes that went to the backend because Redis did not answer. */
  fallbacks: number;
}

export interface RedisMemory {
  usedBytes: number;
  /** maxmemory; null when Redis has no limit. */
  maxBytes: number | null;
  /** maxmemory-policy: what Redis does at the limit (noeviction, allkeys-lru, ...). */
  policy: string;
  /** Keys Redis evicted since it started (each one a cache entry lost). */
  evictedKeys: number;
}

export const NO_TOTALS: CacheTotals = {
  hits: 0,
  misses: 0,
  backfills: 0,
  uploads: 0,
  fallbacks: 0,
};

/** Buckets of a repository's keys: the first byte of the object hash (two hex characters). */
export const BUCKETS = 256;

/**
 * Cache keys made when a round trip needs them: the key at an index and its bucket. A batch builds
 * its keys just before it is sent and drops them with the reply, so a check of 100,000 objects
 * never holds 100,000 key strings at once (their allocation and collection cost more CPU than
 * the MGETs did).
 */
export interface CacheKeyList {
  readonly length: number;
  /** The bucket (hash slot group) of the key at index i. */
  bucket(i: number): number;
  key(i: number): string;
}

/**
 * Keys to ask one master about in one round trip: indexes into the caller's CacheKeyList, one
 * list per hash slot on a cluster; on one server a run of the list (`start`, `size`).
 */
export interface KeyBatch {
  /** The master that serves these slots (host:port; the server itself when not a cluster). */
  address: string;
  /** On one server: where the run starts in the list. */
  start: number;
  /** On a cluster: the indexes of each slot's keys. */
  groups: number[][];
  /** How many keys the batch holds. */
  size: number;
}

/**
 * What the Redis cache holds for one repository, and every command on it: the one place that
 * knows the key layout, the same on one server and on a Redis Cluster.
 *
 * - `tv:obj:{<repository id>:<2 hex>}:<hash>` = "1" with a TTL: the repository's backend holds the
 *   object (ADR-012). The repository id keeps repositories sharing one Redis apart. The braces are
 *   a hash tag: on a cluster a key's slot comes from `<repository id>:<2 hex>` alone, the first
 *   byte of the hash, so a repository's keys fall in 256 slots (spread over the masters) and a
 *   batch needs one MGET per slot, not one per key.
 * - `tv:stats:<repository id>`: a hash of CacheTotals counters plus `since` (when they started),
 *   which every client adds its own counts to, a few at a time.
 *
 * Each method is one round trip to one master (one command or one pipeline): the caller batches
 * (see `batches`) and guards each master's round trips.
 */
export class RedisClaims {
  /** Per bucket: the keys' common start, and the bucket's hash slot. */
  private readonly prefixes: string[] = [];
  private readonly bucketSlots: number[] = [];
  private readonly cluster: Cluster | undefined;

  constructor(
    private readonly connection: RedisConnection,
    readonly namespace: string,
    private readonly ttlSeconds: number,
  ) {
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      const tag = `${namespace}:${bucket.toString(16).padStart(2, '0')}`;
      this.prefixes.push(`tv:obj:{${tag}}:`);
      this.bucketSlots.push(calculateSlot(tag));
    }
    this.cluster = connection.client instanceof Cluster ? connection.client : undefined;
  }

  private get redis(): Redis | Cluster {
    return this.connection.client;
  }

  /** The cache key of an object hash. */
  key(hash: string): string {
    return (this.prefixes[bucketOf(hash)] as string) + hash;
  }

  /** These object hashes' cache keys, made on demand. */
  keysOfHashes(hashes: readonly string[]): CacheKeyList {
    const prefixes = this.prefixes;
    return {
      length: hashes.length,
      bucket: (i) => bucketOf(hashes[i] as string),
      key: (i) => {
        const hash = hashes[i] as string;
        return (prefixes[bucketOf(hash)] as string) + hash;
      },
    };
  }

  /**
   * The cache keys of those of these store keys that name a content-addressed object
   * (`objects/<2 hex>/<hash>`), made on demand, and where each is in `objectKeys` (`at`). One
   * regular expression per key: the cheapest check measured.
   */
  keysOfObjects(objectKeys: readonly string[]): { keys: CacheKeyList; at: Int32Array } {
    const at = new Int32Array(objectKeys.length);
    const buckets = new Uint8Array(objectKeys.length);
    let n = 0;
    for (let i = 0; i < objectKeys.length; i++) {
      const key = objectKeys[i] as string;
      if (!OBJECT_KEY.test(key)) continue;
      buckets[n] = (hexValue(key.charCodeAt(8)) << 4) | hexValue(key.charCodeAt(9));
      at[n++] = i;
    }
    const prefixes = this.prefixes;
    return {
      at: at.subarray(0, n),
      keys: {
        length: n,
        bucket: (j) => buckets[j] as number,
        key: (j) =>
          (prefixes[buckets[j] as number] as string) +
          (objectKeys[at[j] as number] as string).slice(11),
      },
    };
  }

  /** SCAN's pattern for this repository's keys (every bucket). */
  private get pattern(): string {
    return `tv:obj:{${this.namespace}:*`;
  }

  private get statsKey(): string {
    return `tv:stats:${this.namespace}`;
  }

  /** The master that serves the shared totals. */
  get statsAddress(): string | undefined {
    return this.connection.masterOf(calculateSlot(this.statsKey));
  }

  /** The master that serves an object's key. */
  addressOf(hash: string): string | undefined {
    return this.connection.masterOf(this.bucketSlots[bucketOf(hash)] as number);
  }

  /**
   * These cache keys grouped for round trips of at most `maxKeys` keys: on one server, runs of
   * the list in its order; on a cluster, per master, its keys per slot (one MGET each). Keys whose
   * master is not known yet (no slot map) are left out: the caller asks the backend about them.
   */
  batches(keys: CacheKeyList, maxKeys: number): KeyBatch[] {
    if (!this.cluster) {
      const out: KeyBatch[] = [];
      for (let start = 0; start < keys.length; start += maxKeys) {
        const size = Math.min(keys.length - start, maxKeys);
        out.push({ address: this.connection.address, start, groups: [], size });
      }
      return out;
    }
    const byBucket: number[][] = [];
    for (let i = 0; i < keys.length; i++) (byBucket[keys.bucket(i)] ??= []).push(i);
    const open = new Map<string, KeyBatch>();
    const out: KeyBatch[] = [];
    byBucket.forEach((group, bucket) => {
      const address = this.connection.masterOf(this.bucketSlots[bucket] as number);
      if (!address) return;
      let batch = open.get(address);
      if (!batch || batch.size + group.length > maxKeys) {
        batch = { address, start: 0, groups: [], size: 0 };
        open.set(address, batch);
        out.push(batch);
      }
      batch.groups.push(group);
      batch.size += group.length;
    });
    return out;
  }

  /**
   * Which objects of one batch the cache claims: one MGET per group (per slot on a cluster), all
   * to the batch's master. Writes each answer at its key's index in `into`.
   */
  async get(batch: KeyBatch, keys: CacheKeyList, into: (boolean | undefined)[]): Promise<void> {
    if (!this.cluster) {
      const values = await this.redis.mget(this.run(batch, keys));
      for (let k = 0; k < batch.size; k++) into[batch.start + k] = values[k] === '1';
      return;
    }
    // On a cluster: the slots' MGETs, sent together to the batch's master, each followed by the
    // client wherever a redirect (MOVED, ASK) sends it. As one ioredis pipeline they cost more
    // client CPU (0.23x a raw per-slot loop's keys per CPU second, against 0.33x): it checks the
    // slot of every key of a pipeline again.
    const replies = await Promise.all(
      this.keyLists(batch, keys).map((list) => this.redis.mget(list)),
    );
    batch.groups.forEach((group, g) => {
      const values = replies[g] as (string | null)[];
      for (let k = 0; k < group.length; k++) into[group[k] as number] = values[k] === '1';
    });
  }

  /** Claims the objects of one batch, each for the TTL (one pipeline); how many keys were written. */
  async set(batch: KeyBatch, keys: CacheKeyList): Promise<number> {
    const batchKeys = this.keyLists(batch, keys).flat();
    const pipeline = this.redis.pipeline();
    for (const key of batchKeys) pipeline.set(key, '1', 'EX', this.ttlSeconds);
    await this.settle(
      pipeline.exec(),
      batchKeys.map((k) => [k]),
      ([key]) => this.redis.set(key as string, '1', 'EX', this.ttlSeconds),
    );
    return batchKeys.length;
  }

  /** Calls `fn` with the index (in the caller's list) of each key of a batch. */
  forEachIndex(batch: KeyBatch, fn: (index: number) => void): void {
    if (!this.cluster) for (let k = 0; k < batch.size; k++) fn(batch.start + k);
    else for (const group of batch.groups) for (const index of group) fn(index);
  }

  /** A batch's keys, one list per group (the run, on one server). */
  private keyLists(batch: KeyBatch, keys: CacheKeyList): string[][] {
    if (!this.cluster) return [this.run(batch, keys)];
    return batch.groups.map((group) => group.map((i) => keys.key(i)));
  }

  /** The keys of a run of the list (a batch on one server). */
  private run(batch: KeyBatch, keys: CacheKeyList): string[] {
    const list = new Array<string>(batch.size);
    for (let k = 0; k < batch.size; k++) list[k] = keys.key(batch.start + k);
    return list;
  }

  /** Removes the claims of one batch (one DEL per slot, in one pipeline). */
  async delete(batch: KeyBatch, keys: CacheKeyList): Promise<void> {
    const keyLists = this.keyLists(batch, keys);
    const pipeline = this.redis.pipeline();
    for (const keys of keyLists) pipeline.del(...keys);
    await this.settle(pipeline.exec(), keyLists, (keys) => this.redis.del(...keys));
  }

  /**
   * The replies of a pipeline, one per command; a command the cluster redirected (its slot moved:
   * MOVED, ASK, TRYAGAIN, or a pipeline refused because its slots no longer share a master) is
   * sent again on its own, and the client follows the redirect. Any other error is thrown.
   */
  private async settle<T, A>(
    exec: Promise<[Error | null, unknown][] | null>,
    args: A[],
    again: (args: A) => Promise<T>,
  ): Promise<T[]> {
    let results: [Error | null, unknown][];
    try {
      results = (await exec) ?? [];
    } catch (err) {
      if (!this.cluster || !isRedirect(err)) throw err;
      return Promise.all(args.map(again));
    }
    return Promise.all(
      results.map(([err, value], i) => {
        if (!err) return value as T;
        if (this.cluster && isRedirect(err)) return again(args[i] as A);
        throw err;
      }),
    );
  }

  /** One page of a SCAN of this repository's keys on one master: the cursor to go on with, and their hashes. */
  async scan(address: string, cursor: string): Promise<{ cursor: string; hashes: string[] }> {
    const [next, keys] = await this.node(address).scan(
      cursor,
      'MATCH',
      this.pattern,
      'COUNT',
      1000,
    );
    return { cursor: next, hashes: keys.map(hashOfCacheKey) };
  }

  /**
   * One page of a SCAN of every key of one master, for sampling: how many keys it saw and how
   * many were this repository's (SCAN walks the keyspace in hash order, so a few pages are a fair
   * sample).
   */
  async sample(
    address: string,
    cursor: string,
  ): Promise<{ cursor: string; seen: number; own: string[] }> {
    const [next, keys] = await this.node(address).scan(cursor, 'COUNT', 1000);
    const start = `tv:obj:{${this.namespace}:`;
    const own = keys.filter((k) => k.startsWith(start));
    return { cursor: next, seen: keys.length, own: own.map(hashOfCacheKey) };
  }

  /** Keys in the database of one master. */
  size(address: string): Promise<number> {
    return this.node(address).dbsize();
  }

  /** Memory Redis uses for one of this repository's keys, in bytes (undefined when it has none). */
  async keyBytes(hash: string): Promise<number | undefined> {
    const node = this.node(this.addressOf(hash) ?? '');
    const bytes = (await node.call('MEMORY', 'USAGE', this.key(hash))) as number | null;
    return bytes ?? undefined;
  }

  /** What one master says about its memory: used, the limit and its policy, keys evicted so far. */
  async memory(address: string): Promise<RedisMemory> {
    const node = this.node(address);
    const text = `${await node.info('memory')}\n${await node.info('stats')}`;
    const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim();
    const max = Number(field('maxmemory') ?? 0);
    return {
      usedBytes: Number(field('used_memory') ?? 0),
      maxBytes: max > 0 ? max : null,
      policy: field('maxmemory_policy') ?? 'unknown',
      evictedKeys: Number(field('evicted_keys') ?? 0),
    };
  }

  /** The direct connection to one master; throws (as a failed command) when there is none. */
  private node(address: string): Redis {
    const node = this.connection.node(address);
    if (!node) throw new Error('Connection is closed.');
    return node;
  }

  /** Adds this client's counts to the shared totals (one pipeline). */
  async addTotals(delta: CacheTotals): Promise<void> {
    const pipeline = this.redis.pipeline();
    pipeline.hsetnx(this.statsKey, 'since', new Date().toISOString());
    for (const [field, n] of Object.entries(delta))
      if (n > 0) pipeline.hincrby(this.statsKey, field, n);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
  }

  /** The shared totals and since when they count; null when no client has added any. */
  async totals(): Promise<(CacheTotals & { since: string }) | null> {
    const fields = await this.redis.hgetall(this.statsKey);
    if (!fields['since']) return null;
    const n = (name: keyof CacheTotals) => Number(fields[name] ?? 0);
    return {
      hits: n('hits'),
      misses: n('misses'),
      backfills: n('backfills'),
      uploads: n('uploads'),
      fallbacks: n('fallbacks'),
      since: fields['since'],
    };
  }
}

/** A store key of an object: objects/<first two hex>/<64 lowercase hex>. */
const OBJECT_KEY = /^objects\/([0-9a-f]{2})\/\1[0-9a-f]{62}$/;

/** The bucket of an object hash: its first byte, from two lowercase hex characters. */
export function bucketOf(hash: string): number {
  return (hexValue(hash.charCodeAt(0)) << 4) | hexValue(hash.charCodeAt(1));
}

const hexValue = (code: number) => (code <= 57 ? code - 48 : code - 87);

/** The object hash at the end of a cache key. */
const hashOfCacheKey = (key: string) => key.slice(key.lastIndexOf(':') + 1);

/** A reply that means "ask again, maybe elsewhere": the client follows it when sent alone. */
function isRedirect(err: unknown): boolean {
  const message = (err as Error | undefined)?.message ?? '';
  return /^(MOVED|ASK|TRYAGAIN)\b|same slots allocation group|should belong to the same slot/.test(
    message,
  );
}
