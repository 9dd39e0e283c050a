import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import { mapLimit } from '../concurrency';
import { silentLogger, type Logger } from '../log';
import { hashOfKey, StoreError, type ListEntry, type PutOptions, type Store } from './store';

export type CacheState = 'up' | 'degraded' | 'down' | 'disabled';

export interface CacheHealth {
  state: CacheState;
  /** Round-trip time of recent Redis commands, in milliseconds. */
  latencyMs: { p50: number; p99: number } | null;
  /** Recent latencies, oldest first (for a sparkline). */
  recentLatencyMs: number[];
  hits: number;
  misses: number;
  backfills: number;
  /** Operations answered by the backend because Redis was unavailable. */
  fallbacks: number;
  /** Backend calls the cache made unnecessary (existence checks and uploads skipped). */
  backendCallsAvoided: number;
  errors: number;
  lastError: string | null;
  /** When the state last changed (ISO 8601). */
  since: string;
}

export interface CachedStoreOptions {
  /** The repository id: keys are bound to it, so one Redis serves many repositories safely. */
  namespace: string;
  /** Lifetime of an existence key (default 30 days). */
  ttlSeconds?: number;
  /** Keys per MGET (default 1000). */
  batchSize?: number;
  /** How often to probe Redis while the circuit is open (default 1 s). */
  probeIntervalMs?: number;
  /** How long the state stays "degraded" once Redis answers again after a failure (default 30 s). */
  degradedWindowMs?: number;
  logger?: Logger;
}

const NO_ANSWER = Symbol('no answer from Redis');
const LATENCY_SAMPLES = 256;

/**
 * ADR-012: a Store that wraps any Store with a Redis existence cache. It caches only
 * content-addressed objects (immutable), as `tv:obj:<repository id>:<hash>` = "1" with a TTL.
 *
 * - has: a Redis hit answers with no backend call; a miss asks the backend and, if found,
 *   backfills Redis without making the caller wait.
 * - put: skipped when Redis says the object exists; otherwise uploaded, then the key is written
 *   (write-through), never before the backend confirmed.
 * - hasMany: one MGET per batch, the misses to the backend together, backfills in one pipeline.
 * - get, list go to the backend; delete removes the key first and refuses when it cannot.
 * - Redis unreachable, slow or failing never fails a read or a write: the first failure opens a
 *   circuit breaker (later calls skip Redis at once, answered by the backend), a warning is
 *   logged once, and a background probe closes the circuit when Redis answers again.
 */
export class CachedStore extends EventEmitter implements Store {
  private readonly ttl: number;
  private readonly batchSize: number;
  private readonly logger: Logger;
  private readonly degradedWindowMs: number;
  private circuitOpen = false;
  /** When the circuit last closed again: "degraded" lasts a window from here. */
  private recoveredAt = 0;
  private stateSince = new Date();
  private reportedState: CacheState = 'up';
  private readonly probeTimer: NodeJS.Timeout;
  private recoveryTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly latencies: number[] = [];
  private readonly counters = {
    hits: 0,
    misses: 0,
    backfills: 0,
    fallbacks: 0,
    backendCallsAvoided: 0,
    errors: 0,
  };
  private lastError: string | null = null;
  /** Objects put into a backend that makes them durable only at flush: claimed after it. */
  private unclaimed = new Set<string>();

  constructor(
    private readonly backend: Store,
    private readonly redis: Redis,
    private readonly options: CachedStoreOptions,
  ) {
    super();
    if (!/^[\w-]{1,64}$/.test(options.namespace)) {
      throw new StoreError(
        `invalid cache namespace "${options.namespace}" (the repository id)`,
        'BAD_NAMESPACE',
      );
    }
    this.ttl = options.ttlSeconds ?? 30 * 24 * 3600;
    this.batchSize = options.batchSize ?? 1000;
    this.logger = options.logger ?? silentLogger;
    this.degradedWindowMs = options.degradedWindowMs ?? 30_000;
    this.probeTimer = setInterval(() => void this.probe(), options.probeIntervalMs ?? 1000);
    this.probeTimer.unref();
    // A backend that tells when objects become durable (packs): claimed then, never before.
    this.unsubscribe = backend.onDurable?.((hashes) => this.claim(hashes));
  }

  private readonly unsubscribe: (() => void) | undefined;

