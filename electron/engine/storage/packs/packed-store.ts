import { Readable } from 'node:stream';
import { mapLimit } from '../../concurrency';
import {
  hashOfKey,
  ObjectNotFoundError,
  objectKey,
  OBJECTS_PREFIX,
  StoreError,
  type BlobStore,
  type ListEntry,
  type ListOptions,
  type PutOptions,
  type RangeSink,
  type RetryStats,
  type Store,
} from '../store';
import { Catalog } from './catalog';
import { codecFor, decodeObject, EncodingError } from './codec';
import { ENCODING_NONE, KNOWN_ENCODINGS, looseRecord, type ObjectRecord } from './format';
import { IndexSync } from './index-sync';
import type { CatalogSnapshotFile } from './catalog-snapshot';
import type { LocalCopy } from './local-copy';
import { rewrite } from './maintenance';
import { PackWriter } from './writer';

export interface PackedStoreOptions {
  /** A pack is sealed once it holds this many bytes. */
  packBytes: number;
  /** Packs open or being made durable at once (on S3 each is held in memory until uploaded). */
  packsInFlight: number;
  /** Seal a pack this long after it opened while new objects trickle in (PackWriterOptions). */
  sparseSealMs?: number;
  /** Where a remote store's index objects are kept between runs. */
  localCopy?: LocalCopy;
  /** Where the catalog is kept between processes. */
  snapshot?: CatalogSnapshotFile;
  /** Why objects cannot be written (a format 2 repository, read until it is upgraded). */
  readOnly?: string;
  /** Objects no index names may still be loose blobs (format 2: objects from before packs). */
  unindexedLoose?: boolean;
}

/** Where an object's bytes lie. */
export interface Located {
  key: string;
  offset: number;
  storedLength: number;
  length: number;
  encoding: number;
  /** The pack's file, for a store in a local folder. */
  file?: string;
}

/**
 * Existence answers and puts use a sync of the index no older than this. Safe beside gc: gc
 * condemns an object a grace period (hours) before it removes it, and a push relies on no
 * condemned copy (docs/format.md).
 */
const FRESH_MS = 30_000;
/** Objects that lie this close together in a pack are read with one request, gap included. */
const MAX_GAP = 1 << 20;
/** At most this many bytes per ranged read. */
const MAX_RUN = 16 << 20;

/**
 * The pack layer: a Store whose content-addressed objects live in packs over a blob store (a
 * folder or a bucket), described by index objects (docs/format.md, format 3); other keys
 * (config, refs) are the blob store's own. Chunks go to packs; manifests and version records
 * (`{ loose: true }`) are blobs of their own, read without any index, and named in the index
 * too. Existence answers come from the index (the Catalog, kept current by IndexSync), never from
 * a request per object.
 */
export class PackedStore implements Store {
  /** Puts are durable, and visible to other clients, once flushed (or their pack sealed). */
  readonly durableOnPut = false;
  readonly catalog = new Catalog();
  readonly sync: IndexSync;
  readonly writer: PackWriter;
  private readonly listeners = new Set<(hashes: string[]) => void>();
  /** Loose objects written and not yet named by an index object. */
  /** Loose objects put and not yet named by an index; `stored`: whether their write succeeded. */
  private loose = new Map<string, { length: number; stored: Promise<boolean> }>();
  /** Objects being deleted: not announced as durable on their way out. */
  private readonly deleting = new Set<string>();

  constructor(
    readonly blobs: BlobStore,
    private readonly options: PackedStoreOptions,
  ) {
    this.sync = new IndexSync(
      blobs,
      this.catalog,
      blobs.remote ? options.localCopy : undefined,
      options.readOnly !== undefined,
      options.snapshot,
    );
    this.writer = new PackWriter(
      blobs,
      this.sync,
      {
        packBytes: options.packBytes,
        packsInFlight: options.packsInFlight,
        ...(options.sparseSealMs !== undefined ? { sparseSealMs: options.sparseSealMs } : {}),
      },
      (hashes) => this.emit(hashes),
    );
  }

