import type { CacheStatus } from '../../shared/types';
import { formatBytes } from './format';

const count = (n: number) => n.toLocaleString('en-US');

/** `tv cache status` for a person: the state and why, then what Redis says about the shared cache. */
export function formatCacheStatus(status: CacheStatus): string {
  if (status.state === 'disabled')
    return 'cache: disabled (no Redis configured: --redis or TV_REDIS_URL)';
  if (status.state === 'down')
    return [
      `cache: down (${status.redis}): ${status.reason ?? status.lastError ?? 'Redis did not answer'}`,
      '  pushes ask the storage backend about every chunk until Redis is back',
    ].join('\n');
  const head = [
    `cache: ${status.state} (${status.redis})`,
    status.pingMs !== null ? `PING ${status.pingMs} ms` : undefined,
    status.commandTimeoutMs !== null ? `command timeout ${status.commandTimeoutMs} ms` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  const lines = [status.reason ? `${head}: ${status.reason}` : head];
  const shared = status.shared;
  if (!shared) return lines.join('\n');
  const keys = shared.keys;
  lines.push(
    `  this repository (${shared.repositoryId}): ${
      keys
        ? `${count(keys.count)} keys (${keys.method === 'counted' ? 'counted' : `estimated from a sample of ${count(keys.sampledKeys)} keys`})${shared.keyBytes ? `, about ${formatBytes(shared.keyBytes)}` : ''}`
        : 'keys not counted (Redis did not answer)'
    }`,
  );
  const memory = shared.memory;
  if (memory)
    lines.push(
      `  Redis: ${formatBytes(memory.usedBytes)} used, ${
        memory.maxBytes ? `limit ${formatBytes(memory.maxBytes)}` : 'no memory limit'
      } (policy ${memory.policy}), ${count(memory.evictedKeys)} keys evicted`,
    );
  const totals = shared.totals;
  lines.push(
    totals
      ? `  kept in Redis by every client since ${totals.since.replace('T', ' ').slice(0, 16)} UTC: ${count(totals.hits + totals.misses)} checks, ${
          totals.hitRate === null ? 'no hits yet' : `${(totals.hitRate * 100).toFixed(1)}% hits`
        }, ${count(totals.backfills)} misses found in the backend and written back, ${count(totals.uploads)} keys written after uploads, ${count(totals.fallbacks)} fallbacks to the backend`
      : '  kept in Redis by every client: no figures yet (no push has used this cache)',
  );
  return lines.join('\n');
}
