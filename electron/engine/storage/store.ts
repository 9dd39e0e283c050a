import type { Readable } from 'node:stream';
import { isHashHex } from '../hashing';

/**
 * The storage interface every backend and decorator implements. Keys are relative paths:
 * content-addressed objects live at `objects/<first two hex>/<hash>` (see objectKey); other
 * keys (the repository config, refs) are plain paths of safe segments.
 */
export interface Store {
  /** For messages: where this store keeps its objects ("/data/repo", "s3://bucket/prefix"). */
  readonly location: string;
  /**
   * False where a put is durable (and, for packed folders, visible to other processes) only once
   * flush returns: a cache above must not claim the object before. Absent means true.
   */
  readonly durableOnPut?: boolean;
  has(key: string): Promise<boolean>;
  /** Existence of many keys, answers in the same order: batched where the backend allows. */
  hasMany(keys: readonly string[]): Promise<boolean[]>;
  /**
   * Stores the bytes under the key; never leaves a half-written object. Keeps no reference to
   * `data` once the returned promise settles (the caller may reuse the buffer).
   */
  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void>;
  /** The object's bytes as a stream; ObjectNotFoundError when absent. */
  get(key: string): Promise<Readable>;
  /** Removes the object; removing an absent object is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with the prefix, in no particular order. */
  list(prefix: string): AsyncIterable<ListEntry>;
  /**
   * Makes every put so far durable (fsync on disk). The repository calls it before it writes
   * the ref that makes a version visible. Backends that acknowledge durably do nothing.
   */
  flush(): Promise<void>;
  /** Releases sockets and connections. */
  close(): Promise<void>;
  /** Retries after throttling so far, where the backend throttles (S3); decorators pass it on. */
  retries?(): RetryStats | undefined;
}

/** What a backend retried because it was told to slow down (S3's 503 SlowDown). */
export interface RetryStats {
  /** Requests retried after a throttling answer, since the store was opened. */
  throttled: number;
  /** When the last throttling answer came (Date.now()); null before the first. */
  lastThrottledAt: number | null;
}

export interface PutOptions {
  /** The data's sha256 (hex), when known: lets the backend verify the upload (S3 ChecksumSHA256). */
  sha256?: string;
}

export interface ListEntry {
  key: string;
  size: number;
  /** Last modification, where the backend knows it. */
  modified?: Date;
}

export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class ObjectNotFoundError extends StoreError {
  override name = 'ObjectNotFoundError';
  constructor(
    readonly key: string,
    location: string,
  ) {
    super(`object ${key} is not in ${location}`, 'NOT_FOUND');
  }
}

export const OBJECTS_PREFIX = 'objects/';

/** The key of a content-addressed object; throws a clear error for a malformed hash. */
export function objectKey(hash: string): string {
  if (!isHashHex(hash)) {
    const text = String(hash);
    throw new StoreError(
      `malformed object hash "${text.length > 80 ? `${text.slice(0, 80)}…` : text}": expected 64 lowercase hex characters`,
      'BAD_HASH',
    );
  }
  return `${OBJECTS_PREFIX}${hash.slice(0, 2)}/${hash}`;
}

/** The hash of an object key, or undefined for keys that are not content-addressed objects. */
export function hashOfKey(key: string): string | undefined {
  // One regular expression over the whole key, then one slice: the cache reads every key of a
  // push, and this measured faster than a loop over character codes or a test of the slice.
  return OBJECT_KEY.test(key) ? key.slice(OBJECTS_PREFIX.length + 3) : undefined;
}

/** objects/<first two hex>/<64 lowercase hex>, the first two repeated. */
const OBJECT_KEY = /^objects\/([0-9a-f]{2})\/\1[0-9a-f]{62}$/;

const SEGMENT = /^[\p{L}\p{N}._@+=,-]+$/u;

/** Checks a key is a relative path of safe segments: no empty, ".", ".." or absolute parts. */
export function validateKey(key: string): string {
  const segments = key.split('/');
  const ok =
    key.length > 0 &&
    key.length <= 900 &&
    segments.every((s) => s.length > 0 && s !== '.' && s !== '..' && SEGMENT.test(s));
  if (!ok) throw new StoreError(`invalid storage key "${key}"`, 'BAD_KEY');
  return key;
}

/** Reads a whole object into memory (for small objects: manifests, versions, config). */
export async function readAll(store: Store, key: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of await store.get(key)) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