  get location(): string {
    return this.blobs.location;
  }

  /** The blob store's retries after throttling (S3): a push's progress says when it is slowed. */
  retries(): RetryStats | undefined {
    return this.blobs.retries?.();
  }

  /**
   * Hears of objects once they are durable and named by an index object (the cache claims them
   * then, never before). Returns the unsubscribe function.
   */
  onDurable(listener: (hashes: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(hashes: string[]): void {
    const durable = this.deleting.size > 0 ? hashes.filter((h) => !this.deleting.has(h)) : hashes;
    if (durable.length > 0) for (const listener of this.listeners) listener(durable);
  }

  private writable(key: string): void {
    if (this.options.readOnly)
      throw new StoreError(`cannot write ${key}: ${this.options.readOnly}`, 'READ_ONLY');
  }

  /** Whether this client holds the object, not yet durable. */
  private holds(hash: string): boolean {
    return this.writer.holds(hash) || this.loose.has(hash);
  }

  // --- existence --------------------------------------------------------------------------------

  async has(key: string): Promise<boolean> {
    return (await this.hasMany([key]))[0] as boolean;
  }

  /**
   * Objects: from the index, synced (a folder looks every time, one stat when nothing moved; a
   * remote store at most every 30 s). An object gc condemned counts as absent: a push stores it
   * again rather than rely on a copy gc may remove. Other keys: the blob store.
   */
  async hasMany(keys: readonly string[]): Promise<boolean[]> {
    const hashes = keys.map(hashOfKey);
    const answers = new Array<boolean>(keys.length).fill(false);
    if (hashes.some((h) => h)) await this.sync.fresh(this.blobs.remote ? FRESH_MS : 0);
    const ask: number[] = [];
    hashes.forEach((hash, i) => {
      if (!hash) ask.push(i);
      else if (this.holds(hash) || this.catalog.find(hash, 'store') >= 0) answers[i] = true;
      else if (this.options.unindexedLoose) ask.push(i);
    });
    if (ask.length > 0) {
      const found = await this.blobs.hasMany(ask.map((i) => keys[i] as string));
      ask.forEach((i, k) => (answers[i] = found[k] as boolean));
    }
    return answers;
  }

  // --- writing ----------------------------------------------------------------------------------

  /**
   * Stores an object unless the index (synced) names a copy a push may rely on. Chunks are
   * appended to a pack; with `loose`, the object is a blob of its own (manifests, version
   * records: read by key, with no index). Resolves once `data` may be reused.
   */
  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    const hash = hashOfKey(key);
    if (!hash) return this.blobs.put(key, data, options);
    this.writable(key);
    if (this.holds(hash)) return;
    if (options.loose) {
      if (options.encoded)
        throw new StoreError(`cannot write ${key}: a loose object is stored as it is`, 'ENCODED');
      return this.putLoose(hash, key, data, options);
    }
    // A pack of this writer's failed: said at once, before any request of this put's own, and
    // while the index is synced (a store that stopped answering fails both: the pack's error is
    // the one to tell).
    this.writer.throwIfFailed();
    if (!this.sync.isFresh(FRESH_MS))
      await Promise.race([this.sync.fresh(FRESH_MS), this.writer.failing()]);
    if (this.catalog.find(hash, 'store') >= 0) {
      this.emit([hash]); // stored already, durably: the cache may claim it
      return;
    }
    await this.writer.append(hash, data, options.encoded);
  }

  private async putLoose(
    hash: string,
    key: string,
    data: Uint8Array,
    options: PutOptions,
  ): Promise<void> {
    if (this.catalog.find(hash, 'store') >= 0) {
      this.emit([hash]);
      return;
    }
    const written = this.blobs.put(key, data, options);
    this.loose.set(hash, {
      length: data.length,
      stored: written.then(
        () => true,
        () => false,
      ),
    });
    try {
      await written;
    } catch (err) {
      this.loose.delete(hash);
      throw err;
    }
  }

  /**
   * Makes every put so far durable and named by an index object: the open pack is sealed, and
   * its index object (or one of its own) names the loose objects too, once they are durable:
   * those put before the pack is durable, so a loose put started while a flush uploads the last
   * pack is named by the same index object (a later flush names one put after that).
   */
  async flush(): Promise<void> {
    let taken: Map<string, { length: number; stored: Promise<boolean> }> | undefined;
    const loose = {
      collect: async () => {
        const pending = this.loose;
        this.loose = new Map();
        taken = pending;
        const records: ObjectRecord[] = [];
        const hashes: string[] = [];
        if (pending.size === 0) return { records, hashes };
        // Named once their writes settled, those that succeeded only: a put that failed is its
        // caller's error, and an index naming its object would vouch for an object not there.
        const entries = [...pending];
        const stored = await Promise.all(entries.map(([, p]) => p.stored));
        entries.forEach(([hash, { length }], i) => {
          if (!stored[i]) return;
          records.push(looseRecord(hash, length));
          hashes.push(hash);
        });
        await this.blobs.flush();
        return { records, hashes };
      },
    };
    try {
      await this.writer.flush(loose);
    } catch (err) {
      // Not named by an index: the next flush tries again (a loose put is idempotent).
      for (const [hash, entry] of taken ?? [])
        if (!this.loose.has(hash)) this.loose.set(hash, entry);
      throw err;
    }
    await this.blobs.flush();
  }

  /**
   * A push passed over `bytes` of chunks stored already: while new ones only trickle in among
   * them, the open pack is sealed early on a bucket (PackWriter.passedOver).
   */
  passedOver(bytes: number): void {
    this.writer.passedOver(bytes);
  }

  /**
   * Of these objects, those a put gave this store that are not durable: still held, or in a pack
   * that failed (and not stored since). A push checks its own objects after its flush, before it
   * writes its version's ref: a failure another caller's flush heard of must not pass unnoticed.
   */
  notDurable(hashes: Iterable<string>): string[] {
    const lost: string[] = [];
    for (const hash of hashes)
      if (this.holds(hash) || (this.writer.lost(hash) && this.catalog.find(hash, 'read') < 0))
        lost.push(hash);
    return lost;
  }

  // --- reading ----------------------------------------------------------------------------------

  async get(key: string): Promise<Readable> {
    const hash = hashOfKey(key);
    if (!hash) return this.blobs.get(key);
    const bytes = await this.read(hash);
    return Readable.from(bytes.length > 0 ? [bytes] : []);
  }

  /**
   * An object's bytes: from this client's open pack, its pack (a ranged read), or its own blob.
   * A loose object (a manifest, a version record) is read by key without syncing the index, so
   * a client that never saw the repository reads versions without fetching any index object.
   */
  async read(hash: string): Promise<Buffer> {
    const staged = await this.writer.read(hash).catch(async (err: { code?: string }) => {
      // Uploaded with an earlier part of its pack: readable once the pack is.
      if (err.code !== 'NOT_BUFFERED') throw err;
      await this.flush();
      return undefined;
    });
    if (staged) return staged;
    const key = objectKey(hash);
    let record = this.catalog.find(hash, 'read');
    if (record < 0) {
      try {
        return await this.readLoose(key);
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError)) throw err;
      }
      await this.sync.fresh(0);
      record = this.catalog.find(hash, 'read');
      if (record < 0) throw new ObjectNotFoundError(key, this.location);
    }
    return this.readRecord(hash, record);
  }

  private async readLoose(key: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of await this.blobs.get(key)) parts.push(part as Buffer);
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /** A record's bytes; a pack that moved since the index was read (gc) is looked for again. */
  private async readRecord(hash: string, record: number): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      const where = this.locateRecord(hash, record);
      try {
        const stored = await this.blobs.getRange(where.key, where.offset, where.storedLength);
        await codecFor(where.encoding);
        return decode(stored, where, hash);
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError)) throw err;
        // The pack is gone: the object is missing (unless a newer index has it elsewhere).
        if (attempt > 0) throw new ObjectNotFoundError(objectKey(hash), this.location);
        await this.sync.sync({ full: true });
        record = this.catalog.find(hash, 'read');
        if (record < 0) throw new ObjectNotFoundError(objectKey(hash), this.location);
      }
    }
  }

  private locateRecord(hash: string, record: number): Located {
    const loc = this.catalog.location(record);
    const key = this.catalog.keyOf(record);
    const file = this.blobs.localPath?.(key);
    const where: Located = {
      key,
      offset: loc.offset,
      storedLength: loc.storedLength,
      length: loc.length,
      encoding: loc.encoding,
      ...(file ? { file } : {}),
    };
    refuseUnknownEncoding(hash, key, where.encoding);
    return where;
  }

  /**
   * Where each object lies, after a sync no older than 30 s (a full one when some are not found);
   * undefined for an object no index names (or that this client holds, not yet durable).
   */
  async locateMany(hashes: readonly string[]): Promise<(Located | undefined)[]> {
    await this.sync.fresh(FRESH_MS);
    let records = hashes.map((h) => this.catalog.find(h, 'read'));
    if (records.some((r) => r < 0)) {
      await this.sync.fresh(0);
      records = hashes.map((h) => this.catalog.find(h, 'read'));
    }
    return records.map((r, i) => (r < 0 ? undefined : this.locateRecord(hashes[i] as string, r)));
  }

  /**
   * The bytes of many objects, in order, in one buffer (see readInto): objects that lie
   * together in a pack come in one ranged read.
   */
  async readMany(hashes: readonly string[], concurrency = 8): Promise<Buffer[]> {
    return (await this.readManyStored(hashes, concurrency, false)).map((o) => o.bytes);
  }

  /**
   * As readMany, but an object stored encoded comes as its stored bytes, with its encoding and
   * length (gc copies objects into new packs as they are stored, never decoding them).
   */
  async readManyStored(
    hashes: readonly string[],
    concurrency = 8,
    stored = true,
  ): Promise<{ bytes: Buffer; encoding: number; length: number }[]> {
    const where = await this.locateMany(hashes);
    const positions: number[] = [];
    let total = 0;
    for (const w of where) {
      positions.push(total);
      total += w?.length ?? 0;
    }
    const bytes = Buffer.allocUnsafe(total);
    const lengths = where.map((w) => w?.length);
    const unplaced = await this.readInto(
      hashes,
      bytes,
      positions,
      lengths,
      concurrency,
      where,
      stored,
    );
    return hashes.map((_, i) => {
      const at = positions[i] as number;
      const w = where[i];
      const decoded = unplaced.get(i);
      if (decoded) return { bytes: decoded, encoding: ENCODING_NONE, length: decoded.length };
      const encoded = stored && w && w.encoding !== ENCODING_NONE && w.storedLength < w.length;
      const length = lengths[i] as number;
      return encoded
        ? { bytes: bytes.subarray(at, at + w.storedLength), encoding: w.encoding, length }
        : { bytes: bytes.subarray(at, at + length), encoding: ENCODING_NONE, length };
    });
  }

  /**
   * Reads objects into `dest`, object i at `positions[i]`, `lengths[i]` bytes (a length the index
   * disagrees with is an error). Objects that lie together in a pack come in one ranged read (a
   * gap of up to 1 MiB costs less than a second request), several side by side, and each byte is
   * copied once, from the response into its place. Objects the index does not name (or stored
   * encoded) are read on their own: returned by index, not placed, when their length was not given.
   * With `placeEncoded`, an object stored encoded (in fewer bytes than its length) is placed as
   * its stored bytes, at the start of its place, for the caller to decode (a restore's workers).
   */
  async readInto(
    hashes: readonly string[],
    dest: Uint8Array,
    positions: readonly number[],
    lengths: readonly (number | undefined)[],
    concurrency = 8,
    located?: readonly (Located | undefined)[],
    placeEncoded = false,
  ): Promise<Map<number, Buffer>> {
    const where = located ?? (await this.locateMany(hashes));
    const alone = new Map<number, Buffer>();
    const readAlone = async (i: number) => {
      const bytes = await this.read(hashes[i] as string);
      const length = lengths[i];
      if (length === undefined) return void alone.set(i, bytes);
      if (bytes.length !== length) throw mismatch(hashes[i] as string, bytes.length, length);
      dest.set(bytes, positions[i] as number);
    };
    where.forEach((w, i) => {
      const length = lengths[i];
      if (w && length !== undefined && w.length !== length)
        throw mismatch(hashes[i] as string, w.length, length);
    });
    const plain = where.map((w) =>
      w && (w.encoding === ENCODING_NONE || (placeEncoded && w.storedLength < w.length))
        ? w
        : undefined,
    );
    await mapLimit(coalesce(plain), concurrency, async (run) => {
      try {
        await this.blobs.readRange(
          run.key,
          run.start,
          run.end - run.start,
          scatter(run, plain, dest, positions),
        );
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError)) throw err;
        // The pack moved since it was located (gc): each object is looked for again.
        for (const i of run.members) await readAlone(i);
      }
    });
    await mapLimit(
      hashes.flatMap((_, i) => (plain[i] ? [] : [i])),
      concurrency,
      readAlone,
    );
    return alone;
  }

  // --- listing and removal ----------------------------------------------------------------------

  /**
   * Objects: every object the index names (once each, however many copies), and loose ones
   * this client wrote; dated by their index object. Other keys: the blob store's.
   */
  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    if (OBJECTS_PREFIX.startsWith(prefix) || prefix.startsWith(OBJECTS_PREFIX)) {
      await this.sync.sync();
      const seen = new Set<string>();
      const entries: ListEntry[] = [];
      for (const record of this.catalog.records()) {
        const hash = this.catalog.objects.hashHex(record);
        if (seen.has(hash)) continue;
        seen.add(hash);
        const key = objectKey(hash);
        if (
          key.startsWith(prefix) &&
          (options.startAfter === undefined || key > options.startAfter)
        )
          entries.push({
            key,
            size: this.catalog.objects.objectLength(record),
            modified: new Date(this.catalog.pack(record).indexedAt),
          });
      }
      const held = [...this.loose, ...this.writer.held()];
      for (const [hash, { length }] of held) {
        const key = objectKey(hash);
        if (!seen.has(hash) && key.startsWith(prefix)) {
          seen.add(hash);
          entries.push({ key, size: length });
        }
      }
      yield* entries;
    }
    for await (const entry of this.blobs.list(prefix, options))
      if (!hashOfKey(entry.key)) yield entry;
  }

  /**
   * Removes an object at once: its pack is rewritten without it (or removed), and the index with
   * it. gc removes many in one rewrite, and only a grace period after it condemned them.
   */
  async delete(key: string): Promise<void> {
    const hash = hashOfKey(key);
    if (!hash) return this.blobs.delete(key);
    this.writable(key);
    this.deleting.add(hash);
    try {
      const loose = this.loose.get(hash);
      if (loose) {
        this.loose.delete(hash);
        await loose.stored;
        await this.blobs.delete(key);
      }
      await this.flush(); // an object still in the open pack is durable, then removed
      await this.sync.sync();
      await rewrite(this, { drop: new Map([[hash, Infinity]]), repack: () => true });
    } finally {
      this.deleting.delete(hash);
    }
  }

  async close(): Promise<void> {
    await this.writer.close();
    await Promise.allSettled([...this.loose.values()].map((l) => l.stored));
    await this.sync.saveSnapshot();
    await this.blobs.close();
  }
}

