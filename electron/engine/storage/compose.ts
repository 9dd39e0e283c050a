import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger, type Logger } from '../log';
import { CachedStore, type CachedStoreOptions } from './cached';
import { DiskStore } from './disk';
import type { S3Options } from './s3';
import { StoreError, type Store } from './store';

export interface StorageConfig {
  /** A path, a file:// URL or s3://bucket/prefix. */
  repository: string;
  /** redis://...; none means no cache. */
  redisUrl?: string | undefined;
  s3?: S3Options;
  cache?: Omit<CachedStoreOptions, 'namespace' | 'logger'>;
  logger?: Logger;
}

export interface StorageStack {
  /** What everything above the storage layer uses. */
  store: Store;
  /** The backend alone (verify asks it, never the cache). */
  backend: Store;
  /** The cache decorator, when Redis is configured. */
  cache: CachedStore | undefined;
  close(): Promise<void>;
}

export type RepositoryLocation = { kind: 'disk'; path: string } | { kind: 's3'; url: string };

/** Reads a repository location: a path (~ expanded), file:// URL, or s3://bucket/prefix. */
export function parseLocation(repository: string): RepositoryLocation {
  const text = repository.trim();
  if (text.startsWith('s3://')) return { kind: 's3', url: text };
  if (text.startsWith('file://')) return { kind: 'disk', path: fileURLToPath(text) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new StoreError(
      `unsupported repository location "${text}": use a folder path, file:// or s3://bucket/prefix`,
      'BAD_LOCATION',
    );
  }
  if (text === '')
    throw new StoreError(
      'empty repository location: give a folder path or s3://bucket/prefix',
      'BAD_LOCATION',
    );
  const expanded = text === '~' || text.startsWith('~/') ? join(homedir(), text.slice(1)) : text;
  return { kind: 'disk', path: isAbsolute(expanded) ? expanded : resolve(expanded) };
}

/** The storage backend for a location, checked (bucket exists, credentials accepted). */
export async function openBackend(repository: string, s3?: S3Options): Promise<Store> {
  const location = parseLocation(repository);
  if (location.kind === 'disk') return new DiskStore(location.path);
  // The AWS SDK loads only for S3 repositories: a local one starts faster without it.
  const { parseS3Url, S3Store } = await import('./s3');
  const store = new S3Store(parseS3Url(location.url), s3);
  try {
    await store.check();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/**
 * The one place that knows the store stack: backend, then (with Redis) the existence cache bound
 * to the repository id. Nothing else composes stores.
 */
export async function composeStack(
  backend: Store,
  config: StorageConfig,
  repositoryId: string,
): Promise<StorageStack> {
  if (!config.redisUrl) {
    return { store: backend, backend, cache: undefined, close: () => backend.close() };
  }
  // ioredis loads only when a cache is configured. Nothing connects yet: a command that needs no
  // cache (log, models, pull) never touches Redis; the first that does connects, or gives up
  // within the start-up budget and goes on without it.
  const { RedisConnection } = await import('./redis');
  const connection = new RedisConnection(config.redisUrl);
  const cache = new CachedStore(backend, connection, {
    ...config.cache,
    namespace: repositoryId,
    logger: config.logger ?? silentLogger,
  });
  return {
    store: cache,
    backend,
    cache,
    close: () => cache.close(),
  };
}
