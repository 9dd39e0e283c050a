import type { CacheNodeStatus, CacheShared, CacheStatus } from '../../../shared/types';
import type { CachedStore } from './cached';
import { NO_ANSWER, percentile, type Answer } from './redis-breaker';
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

const lastShared = new WeakMap<CachedStore, { shared: CacheShared; nodes: CacheNodeStatus[] }>();

/**
 * The cache's state as a person asks for it: PINGs with the breaker's timeout say down (and why),
 * degraded or up (and how fast); each master of a cluster is PINGed and counted on its own; then
 * what any client can read from Redis about the shared cache: this repository's keys, Redis'
 * memory, and the totals every client adds to.
 */
export async function cacheStatus(
  cache: CachedStore,
  redis: string,
  options: StatusOptions = {},
): Promise<CacheStatus> {
  const { breaker, connection } = cache.internals();
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
  const previous = lastShared.get(cache);
  const fresh =
    previous && Date.now() - Date.parse(previous.shared.readAt) < (options.sharedMaxAgeMs ?? 0);
  let read: { shared: CacheShared; nodes: CacheNodeStatus[] } | null = null;
  if (state !== 'down') {
    read = fresh ? previous : await readShared(cache, answered);
    lastShared.set(cache, read);
  }
  const nodes = read?.nodes ?? [];
  const downMasters = nodes.filter((n) => n.state === 'down');
  if (connection.kind === 'cluster' && state !== 'down' && downMasters.length > 0) {
    state = downMasters.length === nodes.length ? 'down' : 'degraded';
    reason = `${downMasters.length} of ${nodes.length} masters down (${downMasters
      .map((n) => `${n.address}: ${n.reason ?? 'no answer'}`)
      .join('; ')}): the storage backend answers for their keys`;
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
    pingMs: answered.length > 0 ? round(percentile(answered, 0.5)) : null,
    countersScope: 'process',
    shared: read?.shared ?? null,
    kind: connection.kind,
    nodes,
    failovers: [...connection.failovers],
  };
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** Each master's state and keys, and the shared figures they add up to. */
async function readShared(
  cache: CachedStore,
  pings: number[],
): Promise<{ shared: CacheShared; nodes: CacheNodeStatus[] }> {
  const { keys, connection, guard, on } = cache.internals();
  const ask = async <T>(address: string | undefined, command: () => Promise<T>) => {
    const answer = await on(address, command);
    return answer === NO_ANSWER ? null : answer;
  };
  const cluster = connection.kind === 'cluster';
  const slots = new Map<string, number>();
  for (let slot = 0; slot < 16_384; slot++) {
    const owner = connection.masterOf(slot);
    if (owner) slots.set(owner, (slots.get(owner) ?? 0) + 1);
  }
  const masters = await Promise.all(
    connection.masters().map(async (address) => {
      const ping = cluster ? await guard(address).ping() : { ms: percentile(pings, 0.5) };
      const answers = 'ms' in ping;
      const [counted, memory] = answers
        ? await Promise.all([
            countKeys(address, keys, on),
            ask(address, () => keys.memory(address)),
          ])
        : [null, null];
      const node: CacheNodeStatus = {
        address,
        state: answers ? guard(address).state : 'down',
        pingMs: answers ? round(ping.ms) : null,
        reason: 'error' in ping ? ping.error : null,
        slots: slots.get(address) ?? 0,
        dbKeys: counted?.size ?? null,
        keys: counted?.count ?? null,
      };
      return { node, counted, memory };
    }),
  );
  const totals = await ask(keys.statsAddress, () => keys.totals());
  const example = masters.find((m) => m.counted?.example)?.counted?.example;
  const oneKey = example ? await ask(keys.addressOf(example), () => keys.keyBytes(example)) : null;
  const counts = masters.map((m) => m.counted);
  const keyCount = counts.every(Boolean) ? counts.reduce((n, c) => n + (c?.count ?? 0), 0) : null;
  const memories = masters.map((m) => m.memory);
  const asked = totals ? totals.hits + totals.misses : 0;
  const shared: CacheShared = {
    repositoryId: cache.namespace,
    keys:
      keyCount === null
        ? null
        : {
            count: keyCount,
            method: counts.some((c) => c?.method === 'sampled') ? 'sampled' : 'counted',
            sampledKeys: counts.reduce((n, c) => n + (c?.sampledKeys ?? 0), 0),
          },
    keyBytes: keyCount !== null && oneKey ? keyCount * oneKey : null,
    memory: memories.every(Boolean)
      ? {
          usedBytes: memories.reduce((n, m) => n + (m?.usedBytes ?? 0), 0),
          maxBytes: memories.every((m) => m?.maxBytes)
            ? memories.reduce((n, m) => n + (m?.maxBytes ?? 0), 0)
            : null,
          policy: [...new Set(memories.map((m) => m?.policy))].join(', '),
          evictedKeys: memories.reduce((n, m) => n + (m?.evictedKeys ?? 0), 0),
        }
      : null,
    totals: totals
      ? { ...totals, hitRate: asked > 0 ? Math.round((totals.hits / asked) * 1000) / 1000 : null }
      : null,
    readAt: new Date().toISOString(),
  };
  return { shared, nodes: masters.map((m) => m.node) };
}

type Run = <T>(address: string | undefined, command: () => Promise<T>) => Promise<Answer<T>>;

/**
 * This repository's keys on one master: counted with a SCAN of its own keys when the database is
 * small enough; beyond that, estimated from the share of its keys in a sample of the keyspace.
 */
async function countKeys(
  address: string,
  keys: RedisClaims,
  on: Run,
): Promise<{
  count: number;
  size: number;
  method: 'counted' | 'sampled';
  sampledKeys: number;
  example?: string;
} | null> {
  const size = await on(address, () => keys.size(address));
  if (size === NO_ANSWER) return null;
  let cursor = '0';
  let example: string | undefined;
  if (size <= COUNT_LIMIT) {
    let count = 0;
    do {
      const page = await on(address, () => keys.scan(address, cursor));
      if (page === NO_ANSWER) return null;
      count += page.hashes.length;
      example ??= page.hashes[0];
      cursor = page.cursor;
    } while (cursor !== '0');
    return { count, size, method: 'counted', sampledKeys: size, ...(example ? { example } : {}) };
  }
  let seen = 0;
  let own = 0;
  do {
    const page = await on(address, () => keys.sample(address, cursor));
    if (page === NO_ANSWER) return null;
    seen += page.seen;
    own += page.own.length;
    example ??= page.own[0];
    cursor = page.cursor;
  } while (cursor !== '0' && seen < SAMPLE_KEYS);
  const whole = cursor === '0';
  return {
    count: whole ? own : Math.round((own / Math.max(seen, 1)) * size),
    size,
    method: whole ? 'counted' : 'sampled',
    sampledKeys: seen,
    ...(example ? { example } : {}),
  };
}
