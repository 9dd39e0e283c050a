import { Redis } from 'ioredis';
import { redactUrl } from '../log';
import { StoreError } from './store';

/** Redis settings for an existence cache: fail fast, never queue, reconnect on its own. */
export function createRedisClient(
  url: string,
  options: { commandTimeoutMs?: number; lazy?: boolean } = {},
): Redis {
  if (!/^rediss?:\/\//.test(url)) {
    throw new StoreError(
      `cannot read the Redis URL "${redactUrl(url)}": expected redis://host:port or rediss://host:port`,
      'BAD_REDIS_URL',
    );
  }
  const client = new Redis(url, {
    // A slow Redis counts as a failing one: the cache must never make a check slower than S3.
    commandTimeout: options.commandTimeoutMs ?? 100,
    connectTimeout: 2_000,
    // While disconnected, commands fail at once (the cache falls back) instead of queueing.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
    enableAutoPipelining: true,
    lazyConnect: options.lazy ?? false,
  });
  // Connection errors surface through the commands that fail; the cache reports them once.
  client.on('error', () => {});
  return client;
}

/** Waits until the client is ready, up to `ms`. */
export function waitReady(client: Redis, ms: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), ms);
    const onReady = () => finish(true);
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    };
    client.on('ready', onReady);
  });
}