  /** Write-through: the backend holds these objects durably now. */
  private claim(hashes: readonly string[]): void {
    const pipeline = this.redis.pipeline();
    for (const hash of hashes) pipeline.set(this.cacheKey(hash), '1', 'EX', this.ttl);
    const done = this.ask(() => pipeline.exec()).then(() => {});
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  get location(): string {
    return this.backend.location;
  }

  get durableOnPut(): boolean | undefined {
    return this.backend.durableOnPut;
  }

  private cacheKey(hash: string): string {
    return `tv:obj:${this.options.namespace}:${hash}`;
  }

  // --- Store --------------------------------------------------------------------------------

  async has(key: string): Promise<boolean> {
    const hash = hashOfKey(key);
    if (!hash) return this.backend.has(key);
    const cached = await this.ask(() => this.redis.get(this.cacheKey(hash)));
    if (cached === '1') {
      this.counters.hits++;
      this.counters.backendCallsAvoided++;
      return true;
    }
    if (cached !== NO_ANSWER) this.counters.misses++;
    const found = await this.backend.has(key);
    if (found && cached !== NO_ANSWER) this.backfill([hash]);
    return found;
  }

  async hasMany(keys: readonly string[]): Promise<boolean[]> {
    const answers = new Array<boolean>(keys.length).fill(false);
    const toBackend: number[] = [];
    const cachedIndexes: number[] = [];
    const hashes = keys.map(hashOfKey);
    hashes.forEach((hash, i) => (hash ? cachedIndexes.push(i) : toBackend.push(i)));
    const batches: number[][] = [];
    for (let start = 0; start < cachedIndexes.length; start += this.batchSize) {
      batches.push(cachedIndexes.slice(start, start + this.batchSize));
    }
    // Several MGETs in flight at once: Redis answers them back to back on the one connection.
    const replies = await mapLimit(batches, 8, (batch) =>
      this.ask(() => this.redis.mget(batch.map((i) => this.cacheKey(hashes[i] as string)))),
    );
    let redisAnswered = true;
    batches.forEach((batch, b) => {
      const values = replies[b] as (string | null)[] | typeof NO_ANSWER;
      if (values === NO_ANSWER) {
        redisAnswered = false;
        toBackend.push(...batch);
        return;
      }
      batch.forEach((index, k) => {
        if (values[k] === '1') {
          answers[index] = true;
          this.counters.hits++;
          this.counters.backendCallsAvoided++;
        } else {
          this.counters.misses++;
          toBackend.push(index);
        }
      });
    });
    if (toBackend.length > 0) {
      const found = await this.backend.hasMany(toBackend.map((i) => keys[i] as string));
      const backfill: string[] = [];
      toBackend.forEach((index, k) => {
        answers[index] = found[k] as boolean;
        const hash = hashes[index];
        if (found[k] && hash) backfill.push(hash);
      });
      if (redisAnswered && backfill.length > 0) this.backfill(backfill);
    }
    return answers;
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    const hash = hashOfKey(key);
    if (!hash) return this.backend.put(key, data, options);
    const cached = await this.ask(() => this.redis.get(this.cacheKey(hash)));
    if (cached === '1') {
      this.counters.hits++;
      this.counters.backendCallsAvoided++;
      return;
    }
    if (cached !== NO_ANSWER) this.counters.misses++;
    await this.backend.put(key, data, options);
    // Write-through, only once the backend holds the object durably: now, or (a folder, whose
    // puts are durable and visible to others only at flush) after the next flush. Claimed
    // earlier, a crash before that flush would leave Redis claiming an object no one can read,
    // and another push would name it without uploading it.
    if (this.backend.onDurable) return; // claimed when the backend says it is durable
    if (this.backend.durableOnPut === false) this.unclaimed.add(hash);
    else await this.ask(() => this.redis.set(this.cacheKey(hash), '1', 'EX', this.ttl));
  }

  get(key: string): Promise<Readable> {
    return this.backend.get(key);
  }

  async delete(key: string): Promise<void> {
    const hash = hashOfKey(key);
    if (hash) await this.forget([hash], `delete ${key}`);
    await this.backend.delete(key);
  }

  list(prefix: string): AsyncIterable<ListEntry> {
    return this.backend.list(prefix);
  }

  async flush(): Promise<void> {
    const hashes = [...this.unclaimed];
    this.unclaimed = new Set();
    await this.backend.flush();
    for (let start = 0; start < hashes.length; start += this.batchSize) {
      const pipeline = this.redis.pipeline();
      for (const hash of hashes.slice(start, start + this.batchSize))
        pipeline.set(this.cacheKey(hash), '1', 'EX', this.ttl);
      if ((await this.ask(() => pipeline.exec())) === NO_ANSWER) break;
    }
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.probeTimer);
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
    await this.idle();
    await this.backend.close();
  }

  // --- cache maintenance ----------------------------------------------------------------------

  /**
   * Removes the cache keys of these objects. Throws when Redis cannot confirm it, so that no
   * caller goes on to delete an object the cache would still claim.
   */
  async forget(hashes: readonly string[], what = 'remove cache keys'): Promise<void> {
    if (hashes.length === 0) return;
    const refuse = (reason: string) =>
      new StoreError(
        `cannot ${what}: the Redis cache could not remove its key first (${reason}), so nothing was deleted; try again when Redis is back`,
        'CACHE_UNAVAILABLE',
      );
    if (this.circuitOpen) throw refuse(this.lastError ?? 'Redis is unavailable');
    const result = await this.ask(() => this.redis.del(...hashes.map((h) => this.cacheKey(h))));
    if (result === NO_ANSWER) throw refuse(this.lastError ?? 'no answer');
  }