/** Refuses an object stored in an encoding this version does not know: never guessed at. */
export function refuseUnknownEncoding(hash: string, key: string, encoding: number): void {
  if (!KNOWN_ENCODINGS.includes(encoding))
    throw new StoreError(
      `object ${hash} in ${key} is stored with encoding ${encoding}, which this version of TensorVault does not know: upgrade TensorVault`,
      'UNKNOWN_ENCODING',
    );
}

/**
 * An object's original bytes from its stored bytes (encoding 0: as stored); a StoreError
 * BAD_OBJECT when they are not its stored length or do not decode. Its hash is checked by
 * whoever uses the bytes (the repository, a restore's workers, verify).
 */
export function decode(stored: Buffer, where: Located, hash: string): Buffer {
  if (
    stored.length !== where.storedLength ||
    (where.encoding === ENCODING_NONE && where.length !== where.storedLength)
  )
    throw new StoreError(
      `object ${hash} in ${where.key} is damaged: ${stored.length} bytes stored, ${where.storedLength} expected (run \`tv verify --full\`)`,
      'BAD_OBJECT',
    );
  try {
    return decodeObject(where.encoding, stored, where.length);
  } catch (err) {
    if (!(err instanceof EncodingError)) throw err;
    throw new StoreError(
      `object ${hash} in pack ${where.key} at offset ${where.offset} is damaged: ${err.message} (run \`tv verify --full\`)`,
      'BAD_OBJECT',
    );
  }
}

