import { Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { CacheStatus } from '../../../shared/types';
import { explainCacheError } from '../cache-errors';
import { bytes } from '../format';
import { useApp } from '../store';

/** Hit rate over the last minute (one sample a second), from the status events. */
function HitRateChart({ history }: { history: CacheStatus[] }) {
  const points = history.map((h, i) => {
    const prev = history[i - 1];
    const hits = prev ? h.hits - prev.hits : 0;
    const asked = prev ? h.hits + h.misses - prev.hits - prev.misses : 0;
    return { t: i - history.length + 1, rate: asked > 0 ? Math.round((100 * hits) / asked) : null };
  });
  if (!points.some((p) => p.rate !== null))
    return <span className="muted">no existence checks in the last minute</span>;
  return (
    <div style={{ width: 320, height: 90 }} data-testid="hit-rate-chart">
      <ResponsiveContainer>
        <LineChart data={points} margin={{ top: 4, right: 8, bottom: 0, left: 0 }}>
          <XAxis
            dataKey="t"
            ticks={[-60, -30, 0]}
            tickFormatter={(t: number) => (t === 0 ? 'now' : `${t}s`)}
            type="number"
            domain={[-60, 0]}
          />
          <YAxis
            domain={[0, 100]}
            ticks={[0, 50, 100]}
            tickFormatter={(v: number) => `${v}%`}
            width={40}
          />
          <Tooltip
            formatter={(v) => `${String(v)}% hits`}
            labelFormatter={(t) => `${String(t)} s`}
          />
          <Line
            dataKey="rate"
            stroke="#3a6ff7"
            dot={false}
            isAnimationActive={false}
            connectNulls={false}
          />
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}

/** S3 standard GET/HEAD price per request (USD), to show what the cache saves. */
const PRICE_PER_REQUEST = 0.0004 / 1000;

export function CacheLight({ status }: { status: CacheStatus | undefined }) {
  // Unknown until the repository is open (a new installation has none before its first push).
  const state = status?.state ?? 'unknown';
  return (
    <span className={`light ${state}`} data-testid="cache-light" title={`Redis cache: ${state}`}>
      <i /> cache {state}
    </span>
  );
}

function Sparkline({ values }: { values: number[] }) {
  if (values.length < 2) return <span className="muted">no samples yet</span>;
  const max = Math.max(...values, 0.001);
  const points = values
    .map((v, i) => `${(i / (values.length - 1)) * 200},${40 - (v / max) * 38}`)
    .join(' ');
  return (
    <svg width="200" height="40" role="img" aria-label="Redis latency, recent commands">
      <polyline points={points} fill="none" stroke="currentColor" strokeWidth="1.5" />
    </svg>
  );
}

/** Each master of a cluster: its state, PING, slots and this repository's keys on it. */
function Masters({ status }: { status: CacheStatus }) {
  return (
    <table className="masters" data-testid="cache-masters">
      <thead>
        <tr>
          <th>Master</th>
          <th>State</th>
          <th>PING</th>
          <th>Slots</th>
          <th>Keys (this repository)</th>
        </tr>
      </thead>
      <tbody>
        {status.nodes.map((n) => (
          <tr key={n.address}>
            <td>{n.address}</td>
            <td>
              <span className={`light ${n.state}`} title={n.reason ?? undefined}>
                <i /> {n.state}
              </span>
            </td>
            <td>{n.pingMs !== null ? `${n.pingMs} ms` : '-'}</td>
            <td>{n.slots.toLocaleString()}</td>
            <td>{n.keys !== null ? n.keys.toLocaleString() : '-'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function CacheHealth() {
  const { cache, info, cacheHistory } = useApp();
  if (!cache) return <p className="muted pad">Reading cache health…</p>;
  const asked = cache.hits + cache.misses;
  const shared = cache.shared;
  const totals = shared?.totals;
  return (
    <div className="cache" data-testid="cache-health">
      <h2>
        Cache health <CacheLight status={cache} />
      </h2>
      {cache.state === 'disabled' ? (
        <p className="muted">
          No Redis configured: every existence check goes to the storage backend. Set TV_REDIS_URL
          (or --redis) to share a cache with your team.
        </p>
      ) : (
        <>
          {cache.reason && (
            <p className={cache.state === 'down' ? 'error' : 'muted'} data-testid="cache-reason">
              {cache.reason}
            </p>
          )}
          <dl className="figures-grid">
            <dt>Redis</dt>
            <dd data-testid="cache-redis">
              {cache.redis}
              {cache.kind === 'cluster'
                ? ` (a Redis Cluster of ${cache.nodes.length} masters)`
                : ' (one server)'}
            </dd>
            <dt>Latency</dt>
            <dd>
              {cache.pingMs !== null ? `PING ${cache.pingMs} ms · ` : ''}
              {cache.latencyMs
                ? `p50 ${cache.latencyMs.p50} ms · p99 ${cache.latencyMs.p99} ms`
                : '-'}
              {cache.commandTimeoutMs !== null ? ` · timeout ${cache.commandTimeoutMs} ms` : ''}{' '}
              <Sparkline values={cache.recentLatencyMs} />
            </dd>
            <dt>This repository&apos;s keys</dt>
            <dd data-testid="cache-keys">
              {shared?.keys
                ? `${shared.keys.count.toLocaleString()} (${shared.keys.method === 'counted' ? 'counted' : 'estimated from a sample'})${shared.keyBytes ? `, about ${bytes(shared.keyBytes)}` : ''}`
                : '-'}
            </dd>
            <dt>Redis memory</dt>
            <dd>
              {shared?.memory
                ? `${bytes(shared.memory.usedBytes)} used, ${shared.memory.maxBytes ? `limit ${bytes(shared.memory.maxBytes)}` : 'no limit'} (${shared.memory.policy}), ${shared.memory.evictedKeys} keys evicted`
                : '-'}
            </dd>
            <dt>Team hit rate</dt>
            <dd data-testid="cache-team">
              {totals && totals.hitRate !== null
                ? `${Math.round(100 * totals.hitRate)}% of ${(totals.hits + totals.misses).toLocaleString()} checks since ${new Date(totals.since).toLocaleDateString()} (every client, kept in Redis)`
                : '-'}
            </dd>
            <dt>Backend calls avoided</dt>
            <dd>
              {totals
                ? `${totals.hits.toLocaleString()} by the team (about $${(totals.hits * PRICE_PER_REQUEST).toFixed(4)} in S3 requests)`
                : '-'}
            </dd>
            <dt>This app</dt>
            <dd>
              {asked > 0
                ? `${Math.round((100 * cache.hits) / asked)}% hits (${cache.hits} of ${asked}), ${cache.backfills} backfilled, ${cache.fallbacks} fallbacks`
                : 'no checks yet'}
            </dd>
            <dt>Hit rate, last minute</dt>
            <dd>
              <HitRateChart history={cacheHistory} />
            </dd>
            {cache.kind === 'cluster' && (
              <>
                <dt>Masters</dt>
                <dd>
                  <Masters status={cache} />
                </dd>
                <dt>Failovers</dt>
                <dd data-testid="cache-failovers">
                  {cache.failovers.length > 0
                    ? cache.failovers
                        .map(
                          (f) =>
                            `${new Date(f.at).toLocaleTimeString()}: ${f.slots} slots from ${f.from} to ${f.to}`,
                        )
                        .join(' · ')
                    : 'none seen'}
                </dd>
              </>
            )}
            <dt>Last error</dt>
            <dd data-testid="cache-error">
              {cache.lastError ? (
                <span>
                  {explainCacheError(cache.lastError, cache.redis, cache.kind)}
                  <br />
                  <span className="muted">({cache.lastError})</span>
                </span>
              ) : (
                'none'
              )}
            </dd>
            <dt>Since</dt>
            <dd>{cache.since ? new Date(cache.since).toLocaleTimeString() : '-'}</dd>
          </dl>
        </>
      )}
      <p className="muted">Storage backend: {info?.repository}</p>
    </div>
  );
}