  /**
   * Which of these objects the cache claims to hold, from Redis alone (undefined when Redis does
   * not answer). Verify checks these claims against the backend; a push uploads what the cache
   * does not claim (ADR-012's put: a miss is uploaded, not checked), counted as hits and misses.
   */
  async claims(
    hashes: readonly string[],
    options: { count?: boolean } = {},
  ): Promise<boolean[] | undefined> {
    const out: boolean[] = [];
    for (let start = 0; start < hashes.length; start += this.batchSize) {
      const batch = hashes.slice(start, start + this.batchSize);
      const values = await this.ask(() => this.redis.mget(batch.map((h) => this.cacheKey(h))));
      if (values === NO_ANSWER) return undefined;
      out.push(...values.map((v) => v === '1'));
    }
    if (options.count) {
      const hits = out.filter(Boolean).length;
      this.counters.hits += hits;
      this.counters.backendCallsAvoided += hits;
      this.counters.misses += out.length - hits;
    }
    return out;
  }

  /** Every object hash this repository's cache keys claim (SCAN, in pages). */
  async *claimedHashes(): AsyncIterable<string[]> {
    const prefix = `tv:obj:${this.options.namespace}:`;
    let cursor = '0';
    do {
      const reply = await this.ask(() =>
        this.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000),
      );
      if (reply === NO_ANSWER) return;
      cursor = reply[0];
      yield reply[1].map((key) => key.slice(prefix.length));
    } while (cursor !== '0');
  }

  /** Resolves once every background backfill has finished. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  // --- health ---------------------------------------------------------------------------------

  get state(): CacheState {
    if (this.circuitOpen) return 'down';
    return Date.now() - this.recoveredAt < this.degradedWindowMs ? 'degraded' : 'up';
  }

  health(): CacheHealth {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (q: number) =>
      round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);
    return {
      state: this.state,
      latencyMs: sorted.length > 0 ? { p50: at(0.5), p99: at(0.99) } : null,
      recentLatencyMs: this.latencies.map(round),
      ...this.counters,
      lastError: this.lastError,
      since: this.stateSince.toISOString(),
    };
  }

  // --- internals ------------------------------------------------------------------------------

  /** Runs a Redis command unless the circuit is open; a failure opens it. Never throws. */
  private async ask<T>(command: () => Promise<T>): Promise<T | typeof NO_ANSWER> {
    if (this.circuitOpen) {
      this.counters.fallbacks++;
      return NO_ANSWER;
    }
    const started = performance.now();
    try {
      const result = await command();
      this.recordLatency(performance.now() - started);
      return result;
    } catch (err) {
      this.counters.fallbacks++;
      this.trip(err);
      return NO_ANSWER;
    }
  }

  private backfill(hashes: string[]): void {
    const pipeline = this.redis.pipeline();
    for (const hash of hashes) pipeline.set(this.cacheKey(hash), '1', 'EX', this.ttl);
    const done = this.ask(() => pipeline.exec()).then((results) => {
      if (results === NO_ANSWER || !results) return;
      this.counters.backfills += results.filter(([err]) => !err).length;
    });
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  private trip(err: unknown): void {
    this.counters.errors++;
    this.lastError = err instanceof Error ? err.message : String(err);
    if (this.circuitOpen) return;
    this.circuitOpen = true;
    this.logger.warn(
      `Redis cache unavailable (${this.lastError}): using the storage backend directly until it is back`,
    );
    this.report();
  }

  /**
   * Runs every probe interval. With the circuit open, a PING that answers closes it. With it
   * closed, a PING keeps the health current when no other command is running: a Redis that died
   * while idle shows as down at once, not at the next push.
   */
  private async probe(): Promise<void> {
    try {
      const started = performance.now();
      await this.redis.ping();
      this.recordLatency(performance.now() - started);
    } catch (err) {
      if (this.circuitOpen) this.lastError = err instanceof Error ? err.message : String(err);
      else this.trip(err);
      return;
    }
    if (!this.circuitOpen) return;
    this.circuitOpen = false;
    this.recoveredAt = Date.now();
    this.logger.warn('Redis cache answers again: caching resumes');
    this.report();
    // "degraded" ends by itself once the window passes: report that change too.
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
    this.recoveryTimer = setTimeout(() => this.report(), this.degradedWindowMs + 10);
    this.recoveryTimer.unref();
  }

  private report(): void {
    const state = this.state;
    if (state === this.reportedState) return;
    this.reportedState = state;
    this.stateSince = new Date();
    this.emit('state', this.health());
  }

  private recordLatency(ms: number): void {
    this.latencies.push(ms);
    if (this.latencies.length > LATENCY_SAMPLES) this.latencies.shift();
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;
