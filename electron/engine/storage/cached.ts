import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { mapLimit } from '../concurrency';
import { silentLogger, type Logger } from '../log';
import type { RedisConnection } from './redis';
import {
  NO_ANSWER,
  percentile,
  RedisBreaker,
  type BreakerOptions,
  type CacheState,
} from './redis-breaker';
import { NO_TOTALS, RedisClaims, type CacheTotals } from './redis-claims';
import {
  hashOfKey,
  StoreError,
  type ListEntry,
  type PutOptions,
  type RetryStats,
  type Store,
} from './store';

export type { CacheState } from './redis-breaker';

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
  /** The timeout the next Redis command gets, in milliseconds. */
  commandTimeoutMs: number;
  /** Commands that Redis did not answer in time. */
  timeouts: number;
}

export interface CachedStoreOptions extends Pick<
  BreakerOptions,
  'probeIntervalMs' | 'degradedWindowMs' | 'timeoutFloorMs' | 'startupMs'
> {
  /** The repository id: keys are bound to it, so one Redis serves many repositories safely. */
  namespace: string;
  /** Lifetime of an existence key (default 30 days). */
  ttlSeconds?: number;
  /** Keys per MGET (default 1000). */
  batchSize?: number;
  /** How often this client adds its counts to the shared totals in Redis (default 5 s). */
  totalsIntervalMs?: number;
  logger?: Logger;
}

/**
 * ADR-012: a Store that wraps any Store with a Redis existence cache. It caches only
 * content-addressed objects (immutable), as claims that the backend holds them (see RedisClaims).
 *
 * - has, hasMany: Redis first (one MGET per batch); a hit answers with no backend call; the
 *   misses go to the backend's own hasMany together, and the ones it holds are written back to
 *   Redis without making the caller wait. A miss is never taken for "absent".
 * - put: skipped when Redis says the object exists; otherwise uploaded, then the key is written
 *   (write-through), never before the backend confirmed.
 * - get, list go to the backend; delete removes the key first and refuses when it cannot.
 * - Redis unreachable, slow or failing never fails a read or a write (see RedisBreaker): the
 *   backend answers, a warning is logged once, and caching resumes when Redis is back.
 * - Connects on first use: a command that needs no cache never touches Redis.
 */
export class CachedStore extends EventEmitter implements Store {
  private readonly batchSize: number;
  private readonly breaker: RedisBreaker;
  private readonly keys: RedisClaims;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly counters = { hits: 0, misses: 0, backfills: 0, backendCallsAvoided: 0 };
  /** Counts not yet added to the shared totals in Redis. */
  private unsent: CacheTotals = { ...NO_TOTALS };
  private fallbacksSent = 0;
  private totalsTimer: NodeJS.Timeout | undefined;
  /** Objects put into a backend that makes them durable only at flush: claimed after it. */
  private unclaimed = new Set<string>();

  constructor(
    private readonly backend: Store,
    readonly connection: RedisConnection,
    private readonly options: CachedStoreOptions,
  ) {
    super();
    if (!/^[\w-]{1,64}$/.test(options.namespace)) {
      throw new StoreError(
        `invalid cache namespace "${options.namespace}" (the repository id)`,
        'BAD_NAMESPACE',
      );
    }
    this.batchSize = options.batchSize ?? 1000;
    this.breaker = new RedisBreaker(connection, {
      ...options,
      logger: options.logger ?? silentLogger,
      onStateChange: () => this.emit('state', this.health()),
    });
    this.keys = new RedisClaims(
      connection.client,
      options.namespace,
      options.ttlSeconds ?? 30 * 24 * 3600,
    );
  }

  get location(): string {
    return this.backend.location;
  }

  get durableOnPut(): boolean | undefined {
    return this.backend.durableOnPut;
  }

  get namespace(): string {
    return this.options.namespace;
  }

  retries(): RetryStats | undefined {
    return this.backend.retries?.();
  }

