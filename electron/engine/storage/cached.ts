import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { mapLimit } from '../concurrency';
import { silentLogger, type Logger } from '../log';
import { MasterTarget, type RedisConnection } from './redis';
import {
  NO_ANSWER,
  percentile,
  RedisBreaker,
  type Answer,
  type BreakerOptions,
  type CacheState,
} from './redis-breaker';
import {
  NO_TOTALS,
  RedisClaims,
  type CacheKeyList,
  type CacheTotals,
  type KeyBatch,
} from './redis-claims';
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
  /** Keys per round trip to one server or one master (default 1000). */
  batchSize?: number;
  /** How often this client adds its counts to the shared totals in Redis (default 5 s). */
  totalsIntervalMs?: number;
  logger?: Logger;
}

/**
 * ADR-012: a Store that wraps any Store with a Redis existence cache. It caches only
 * content-addressed objects (immutable), as claims that the backend holds them (see RedisClaims).
 *
 * - has, hasMany: Redis first (one MGET per batch, per slot on a cluster); a hit answers with no backend call; the
 *   misses go to the backend's own hasMany together, and the ones it holds are written back to
 *   Redis without making the caller wait. A miss is never taken for "absent".
 * - put: skipped when Redis says the object exists; otherwise uploaded, then the key is written
 *   (write-through), never before the backend confirmed.
 * - get, list go to the backend; delete removes the key first and refuses when it cannot.
 * - Redis unreachable, slow or failing never fails a read or a write (see RedisBreaker): the
 *   backend answers, a warning is logged once, and caching resumes when Redis is back.
 * - Connects on first use: a command that needs no cache never touches Redis.
 * - On a Redis Cluster, each master has a breaker of its own: a master that is down or hung costs
 *   only the keys it serves (the backend answers for them); the cluster is down when none answers.
 */
