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
    `cache: ${status.state} (${status.redis}${status.kind === 'cluster' ? `, a Redis Cluster of ${status.nodes.length} masters` : ''})`,
    status.pingMs !== null ? `PING ${status.pingMs} ms` : undefined,
    status.commandTimeoutMs !== null ? `command timeout ${status.commandTimeoutMs} ms` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  const lines = [status.reason ? `${head}: ${status.reason}` : head];
  if (status.kind === 'cluster') lines.push(...formatMasters(status));
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

/** A line per master of a cluster, then the slot moves (failovers) this process saw. */
function formatMasters(status: CacheStatus): string[] {
  const width = Math.max(...status.nodes.map((n) => n.address.length));
  const lines = status.nodes.map((n) =>
    [
      `  master ${n.address.padEnd(width)}  ${n.state.padEnd(8)}`,
      n.state === 'down'
        ? (n.reason ?? 'no answer')
        : [
            n.pingMs !== null ? `PING ${n.pingMs} ms` : undefined,
            `${count(n.slots)} slots`,
            n.keys !== null ? `${count(n.keys)} keys of this repository` : undefined,
            n.dbKeys !== null ? `${count(n.dbKeys)} in all` : undefined,
          ]
            .filter(Boolean)
            .join(', '),
    ].join(''),
  );
  for (const f of status.failovers)
    lines.push(
      `  failover at ${f.at.replace('T', ' ').slice(0, 19)} UTC: ${count(f.slots)} slots moved from ${f.from} to ${f.to}`,
    );
  return lines;
}