  /**
   * Starts connecting to Redis now, for a command that will need the cache (a push): the
   * connection is made while the work starts, and given up on within the start-up budget.
   */
  connect(startupMs?: number, options: { quiet?: boolean } = {}): void {
    void this.start(startupMs, options);
  }

  // --- Store --------------------------------------------------------------------------------

  async has(key: string): Promise<boolean> {
    return (await this.hasMany([key]))[0] as boolean;
  }

  async hasMany(keys: readonly string[]): Promise<boolean[]> {
    const hashes = keys.map(hashOfKey);
    const cacheable = hashes.flatMap((hash, i) => (hash ? [i] : []));
    const claimed = await this.lookup(cacheable.map((i) => hashes[i] as string));
    const answers = new Array<boolean>(keys.length).fill(false);
    const toBackend: number[] = hashes.flatMap((hash, i) => (hash ? [] : [i]));
    cacheable.forEach((index, k) => {
      if (claimed[k] === true) answers[index] = true;
      else toBackend.push(index);
    });
    if (toBackend.length === 0) return answers;
    const found = await this.backend.hasMany(toBackend.map((i) => keys[i] as string));
    const backfill: string[] = [];
    toBackend.forEach((index, k) => {
      answers[index] = found[k] as boolean;
      const hash = hashes[index];
      // Not what this client put and the backend makes durable only at its flush.
      if (found[k] && hash && claimed.length > 0 && !this.unclaimed.has(hash)) backfill.push(hash);
    });
    if (backfill.length > 0) this.backfill(backfill);
    return answers;
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    const hash = hashOfKey(key);
    if (!hash) return this.backend.put(key, data, options);
    // Redis may have learnt of it since the caller asked (another client uploaded it): a hit
    // skips the upload; a miss was counted when the caller asked.
    const [claimed] = await this.lookup([hash], { misses: false });
    if (claimed) return;
    await this.backend.put(key, data, options);
    // Write-through, only once the backend holds the object durably: now, or (a folder, whose
    // puts are durable and visible to others only at flush) after the next flush. Claimed
    // earlier, a crash before that flush would leave Redis claiming an object no one can read,
    // and another push would name it without uploading it.
    if (this.backend.durableOnPut === false) this.unclaimed.add(hash);
    else await this.claim([hash]);
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
    await this.claim(hashes);
    await this.sendTotals();
  }

  async close(): Promise<void> {
    clearInterval(this.totalsTimer);
    await this.idle();
    if (this.breaker.used) await this.sendTotals();
    this.breaker.close();
    this.connection.disconnect();
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
    for (let start = 0; start < hashes.length; start += this.batchSize) {
      const batch = hashes.slice(start, start + this.batchSize);
      if ((await this.breaker.run(() => this.keys.delete(batch))) === NO_ANSWER)
        throw refuse(this.breaker.lastError ?? 'no answer');
    }
  }

  /**
   * Which of these objects the cache claims to hold, from Redis alone (undefined when Redis does
   * not answer): verify checks such claims against the backend. Not counted as hits or misses.
   */
  async claims(hashes: readonly string[]): Promise<boolean[] | undefined> {
    const out: boolean[] = [];
    for (let start = 0; start < hashes.length; start += this.batchSize) {
      const batch = hashes.slice(start, start + this.batchSize);
      const values = await this.breaker.run(() => this.keys.get(batch));
      if (values === NO_ANSWER) return undefined;
      out.push(...values);
    }
    return out;
  }

  /** Every object hash this repository's cache keys claim (SCAN, in pages). */
  async *claimedHashes(): AsyncIterable<string[]> {
    let cursor = '0';
    do {
      const page = await this.breaker.run(() => this.keys.scan(cursor));
      if (page === NO_ANSWER) return;
      cursor = page.cursor;
      yield page.hashes;
    } while (cursor !== '0');
  }

