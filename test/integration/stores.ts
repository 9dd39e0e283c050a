import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../electron/engine/log';
import { CachedStore, type CachedStoreOptions } from '../../electron/engine/storage/cached';
import { DiskStore } from '../../electron/engine/storage/disk';
import { LocalCopy } from '../../electron/engine/storage/packs/local-copy';
import { PackedStore } from '../../electron/engine/storage/packs/packed-store';
import { RedisConnection } from '../../electron/engine/storage/redis';
import { S3Store, type S3Options } from '../../electron/engine/storage/s3';
import type { BlobStore, Store } from '../../electron/engine/storage/store';
import { RedisServer } from '../harness/redis';
import { S3Server, TEST_CREDENTIALS, TEST_REGION } from '../harness/s3';

/** S3Store options for the harness's server (which counts requests). */
export function s3Options(s3: S3Server, extra: S3Options = {}): S3Options {
  return {
    endpoint: s3.endpoint,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 5,
    ...extra,
  };
}

export async function tempDir(
  prefix = 'tv-test-',
): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** What most integration suites run against: a real redis-server, an S3-protocol server, a folder. */
export interface TestServers {
  redis: RedisServer;
  s3: S3Server;
  work: { path: string; remove(): Promise<void> };
  stop(): Promise<void>;
}

/** Starts a suite's servers and folder together; stop() ends them (and start cleans up on failure). */
export async function startServers(prefix: string): Promise<TestServers> {
  const started = await Promise.allSettled([
    RedisServer.start(),
    S3Server.start(),
    tempDir(prefix),
  ]);
  const [redis, s3, work] = started.map((r) =>
    r.status === 'fulfilled' ? r.value : undefined,
  ) as [RedisServer | undefined, S3Server | undefined, TestServers['work'] | undefined];
  const stop = async () => {
    await Promise.all([redis?.dispose(), s3?.stop(), work?.remove()]);
  };
  const failed = started.find((r) => r.status === 'rejected');
  if (failed || !redis || !s3 || !work) {
    await stop();
    throw (
      (failed as PromiseRejectedResult | undefined)?.reason ??
      new Error('test servers did not start')
    );
  }
  return { redis, s3, work, stop };
}

/** A logger that keeps the warnings it is given (the rest it drops), for tests that read them. */
export function warningLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = {
    debug() {},
    info() {},
    error() {},
    warn: (message: string) => warnings.push(message),
  } as unknown as Logger;
  return { logger, warnings };
}

export async function diskStore(): Promise<{
  store: DiskStore;
  path: string;
  dispose(): Promise<void>;
}> {
  const dir = await tempDir('tv-disk-');
  const store = new DiskStore(dir.path);
  return {
    store,
    path: dir.path,
    dispose: async () => {
      await store.close();
      await dir.remove();
    },
  };
}

/**
 * The pack layer over a blob store, as a repository of format 3 composes it: small packs for
 * tests, and for a remote store a local copy of the index in its own temp folder.
 */
export function packedStore(
  blobs: BlobStore,
  options: {
    packBytes?: number;
    packsInFlight?: number;
    cacheDir?: string;
    repositoryId?: string;
    sparseSealMs?: number;
  } = {},
): PackedStore {
  return new PackedStore(blobs, {
    packBytes: options.packBytes ?? 256 * 1024,
    packsInFlight: options.packsInFlight ?? 2,
    ...(options.sparseSealMs !== undefined ? { sparseSealMs: options.sparseSealMs } : {}),
    ...(blobs.remote && options.cacheDir
      ? {
          localCopy: new LocalCopy(
            options.cacheDir,
            options.repositoryId ?? 'test-repository',
            blobs.location,
          ),
        }
      : {}),
  });
}

export function s3Store(s3: S3Server, prefix: string, extra: S3Options = {}): S3Store {
  return new S3Store({ bucket: s3.bucket, prefix }, s3Options(s3, extra));
}

/** The cache key of an object, as docs/format.md writes it (the same on one server and a cluster). */
export function cacheKey(namespace: string, hash: string): string {
  return `tv:obj:{${namespace}:${hash.slice(0, 2)}}:${hash}`;
}

/** A CachedStore over a backend with a connection of its own to Redis; fast probe for tests. */
export async function cachedStore(
  backend: Store,
  redisUrl: string,
  options: Partial<CachedStoreOptions> = {},
): Promise<{ store: CachedStore; dispose(): Promise<void> }> {
  const store = new CachedStore(backend, new RedisConnection(redisUrl), {
    namespace: 'repo-a',
    probeIntervalMs: 50,
    degradedWindowMs: 300,
    startupMs: 2_000,
    ...options,
  });
  return { store, dispose: () => store.close() };
}

/** Flips one bit of a file in place, as a failing disk might. */
export async function flipInFile(file: string, at: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0x01;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}
