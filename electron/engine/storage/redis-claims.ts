import type { Redis } from 'ioredis';

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

/**
 * What the Redis cache holds for one repository, and every command on it: the one place that
 * knows the key layout.
 *
 * - `tv:obj:<repository id>:<hash>` = "1" with a TTL: the repository's backend holds the object
 *   (ADR-012). The repository id in the key keeps repositories sharing one Redis apart.
 * - `tv:stats:<repository id>`: a hash of CacheTotals counters plus `since` (when they started),
 *   which every client adds its own counts to, a few at a time.
 *
 * Each method is one round trip (one command or one pipeline): the caller batches and guards.
 */
export class RedisClaims {
  constructor(
    private readonly redis: Redis,
    readonly namespace: string,
    private readonly ttlSeconds: number,
  ) {}

  private key(hash: string): string {
    return `tv:obj:${this.namespace}:${hash}`;
  }

  private get prefix(): string {
    return `tv:obj:${this.namespace}:`;
  }

  private get statsKey(): string {
    return `tv:stats:${this.namespace}`;
  }

  /** Which of these objects the cache claims (one MGET). */
  async get(hashes: readonly string[]): Promise<boolean[]> {
    const values = await this.redis.mget(hashes.map((h) => this.key(h)));
    return values.map((v) => v === '1');
  }

  /** Claims these objects, each for the TTL (one pipeline); how many keys were written. */
  async set(hashes: readonly string[]): Promise<number> {
    const pipeline = this.redis.pipeline();
    for (const hash of hashes) pipeline.set(this.key(hash), '1', 'EX', this.ttlSeconds);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    return results.length;
  }

  /** Removes these claims (one DEL). */
  async delete(hashes: readonly string[]): Promise<void> {
    await this.redis.del(...hashes.map((h) => this.key(h)));
  }

  /** One page of a SCAN of this repository's keys: the cursor to go on with, and their hashes. */
  async scan(cursor: string): Promise<{ cursor: string; hashes: string[] }> {
    const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000);
    return { cursor: next, hashes: keys.map((k) => k.slice(this.prefix.length)) };
  }

  /**
   * One page of a SCAN of every key, for sampling: how many keys it saw and how many were this
   * repository's (SCAN walks the keyspace in hash order, so a few pages are a fair sample).
   */
  async sample(cursor: string): Promise<{ cursor: string; seen: number; own: string[] }> {
    const [next, keys] = await this.redis.scan(cursor, 'COUNT', 1000);
    const own = keys.filter((k) => k.startsWith(this.prefix));
    return { cursor: next, seen: keys.length, own: own.map((k) => k.slice(this.prefix.length)) };
  }

  /** Keys in the whole database. */
  size(): Promise<number> {
    return this.redis.dbsize();
  }

  /** Memory Redis uses for one of this repository's keys, in bytes (undefined when it has none). */
  async keyBytes(hash: string): Promise<number | undefined> {
    const bytes = (await this.redis.call('MEMORY', 'USAGE', this.key(hash))) as number | null;
    return bytes ?? undefined;
  }

  /** What Redis says about its memory: used, the limit and its policy, keys evicted so far. */
  async memory(): Promise<RedisMemory> {
    const text = `${await this.redis.info('memory')}\n${await this.redis.info('stats')}`;
    const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim();
    const max = Number(field('maxmemory') ?? 0);
    return {
      usedBytes: Number(field('used_memory') ?? 0),
      maxBytes: max > 0 ? max : null,
      policy: field('maxmemory_policy') ?? 'unknown',
      evictedKeys: Number(field('evicted_keys') ?? 0),
    };
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
