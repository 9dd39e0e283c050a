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
  /**
   * For a store whose puts become durable later than they return (packs: when the pack and its
   * index object are): tells the listener which objects just became durable. A cache above
   * claims them then, never before. Returns the unsubscribe function.
   */
  onDurable?(listener: (hashes: string[]) => void): () => void;
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
  /**
   * Every object whose key starts with the prefix, in no particular order; with `startAfter`,
   * only the keys that sort after it (S3's StartAfter: a listing of names that sort by time need
   * not go over the old ones).
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<ListEntry>;
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

export interface ListOptions {
  startAfter?: string;
  /** Only the keys are wanted: a store may leave size at 0 and modified unset (no stat per file). */
  keysOnly?: boolean;
}

export interface PutOptions {
  /** The data's sha256 (hex), when known: lets the backend verify the upload (S3 ChecksumSHA256). */
  sha256?: string;
  /**
   * Keep the object as a blob of its own (objects/<h[0:2]>/<h>), readable by its key without any
   * index: manifests and version records. Chunks go to packs where the store has them.
   */
  loose?: boolean;
  /**
   * `data` is the object's stored bytes in a pack encoding (docs/format.md, "Encodings"), of an
   * object of `length` bytes: the chunk-and-hash workers compress chunks of a repository that
   * asks for it. Only a pack layer takes it (format 3); others refuse it.
   */
  encoded?: { encoding: number; length: number };
}

/**
 * A Store of named blobs, as the pack layer (storage/packs) uses it: besides whole objects, byte
 * ranges of a blob and blobs written piece by piece. The folder and S3 backends are blob stores.
 */
export interface BlobStore extends Store {
  /**
   * True where every request crosses a network (S3): the pack layer keeps a copy of the index
   * objects in the user's cache folder. A folder is its own local copy.
   */
  readonly remote: boolean;
  /** Bytes [offset, offset + length) of a blob: ObjectNotFoundError when absent, an error if short. */
  getRange(key: string, offset: number, length: number): Promise<Buffer>;
  /**
   * The same bytes handed to `sink` piece by piece as they arrive, each with its position from
   * `offset`: a reader that scatters them where they belong copies each byte once and holds no
   * buffer of the range. Every byte is handed over exactly once, or this throws.
   */
  readRange(key: string, offset: number, length: number, sink: RangeSink): Promise<void>;
  /** A blob written piece by piece; it appears under its key whole, once finished, or never. */
  createWriter(key: string, options?: WriterOptions): BlobWriter;
  /** The file holding a blob, for a store in a local folder (readers in worker threads). */
  localPath?(key: string): string;
  /**
   * The store's own clock, in ms since 1970, as its last answers told it (S3's Date header): names
   * that sort by time come from it, so workstations whose clocks differ still agree on the order.
   */
  now(): number;
}

export type RangeSink = (piece: Uint8Array, at: number) => void;

export interface WriterOptions {
  /** The size the blob will most likely reach (an S3 writer sizes its buffer by it). */
  expectedBytes?: number;
}

export interface BlobWriter {
  /** Bytes appended so far. */
  readonly size: number;
  /** Appends bytes; resolves once the caller may reuse `data`. */
  append(data: Uint8Array): Promise<void>;
  /**
   * Bytes appended before (a writer serves reads of its own blob until it is finished). An S3
   * writer holds only the parts not yet uploaded: an error with code NOT_BUFFERED for the rest.
   */
  read(offset: number, length: number): Promise<Buffer>;
  /** Makes the blob durable under its key: a reader that finds the key finds all of it. */
  finish(): Promise<void>;
  /** Gives the blob up: nothing appears under its key. */
  abort(): Promise<void>;
}

export function isBlobStore(store: Store): store is BlobStore {
  return typeof (store as Partial<BlobStore>).getRange === 'function';
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
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}