interface Run {
  key: string;
  start: number;
  end: number;
  /** Indexes of the objects it holds, by offset. */
  members: number[];
}

/** Copies each piece of a run's response into the objects it covers, where they go in `dest`. */
function scatter(
  run: Run,
  where: readonly (Located | undefined)[],
  dest: Uint8Array,
  positions: readonly number[],
): RangeSink {
  let first = 0;
  return (piece, at) => {
    const from = run.start + at;
    const to = from + piece.length;
    const members = run.members;
    while (first < members.length) {
      const w = where[members[first] as number] as Located;
      if (w.offset + w.storedLength > from) break;
      first++;
    }
    for (let k = first; k < members.length; k++) {
      const i = members[k] as number;
      const w = where[i] as Located;
      if (w.offset >= to) break;
      const start = Math.max(w.offset, from);
      const end = Math.min(w.offset + w.storedLength, to);
      if (start < end)
        dest.set(
          piece.subarray(start - from, end - from),
          (positions[i] as number) + start - w.offset,
        );
    }
  };
}

function mismatch(hash: string, indexed: number, expected: number): StoreError {
  return new StoreError(
    `object ${hash} is ${indexed} bytes by the index, ${expected} by its manifest (run \`tv verify --full\`)`,
    'LENGTH_MISMATCH',
  );
}

/** Groups located objects into ranged reads: same blob, near each other, bounded in size. */
function coalesce(where: readonly (Located | undefined)[]): Run[] {
  const byKey = new Map<string, number[]>();
  where.forEach((w, i) => {
    if (!w) return;
    const list = byKey.get(w.key) ?? [];
    list.push(i);
    byKey.set(w.key, list);
  });
  const runs: Run[] = [];
  for (const [key, members] of byKey) {
    members.sort((a, b) => (where[a] as Located).offset - (where[b] as Located).offset);
    let run: Run | undefined;
    for (const i of members) {
      const w = where[i] as Located;
      const end = w.offset + w.storedLength;
      if (
        run &&
        w.offset - run.end <= MAX_GAP &&
        end - run.start <= MAX_RUN &&
        w.offset >= run.start
      ) {
        run.end = Math.max(run.end, end);
        run.members.push(i);
      } else {
        run = { key, start: w.offset, end, members: [i] };
        runs.push(run);
      }
    }
  }
  return runs;
}