export class CachedStore extends EventEmitter implements Store {
  private readonly batchSize: number;
  /** The whole Redis: the connection, and on one server every command. */
  private readonly breaker: RedisBreaker;
  /** On a cluster, one breaker per master (host:port). */
  private readonly masters = new Map<string, RedisBreaker>();
  private reportedState: CacheState = 'up';
  private readonly keys: RedisClaims;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly counters = { hits: 0, misses: 0, backfills: 0, backendCallsAvoided: 0 };
  /** Counts not yet added to the shared totals in Redis. */
  private unsent: CacheTotals = { ...NO_TOTALS };
  private fallbacksSent = 0;
  private totalsTimer: NodeJS.Timeout | undefined;
  /** Objects put into a backend that makes them durable only at flush: claimed after it. */
  private unclaimed = new Set<string>();
  /** Objects put into a backend that tells when they are durable (packs), until it does. */
  private readonly notDurable = new Set<string>();
  private readonly unsubscribe: (() => void) | undefined;
  /**
   * Claims of durable objects that Redis (or the master serving them) did not take: the
   * connection was still being made (a cluster over TLS on a loaded machine can take longer than
   * the start-up budget), or was down. Written when it answers again, while this process runs;
   * at most MAX_UNWRITTEN (older ones are left to a later check's backfill).
   */
  private readonly unwritten = new Map<string, 'uploads' | 'backfills'>();

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
      onStateChange: () => this.stateChanged(),
    });
    this.keys = new RedisClaims(
      connection,
      options.namespace,
      options.ttlSeconds ?? 30 * 24 * 3600,
    );
    // A backend that tells when objects become durable (packs): claimed then, never before.
    this.unsubscribe = backend.onDurable?.((hashes) => {
      for (const hash of hashes) this.notDurable.delete(hash);
      this.track(this.claim(hashes));
    });
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
    // Plain loops: a warm push asks about every chunk, and this is the cache's own CPU per key.
    const answers = new Array<boolean>(keys.length).fill(false);
    /** The Redis keys of the object keys (made per batch), and the index of each in `keys`. */
    const { keys: cacheKeys, at } = this.keys.keysOfObjects(keys);
    /** Indexes of keys the backend is asked about. */
    const toBackend: number[] = [];
    if (at.length < keys.length) {
      for (let i = 0, k = 0; i < keys.length; i++) {
        if (at[k] === i) k++;
        else toBackend.push(i);
      }
    }
    const claimed = await this.lookup(cacheKeys);
    /** Indexes of keys Redis answered "not claimed" about: a backend hit is written back. */
    const answeredMiss = new Set<number>();
    for (let k = 0; k < at.length; k++) {
      const c = claimed[k];
      if (c === true) answers[at[k] as number] = true;
      else {
        toBackend.push(at[k] as number);
        if (c === false) answeredMiss.add(at[k] as number);
      }
    }
    if (toBackend.length === 0) return answers;
    const found = await this.backend.hasMany(toBackend.map((i) => keys[i] as string));
    const backfill: string[] = [];
    toBackend.forEach((index, k) => {
      answers[index] = found[k] as boolean;
      const hash = hashOfKey(keys[index] as string);
      // Not what this client put and the backend makes durable only at its flush.
      if (
        found[k] &&
        hash &&
        answeredMiss.has(index) &&
        !this.unclaimed.has(hash) &&
        !this.notDurable.has(hash)
      )
        backfill.push(hash);
    });
    if (backfill.length > 0) this.backfill(backfill);
    return answers;
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    const hash = hashOfKey(key);
    if (!hash) return this.backend.put(key, data, options);
    // Redis may have learnt of it since the caller asked (another client uploaded it): a hit
    // skips the upload; a miss was counted when the caller asked.
    const [claimed] = await this.lookup(this.keys.keysOfHashes([hash]), { misses: false });
    if (claimed) return;
    // Before the put: a backend that holds the object durably already says so during it.
    if (this.backend.onDurable) this.notDurable.add(hash);
    await this.backend.put(key, data, options);
    // Write-through, only once the backend holds the object durably: now, or (a folder, whose
    // puts are durable and visible to others only at flush) after the next flush. Claimed
    // earlier, a crash before that flush would leave Redis claiming an object no one can read,
    // and another push would name it without uploading it.
    if (this.backend.onDurable) return; // claimed when the backend says it is durable
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
    // A connection that was slow to start may be ready by now: its claims are written now rather
    // than at the next probe, which a short push would not live to see.
    if (this.unwritten.size > 0) await this.recheck();
    await this.sendTotals();
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.totalsTimer);
    await this.idle();
    if (this.breaker.used) await this.sendTotals();
    this.breaker.close();
    for (const master of this.masters.values()) master.close();
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
    await this.start();
    // A claim kept for later (Redis was not ready) must not bring the key back after this: it is
    // dropped, and claims being written settle before the keys are removed. A connection that
    // was slow to start may be ready by now (probed at once, not at the next probe).
    for (const hash of hashes) this.unwritten.delete(hash);
    await this.recheck();
    await this.idle();
    const cacheKeys = this.keys.keysOfHashes(hashes);
    const batches = this.keys.batches(cacheKeys, this.batchSize);
    if (batches.reduce((n, b) => n + b.size, 0) < cacheKeys.length)
      throw refuse(this.breaker.lastError ?? 'the Redis Cluster has no slot map yet');
    for (const batch of batches) {
      if (
        (await this.onMaster(batch.address, () => this.keys.delete(batch, cacheKeys))) === NO_ANSWER
      ) {
        const guard =
          this.connection.kind === 'cluster' ? this.masters.get(batch.address) : undefined;
        throw refuse(guard?.lastError ?? this.breaker.lastError ?? 'no answer');
      }
    }
  }

  /**
   * Which of these objects the cache claims to hold, from Redis alone (undefined when Redis does
   * not answer, or a master of a cluster does not): verify checks such claims against the
   * backend. Not counted as hits or misses.
   */
  async claims(hashes: readonly string[]): Promise<boolean[] | undefined> {
    const claimed = await this.ask(this.keys.keysOfHashes(hashes));
    return claimed.every((c) => c !== undefined) ? (claimed as boolean[]) : undefined;
  }

  /** Every object hash this repository's cache keys claim (SCAN, in pages, of every master). */
  async *claimedHashes(): AsyncIterable<string[]> {
    await this.start();
    for (const address of this.connection.masters()) {
      let cursor = '0';
      do {
        const page = await this.onMaster(address, () => this.keys.scan(address, cursor));
        if (page === NO_ANSWER) break;
        cursor = page.cursor;
        yield page.hashes;
      } while (cursor !== '0');
    }
  }

  /** Resolves once every background backfill has finished. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /**
   * The breakers and key layout, for the status a person asks for (see cache-status): the whole
   * Redis's, and a guard per master (the whole Redis's own on one server).
   */
  internals(): {
    breaker: RedisBreaker;
    keys: RedisClaims;
    connection: RedisConnection;
    guard: (address: string) => RedisBreaker;
    on: <T>(address: string | undefined, command: () => Promise<T>) => Promise<Answer<T>>;
  } {
    return {
      breaker: this.breaker,
      keys: this.keys,
      connection: this.connection,
      guard: (address) => this.guard(address),
      on: (address, command) => this.onMaster(address, command),
    };
  }

  // --- health ---------------------------------------------------------------------------------

  /**
   * up, degraded or down; on a cluster: down when the cluster cannot be reached or no master
   * answers, degraded while one master is down (its keys go to the backend) or lately was.
   */
  get state(): CacheState {
    const whole = this.breaker.state;
    if (whole === 'down' || this.masters.size === 0) return whole;
    const states = [...this.masters.values()].map((m) => m.state);
    if (states.every((state) => state === 'down')) return 'down';
    return whole === 'degraded' || states.some((state) => state !== 'up') ? 'degraded' : 'up';
  }

  health(): CacheHealth {
    const guards = [this.breaker, ...this.masters.values()];
    const samples = guards.flatMap((g) => g.recentLatencies);
    const sum = (field: keyof RedisBreaker['counters']) =>
      guards.reduce((n, g) => n + g.counters[field], 0);
    const lastError = guards
      .filter((g) => g.lastError !== null)
      .sort((a, b) => a.lastErrorAt - b.lastErrorAt)
      .at(-1)?.lastError;
    return {
      state: this.state,
      latencyMs:
        samples.length > 0
          ? { p50: round(percentile(samples, 0.5)), p99: round(percentile(samples, 0.99)) }
          : null,
      recentLatencyMs: samples.map(round),
      ...this.counters,
      fallbacks: sum('fallbacks'),
      errors: sum('errors'),
      lastError: lastError ?? null,
      since: new Date(Math.max(...guards.map((g) => g.since.getTime()))).toISOString(),
      commandTimeoutMs: Math.max(...guards.map((g) => g.timeoutMs)),
      timeouts: sum('timeouts'),
    };
  }

  /** Tells listeners when the state (the whole Redis's, or a master's) changed. */
  private stateChanged(): void {
    const state = this.state;
    if (state !== 'down' && this.unwritten.size > 0) this.track(this.writeUnwritten());
    if (state === this.reportedState) return;
    this.reportedState = state;
    this.emit('state', this.health());
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
   * The guard of one master (host:port) of a cluster, made on first sight; on one server the
   * whole Redis's.
   */
  private guard(address: string): RedisBreaker {
    if (this.connection.kind === 'standalone') return this.breaker;
    let guard = this.masters.get(address);
    if (!guard) {
      guard = new RedisBreaker(new MasterTarget(this.connection, address), {
        ...this.options,
        logger: this.options.logger ?? silentLogger,
        part: `master ${address}`,
        onStateChange: () => this.stateChanged(),
      });
      this.masters.set(address, guard);
      // As quiet as the whole cache's: `tv cache status` prints each master's state itself.
      void guard.start(undefined, { quiet: this.breaker.silent });
    }
    return guard;
  }

  /**
   * Runs a command on one master under its guard (on one server, under the whole Redis's):
   * NO_ANSWER, counted as a fallback, when it does not answer, when no master serves the keys
   * yet, or when the cluster cannot be reached at all.
   */
  private async onMaster<T>(
    address: string | undefined,
    command: () => Promise<T>,
  ): Promise<Answer<T>> {
    await this.start();
    if (this.connection.kind === 'standalone') return this.breaker.run(command);
    if (address === undefined || this.breaker.state === 'down') {
      this.breaker.counters.fallbacks++;
      return NO_ANSWER;
    }
    return this.guard(address).run(command);
  }

  /**
   * These hashes in batches per master. Keys no master serves yet (a cluster not reached, whose
   * slot map is unknown) are in none: the backend answers for them, counted as one fallback.
   */
  private async route(cacheKeys: CacheKeyList): Promise<KeyBatch[]> {
    await this.start();
    const batches = this.keys.batches(cacheKeys, this.batchSize);
    if (batches.reduce((n, b) => n + b.size, 0) < cacheKeys.length)
      this.breaker.counters.fallbacks++;
    return batches;
  }

  /**
   * What Redis claims about each of these objects: true, false, or undefined where the server
   * (or the master serving its key) did not answer. Batches go to each master in turn, several
   * in flight.
   */
  private async ask(cacheKeys: CacheKeyList): Promise<(boolean | undefined)[]> {
    const claimed = new Array<boolean | undefined>(cacheKeys.length);
    if (cacheKeys.length === 0) return claimed;
    const batches = await this.route(cacheKeys);
    // Redis answers several MGETs in flight back to back on one connection.
    await mapLimit(batches, 8, (batch) =>
      this.onMaster(batch.address, () => this.keys.get(batch, cacheKeys, claimed)),
    );
    return claimed;
  }

  /**
   * What Redis claims about these objects, counted as hits and (unless told) misses; an object
   * Redis did not answer about is undefined, and counts as a fallback, not a miss.
   */
  private async lookup(
    cacheKeys: CacheKeyList,
    count: { misses: boolean } = { misses: true },
  ): Promise<(boolean | undefined)[]> {
    const claimed = await this.ask(cacheKeys);
    let hits = 0;
    let misses = 0;
    for (const c of claimed) {
      if (c === true) hits++;
      else if (c === false) misses++;
    }
    this.count('hits', hits);
    if (count.misses) this.count('misses', misses);
    this.counters.backendCallsAvoided += hits;
    return claimed;
  }

  /**
   * Writes claims (pipelined SET EX per master); how many keys were written. Those Redis did not
   * take are kept to be written when it answers again (see `unwritten`).
   */
  private async write(hashes: readonly string[], kind: 'uploads' | 'backfills'): Promise<number> {
    let written = 0;
    const cacheKeys = this.keys.keysOfHashes(hashes);
    const taken = new Uint8Array(hashes.length);
    await mapLimit(await this.route(cacheKeys), 8, async (batch) => {
      const n = await this.onMaster(batch.address, () => this.keys.set(batch, cacheKeys));
      if (n === NO_ANSWER) return;
      written += n;
      this.keys.forEachIndex(batch, (i) => (taken[i] = 1));
    });
    for (let i = 0; i < hashes.length && this.unwritten.size < MAX_UNWRITTEN; i++)
      if (!taken[i]) this.unwritten.set(hashes[i] as string, kind);
    return written;
  }

  /** Writes the claims Redis did not take before (it answers again). */
  private async writeUnwritten(): Promise<void> {
    const byKind = { uploads: [] as string[], backfills: [] as string[] };
    for (const [hash, kind] of this.unwritten) byKind[kind].push(hash);
    this.unwritten.clear();
    for (const kind of ['uploads', 'backfills'] as const)
      if (byKind[kind].length > 0) this.count(kind, await this.write(byKind[kind], kind));
  }

  /** Probes now every guard whose circuit is open (the whole Redis's, each master's). */
  private async recheck(): Promise<void> {
    await this.breaker.recheck();
    await Promise.all([...this.masters.values()].map((guard) => guard.recheck()));
  }

  /** Writes these claims now (write-through after an upload, or after a flush). */
  private async claim(hashes: readonly string[]): Promise<void> {
    if (hashes.length === 0) return;
    this.count('uploads', await this.write(hashes, 'uploads'));
  }

  /** Writes claims of objects the backend holds, without making the caller wait. */
  private backfill(hashes: string[]): void {
    this.track(this.write(hashes, 'backfills').then((written) => this.count('backfills', written)));
  }

  /** Keeps a background write until it settles (idle and close wait for it). */
  private track(done: Promise<void>): void {
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
    await this.onMaster(this.keys.statsAddress, () => this.keys.addTotals(delta));
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** Claims kept for when Redis answers again (about 10 MB of hashes at most). */
const MAX_UNWRITTEN = 100_000;