  /** Resolves once every background backfill has finished. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** The breaker and key layout, for the status a person asks for (see cache-status). */
  internals(): { breaker: RedisBreaker; keys: RedisClaims } {
    return { breaker: this.breaker, keys: this.keys };
  }

  // --- health ---------------------------------------------------------------------------------

  get state(): CacheState {
    return this.breaker.state;
  }

  health(): CacheHealth {
    const samples = this.breaker.recentLatencies;
    return {
      state: this.state,
      latencyMs:
        samples.length > 0
          ? { p50: round(percentile(samples, 0.5)), p99: round(percentile(samples, 0.99)) }
          : null,
      recentLatencyMs: samples.map(round),
      ...this.counters,
      fallbacks: this.breaker.counters.fallbacks,
      errors: this.breaker.counters.errors,
      lastError: this.breaker.lastError,
      since: this.breaker.since.toISOString(),
      commandTimeoutMs: this.breaker.timeoutMs,
      timeouts: this.breaker.counters.timeouts,
    };
  }

  // --- internals ------------------------------------------------------------------------------

  /** Connects (on first use) and starts adding this client's counts to the shared totals. */
  private async start(startupMs?: number, options: { quiet?: boolean } = {}): Promise<void> {
    if (!this.totalsTimer) {
      this.totalsTimer = setInterval(
        () => void this.sendTotals(),
        this.options.totalsIntervalMs ?? 5_000,
      );
      this.totalsTimer.unref();
    }
    await this.breaker.start(startupMs, options);
  }

  /**
   * Which of these objects Redis claims, several MGETs in flight; [] when Redis did not answer
   * (each then counts as a fallback, not a miss). Counted as hits and (unless told) misses.
   */
  private async lookup(
    hashes: readonly string[],
    count: { misses: boolean } = { misses: true },
  ): Promise<boolean[]> {
    if (hashes.length === 0) return [];
    await this.start();
    const batches: string[][] = [];
    for (let start = 0; start < hashes.length; start += this.batchSize)
      batches.push(hashes.slice(start, start + this.batchSize));
    // Redis answers several MGETs in flight back to back on the one connection.
    const replies = await mapLimit(batches, 8, (batch) =>
      this.breaker.run(() => this.keys.get(batch)),
    );
    if (replies.some((r) => r === NO_ANSWER)) return [];
    const claimed = replies.flat() as boolean[];
    const hits = claimed.filter(Boolean).length;
    this.count('hits', hits);
    if (count.misses) this.count('misses', claimed.length - hits);
    this.counters.backendCallsAvoided += hits;
    return claimed;
  }

  /** Writes these claims now (write-through after an upload, or after a flush). */
  private async claim(hashes: readonly string[]): Promise<void> {
    for (let start = 0; start < hashes.length; start += this.batchSize) {
      const batch = hashes.slice(start, start + this.batchSize);
      const written = await this.breaker.run(() => this.keys.set(batch));
      if (written === NO_ANSWER) return;
      this.count('uploads', written);
    }
  }

  /** Writes claims of objects the backend holds, without making the caller wait. */
  private backfill(hashes: string[]): void {
    const done = this.breaker
      .run(() => this.keys.set(hashes))
      .then((written) => {
        if (written !== NO_ANSWER) this.count('backfills', written);
      });
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  private count(field: keyof CacheTotals, n: number): void {
    if (field !== 'uploads' && field !== 'fallbacks') this.counters[field] += n;
    this.unsent[field] += n;
  }

  /** Adds this client's counts to the shared totals (approximate: a lost reply loses them). */
  private async sendTotals(): Promise<void> {
    const fallbacks = this.breaker.counters.fallbacks;
    this.unsent.fallbacks += fallbacks - this.fallbacksSent;
    this.fallbacksSent = fallbacks;
    const delta = this.unsent;
    if (Object.values(delta).every((n) => n === 0) || this.breaker.state === 'down') return;
    this.unsent = { ...NO_TOTALS };
    await this.breaker.run(() => this.keys.addTotals(delta));
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;
