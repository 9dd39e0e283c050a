import type { CacheShared, CacheStatus } from '../../../shared/types';
import type { CachedStore } from './cached';
import { NO_ANSWER, percentile, type RedisBreaker } from './redis-breaker';
import type { RedisClaims } from './redis-claims';

/** Up to this many keys in the database, this repository's keys are counted one by one. */
const COUNT_LIMIT = 200_000;
/** Beyond it, a sample of this many keys estimates them. */
const SAMPLE_KEYS = 20_000;

export interface StatusOptions {
  /** PINGs to send (default 3). */
  pings?: number;
  /** How long the first connection may take (default 1 s). */
  startupMs?: number;
  /** Reuse shared figures read within this long (default 0: read them now). */
  sharedMaxAgeMs?: number;
  /**
   * When this is the cache's first use, log no warning that Redis is down: the caller shows the
   * state itself (`tv cache status`). A long-running app keeps its warnings (its log).
   */
  quiet?: boolean;
}

const lastShared = new WeakMap<CachedStore, CacheShared>();

/**
 * The cache's state as a person asks for it: PINGs with the breaker's timeout say down (and why),
 * degraded or up (and how fast); then what any client can read from Redis about the shared
 * cache: this repository's keys, Redis' memory, and the totals every client adds to.
 */
export async function cacheStatus(
  cache: CachedStore,
  redis: string,
  options: StatusOptions = {},
): Promise<CacheStatus> {
  const { breaker, keys } = cache.internals();
  cache.connect(options.startupMs ?? 1_000, { quiet: options.quiet ?? false });
  await breaker.start();
  const answered: number[] = [];
  const failures: string[] = [];
  for (let i = 0; i < (options.pings ?? 3) && breaker.state !== 'down'; i++) {
    const ping = await breaker.ping();
    if ('ms' in ping) answered.push(ping.ms);
    else failures.push(ping.error);
  }
  let state = breaker.state;
  let reason: string | null = null;
  if (state === 'down' || answered.length === 0) {
    state = 'down';
    reason = breaker.lastError ?? failures[0] ?? 'Redis did not answer';
  } else if (failures.length > 0) {
    state = 'degraded';
    reason = `${answered.length} of ${answered.length + failures.length} PINGs answered (${failures[0]})`;
  } else if (state === 'degraded') {
    reason = breaker.lastError
      ? `within the last minute: ${breaker.lastError}`
      : 'Redis answers again after an outage';
  }
  let shared: CacheShared | null = null;
  if (state !== 'down') {
    const previous = lastShared.get(cache);
    const fresh =
      previous && Date.now() - Date.parse(previous.readAt) < (options.sharedMaxAgeMs ?? 0);
    shared = fresh ? previous : await readShared(cache.namespace, keys, breaker);
    lastShared.set(cache, shared);
  }
  const h = cache.health();
  const asked = h.hits + h.misses;
  return {
    ...h,
    state,
    redis,
    hitRate: asked > 0 ? Math.round((h.hits / asked) * 1000) / 1000 : null,
    reason,
    lastError: state === 'down' ? reason : h.lastError,
    pingMs: answered.length > 0 ? Math.round(percentile(answered, 0.5) * 1000) / 1000 : null,
    countersScope: 'process',
    shared,
  };
}

async function readShared(
  repositoryId: string,
  keys: RedisClaims,
  breaker: RedisBreaker,
): Promise<CacheShared> {
  const ask = async <T>(command: () => Promise<T>) => {
    const answer = await breaker.run(command);
    return answer === NO_ANSWER ? null : answer;
  };
  const [counted, memory, totals] = await Promise.all([
    countKeys(keys, breaker),
    ask(() => keys.memory()),
    ask(() => keys.totals()),
  ]);
  const oneKey = counted?.example
    ? await ask(() => keys.keyBytes(counted.example as string))
    : null;
  const asked = totals ? totals.hits + totals.misses : 0;
  return {
    repositoryId,
    keys: counted
      ? { count: counted.count, method: counted.method, sampledKeys: counted.sampledKeys }
      : null,
    keyBytes: counted && oneKey ? counted.count * oneKey : null,
    memory,
    totals: totals
      ? { ...totals, hitRate: asked > 0 ? Math.round((totals.hits / asked) * 1000) / 1000 : null }
      : null,
    readAt: new Date().toISOString(),
  };
}

/**
 * This repository's keys: counted with a SCAN of its own keys when the database is small enough;
 * beyond that, estimated from the share of its keys in a sample of the whole keyspace.
 */
async function countKeys(
  keys: RedisClaims,
  breaker: RedisBreaker,
): Promise<{
  count: number;
  method: 'counted' | 'sampled';
  sampledKeys: number;
  example?: string;
} | null> {
  const size = await breaker.run(() => keys.size());
  if (size === NO_ANSWER) return null;
  let cursor = '0';
  let example: string | undefined;
  if (size <= COUNT_LIMIT) {
    let count = 0;
    do {
      const page = await breaker.run(() => keys.scan(cursor));
      if (page === NO_ANSWER) return null;
      count += page.hashes.length;
      example ??= page.hashes[0];
      cursor = page.cursor;
    } while (cursor !== '0');
    return { count, method: 'counted', sampledKeys: size, ...(example ? { example } : {}) };
  }
  let seen = 0;
  let own = 0;
  do {
    const page = await breaker.run(() => keys.sample(cursor));
    if (page === NO_ANSWER) return null;
    seen += page.seen;
    own += page.own.length;
    example ??= page.own[0];
    cursor = page.cursor;
  } while (cursor !== '0' && seen < SAMPLE_KEYS);
  const whole = cursor === '0';
  return {
    count: whole ? own : Math.round((own / Math.max(seen, 1)) * size),
    method: whole ? 'counted' : 'sampled',
    sampledKeys: seen,
    ...(example ? { example } : {}),
  };
}
