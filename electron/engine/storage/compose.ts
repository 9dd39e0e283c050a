import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger, type Logger } from '../log';
import type { CachedStore, CachedStoreOptions } from './cached';
import { DiskStore } from './disk';
import { CatalogSnapshotFile } from './packs/catalog-snapshot';
import { LocalCopy, repositoryCacheDir } from './packs/local-copy';
import { PackedStore } from './packs/packed-store';
import type { S3Options } from './s3';
import { StoreError, type BlobStore, type Store } from './store';

export interface StorageConfig {
  /** A path, a file:// URL or s3://bucket/prefix. */
  repository: string;
  /** redis://...; none means no cache. */
  redisUrl?: string | undefined;
  s3?: S3Options;
  cache?: Omit<CachedStoreOptions, 'namespace' | 'logger'>;
  logger?: Logger;
  /** The user's cache folder: the local copy of a remote repository's index lives there. */
  cacheDir: string;
}

/** How a repository keeps its objects (from its config). */
export interface ObjectLayout {
  repositoryId: string;
  /** 1: a blob per object; 2: folder packs (read only); 3: packs and index objects. */
  format: number;
  /** Bytes at which a pack is sealed (format 3). */
  packSize: number;
}

export interface StorageStack {
  /** What everything above the storage layer uses. */
  store: Store;
  /** The objects without the cache: the pack layer, or (format 1) the blob store. */
  backend: Store;
  /** The blob store: a folder or a bucket. */
  blobs: BlobStore;
  /** The pack layer (formats 2 and 3). */
  packs: PackedStore | undefined;
  /** The cache decorator, when Redis is configured. */
  cache: CachedStore | undefined;
  close(): Promise<void>;
}

/**
 * Packs open or uploading at once for a pack size. On S3 each is held in memory until its upload
 * ends: about 32 MiB in all, and at least two (one filling while one uploads). With eight 16 MiB
 * packs a 4 GiB push peaked at 419 MB of RSS (target < 300); with two, 303 MB for 1 GiB, and the
 * cold push at 30 ms stayed 2.7x the blob-per-chunk one (bench, --quick, at load 8).
 */
export function packsInFlight(packSize: number, remote: boolean): number {
  if (!remote) return 2;
  return Math.max(2, Math.min(8, Math.floor((32 << 20) / packSize)));
}

/**
 * On a bucket, a pack that new objects only trickle into (a push that finds most of its chunks
 * stored) is sealed this long after it opened, not when full, so that its upload overlaps the
 * rest of the push instead of following its last chunk (PackWriter.passedOver).
 */
const SPARSE_SEAL_MS = 250;

/** The pack layer over a blob store, for a repository format that has one. */
function packLayer(
  blobs: BlobStore,
  layout: ObjectLayout,
  cacheDir: string,
): PackedStore | undefined {
  if (layout.format < 2) return undefined;
  const owner = { repositoryId: layout.repositoryId, location: blobs.location };
  const common = {
    packBytes: layout.packSize,
    packsInFlight: packsInFlight(layout.packSize, blobs.remote),
    snapshot: new CatalogSnapshotFile(
      join(repositoryCacheDir(cacheDir, owner.repositoryId, owner.location), 'catalog'),
      owner,
    ),
  };
  if (layout.format === 2)
    return new PackedStore(blobs, {
      ...common,
      readOnly: `${blobs.location} is a repository of format 2, which this version reads but does not write: run \`tv upgrade\` to move it to format 3 (TensorVault versions before format 3 cannot open it afterwards)`,
      unindexedLoose: true,
    });
  return new PackedStore(blobs, {
    ...common,
    ...(blobs.remote
      ? {
          localCopy: new LocalCopy(cacheDir, layout.repositoryId, blobs.location),
          sparseSealMs: SPARSE_SEAL_MS,
        }
      : {}),
  });
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
  // "s3:/bucket" is a URL mistyped, not a folder "s3:" to create here (one letter and a colon
  // is a Windows drive; ./s3:/x names such a folder).
  const scheme = /^([a-z][a-z0-9+.-]+):(?!\/\/)/i.exec(text)?.[1];
  if (scheme && scheme.toLowerCase() !== 'file')
    throw new StoreError(
      `repository location "${text}" looks like a URL without "//" after "${scheme}:": write ${scheme.toLowerCase() === 's3' ? 's3://bucket/prefix' : 'a folder path, file:// or s3://bucket/prefix'} (a folder of that name: ./${text})`,
      'BAD_LOCATION',
    );
  if (text === '')
    throw new StoreError(
      'empty repository location: give a folder path or s3://bucket/prefix',
      'BAD_LOCATION',
    );
  const expanded = text === '~' || text.startsWith('~/') ? join(homedir(), text.slice(1)) : text;
  return { kind: 'disk', path: isAbsolute(expanded) ? expanded : resolve(expanded) };
}

/** The blob store for a location, checked (bucket exists, credentials accepted). */
export async function openBackend(repository: string, s3?: S3Options): Promise<BlobStore> {
  const { store, checked } = await openBackendChecking(repository, s3);
  try {
    await checked;
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/**
 * The blob store for a location, its check (bucket exists, credentials accepted) under way
 * alongside the caller's first read rather than before it: one round trip less for every command
 * on S3. `checked` rejects with the clear error (no such bucket, credentials refused, no answer);
 * a caller whose first read fails awaits it before saying anything else.
 */
export async function openBackendChecking(
  repository: string,
  s3?: S3Options,
): Promise<{ store: BlobStore; checked: Promise<void> }> {
  const location = parseLocation(repository);
  if (location.kind === 'disk')
    return { store: new DiskStore(location.path), checked: Promise.resolve() };
  // The AWS SDK loads only for S3 repositories: a local one starts faster without it.
  const { parseS3Url, S3Store } = await import('./s3');
  const store = new S3Store(parseS3Url(location.url), s3);
  const checked = store.check();
  checked.catch(() => {}); // the caller awaits it where it matters
  return { store, checked };
}

/**
 * The one place that knows the store stack: the blob store, the pack layer its format calls for,
 * then (with Redis) the existence cache bound to the repository id. Nothing else composes stores.
 */
export async function composeStack(
  blobs: BlobStore,
  config: StorageConfig,
  layout: ObjectLayout,
): Promise<StorageStack> {
  const repositoryId = layout.repositoryId;
  const packs = packLayer(blobs, layout, config.cacheDir);
  const backend: Store = packs ?? blobs;
  if (!config.redisUrl) {
    return {
      store: backend,
      backend,
      blobs,
      packs,
      cache: undefined,
      close: () => backend.close(),
    };
  }
  // ioredis (and the cache, which needs it) loads only when a cache is configured. Nothing connects yet: a command that needs no
  // cache (log, models, pull) never touches Redis; the first that does connects, or gives up
  // within the start-up budget and goes on without it.
  const [{ RedisConnection }, { CachedStore }] = await Promise.all([
    import('./redis'),
    import('./cached'),
  ]);
  const connection = new RedisConnection(config.redisUrl, { logger: config.logger });
  const cache = new CachedStore(backend, connection, {
    ...config.cache,
    namespace: repositoryId,
    logger: config.logger ?? silentLogger,
  });
  return {
    store: cache,
    backend,
    blobs,
    packs,
    cache,
    close: () => cache.close(),
  };
}
