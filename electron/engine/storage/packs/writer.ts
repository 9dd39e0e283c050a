import { randomBytes } from 'node:crypto';
import { Semaphore } from '../../concurrency';
import type { BlobStore, BlobWriter } from '../store';
import {
  encodeIndexObject,
  encodeTrailer,
  ENCODING_NONE,
  indexKey,
  indexName,
  packHeader,
  packKey,
  type ObjectRecord,
} from './format';
import { codecFor, decodeObject } from './codec';
import type { IndexSync } from './index-sync';

export interface PackWriterOptions {
  /** A pack is sealed once it holds this many bytes. */
  packBytes: number;
  /**
   * Packs open or being made durable at once. On S3 each holds its bytes in memory until its
   * upload ends, so memory is bounded by this times packBytes; appends wait for a free one.
   */
  packsInFlight: number;
  /**
   * When set, a pack is also sealed before it is full once it has been open this long while new
   * objects only trickle in (see `passedOver`). Worth it where a pack's upload takes a while (a
   * bucket); on a disk the last pack is written in milliseconds.
   */
  sparseSealMs?: number;
}

/** A pack sealed early holds at least this many bytes: a trickle of a few objects waits. */
const MIN_SPARSE_PACK = 1 << 20;
/** New objects trickle in while the bytes passed over are at least this many times theirs. */
const SPARSE_RATIO = 4;

interface OpenPack {
  name: string;
  writer: BlobWriter;
  records: ObjectRecord[];
  hashes: string[];
  /** When its first object came (performance.now()). */
  openedAt: number;
  /** Bytes of objects the caller passed over (stored already) while this pack was open. */
  passed: number;
  /**
   * The last append, settled (never rejects): a writer takes appends in order, so once it
   * settles all earlier ones have; a failed one makes the blob's finish fail.
   */
  appended: Promise<void>;
}

/**
 * Loose objects to name in an index object beside a pack: taken when the index object is about
 * to be written (once the pack is durable), so that those put while the pack uploads are named
 * by the same index object; each durable once `collect` resolves.
 */
export interface LooseObjects {
  collect(): Promise<{ records: ObjectRecord[]; hashes: string[] }>;
}

/**
 * Appends objects to packs and makes them durable: a pack is sealed when full (or at flush): its
 * trailer is appended, the blob finished (durable under its key), then an index object naming its
 * objects is written (durable too), and only then are they known, to this client's catalog and
 * to every other: `onDurable` hears of them at that moment (the cache claims them then). Several
 * packs upload at once; a push killed mid-way loses only the packs still in flight.
 */
export class PackWriter {
  private current: OpenPack | undefined;
  private opening: Promise<OpenPack> | undefined;
  private readonly slots: Semaphore;
  private readonly sealing = new Set<Promise<void>>();
  private failure: unknown;
  private failureSignal: { promise: Promise<never>; reject: (err: unknown) => void } | undefined;
  /** Objects appended and not yet durable: their pack and where. */
  private readonly staged = new Map<string, { pack: OpenPack; record: ObjectRecord }>();
  /** Objects whose pack failed, until one is stored again: whoever put them must not rely on them. */
  private readonly failed = new Set<string>();

  constructor(
    private readonly blobs: BlobStore,
    private readonly sync: IndexSync,
    private readonly options: PackWriterOptions,
    private readonly onDurable: (hashes: string[]) => void,
  ) {
    this.slots = new Semaphore(Math.max(1, options.packsInFlight));
  }

  /** Whether the object was appended to a pack that failed (and not stored since). */
  lost(hash: string): boolean {
    return this.failed.has(hash);
  }

  /** Whether this writer holds the object (appended, not yet durable). */
  holds(hash: string): boolean {
    return this.staged.has(hash);
  }

  /** Objects appended and not yet durable: hash and length. */
  *held(): Generator<[string, { length: number }]> {
    for (const [hash, { record }] of this.staged) yield [hash, { length: record.length }];
  }

  /** The bytes of an object appended and not yet durable (decoded), or undefined. */
  async read(hash: string): Promise<Buffer | undefined> {
    const staged = this.staged.get(hash);
    if (!staged) return undefined;
    await staged.pack.appended;
    const { record } = staged;
    const stored = await staged.pack.writer.read(record.offset, record.storedLength);
    if (record.encoding === ENCODING_NONE) return stored;
    await codecFor(record.encoding);
    return decodeObject(record.encoding, stored, record.length);
  }

  /**
   * Appends an object to the open pack (unless it holds it already); resolves once `data` may be
   * reused. It is durable, and known to others, once its pack is sealed: full, or at flush.
   * With `encoded`, `data` is the object's stored bytes in that encoding, of an object of
   * `encoded.length` bytes.
   */
  async append(
    hash: string,
    data: Uint8Array,
    encoded?: { encoding: number; length: number },
  ): Promise<void> {
    this.throwIfFailed();
    if (this.staged.has(hash)) return;
    let pack: OpenPack | undefined;
    while (!(pack = this.current)) await this.open();
    if (this.staged.has(hash)) return; // appended by another caller while this one waited
    // From here until the writer has the bytes nothing awaits: offsets follow call order.
    const record: ObjectRecord = {
      hash: Buffer.from(hash, 'hex'),
      offset: pack.writer.size,
      storedLength: data.length,
      length: encoded?.length ?? data.length,
      encoding: encoded?.encoding ?? ENCODING_NONE,
    };
    pack.records.push(record);
    pack.hashes.push(hash);
    this.staged.set(hash, { pack, record });
    const appended = pack.writer.append(data);
    pack.appended = appended.catch(() => {});
    if (pack.writer.size >= this.options.packBytes) {
      this.current = undefined;
      this.sealInBackground(pack);
    } else this.sealIfSparse(pack);
    await appended;
  }

  /**
   * Tells the writer that its caller passed over `bytes` of objects stored already, instead of
   * appending them (a push that finds most of its chunks in the repository). While new objects
   * only trickle in among many stored ones, the open pack is sealed once it has been open
   * `sparseSealMs` (and holds MIN_SPARSE_PACK), not when full: otherwise every new object of the
   * push would wait for its end, and all of them go up after its last chunk. A push of new data
   * (few objects passed over) fills its packs as before.
   */
  passedOver(bytes: number): void {
    const pack = this.current;
    if (!pack) return;
    pack.passed += bytes;
    this.sealIfSparse(pack);
  }

  private sealIfSparse(pack: OpenPack): void {
    const after = this.options.sparseSealMs;
    if (after === undefined || pack !== this.current) return;
    const size = pack.writer.size;
    if (size < MIN_SPARSE_PACK || pack.passed < SPARSE_RATIO * size) return;
    if (performance.now() - pack.openedAt < after) return;
    this.current = undefined;
    this.sealInBackground(pack);
  }

  /**
   * Throws the failure of a pack sealed in the background, until a flush reports it: a push whose
   * upload failed stops at its next object instead of opening pack after pack (each waiting out
   * its own tries on a store that stopped answering).
   */
  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private open(): Promise<OpenPack> {
    this.opening ??= (async () => {
      await this.slots.acquire();
      // A slot is freed by a pack that was sealed, or that failed.
      if (this.failure) {
        this.slots.release();
        throw this.failure;
      }
      const name = randomBytes(16).toString('hex');
      const bytes = this.options.packBytes;
      const writer = this.blobs.createWriter(packKey(name), {
        // Room for the object that crosses packBytes and for the trailer.
        expectedBytes: bytes + Math.ceil(bytes / 8) + (1 << 20),
      });
      const pack: OpenPack = {
        name,
        writer,
        records: [],
        hashes: [],
        openedAt: performance.now(),
        passed: 0,
        appended: writer.append(packHeader()).catch(() => {}),
      };
      this.current = pack;
      return pack;
    })().finally(() => (this.opening = undefined));
    return this.opening;
  }

  /**
   * Rejects, with the failure a flush will report, once a pack sealed in the background failed
   * (at once when one has): what waits on other requests meanwhile stops there.
   */
  failing(): Promise<never> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.failureSignal) {
      let reject!: (err: unknown) => void;
      const promise = new Promise<never>((_, r) => (reject = r));
      promise.catch(() => {}); // rejected whether or not anyone waits on it
      this.failureSignal = { promise, reject };
    }
    return this.failureSignal.promise;
  }

  private recordFailure(err: unknown): void {
    this.failure ??= err;
    this.failureSignal?.reject(this.failure);
    this.failureSignal = undefined;
  }

  private sealInBackground(pack: OpenPack | undefined, loose?: LooseObjects): void {
    const task = this.seal(pack, loose)
      .catch((err: unknown) => this.recordFailure(err))
      .finally(() => this.sealing.delete(task));
    this.sealing.add(task);
  }

  /**
   * Makes a pack durable, then writes the index object that names its objects (and `loose`, once
   * they are durable). If anything fails, the objects are forgotten here, so a later push stores
   * them again instead of naming objects no index lists.
   */
  private async seal(pack: OpenPack | undefined, loose?: LooseObjects): Promise<void> {
    try {
      let packs: { name: string; length: number; records: ObjectRecord[] }[] = [];
      if (pack) {
        await pack.appended;
        await pack.writer.append(encodeTrailer(pack.records));
        const length = pack.writer.size;
        await pack.writer.finish();
        packs = [{ name: pack.name, length, records: pack.records }];
      }
      const named = loose ? await loose.collect() : { records: [], hashes: [] };
      const hashes = [...(pack?.hashes ?? []), ...named.hashes];
      if (hashes.length > 0) {
        await this.writeIndex(
          encodeIndexObject({ packs, ...(named.records.length ? { loose: named.records } : {}) }),
        );
        for (const hash of pack?.hashes ?? []) this.failed.delete(hash);
        this.onDurable(hashes);
      }
    } catch (err) {
      // Recorded before the pack's slot is freed (finally): a caller waiting for the slot sees it.
      this.recordFailure(err);
      await pack?.writer.abort();
      for (const hash of pack?.hashes ?? []) this.failed.add(hash);
      throw err;
    } finally {
      for (const hash of pack?.hashes ?? []) this.staged.delete(hash);
      if (pack) this.slots.release();
    }
  }

  /** Writes an index object, durably, named by the store's clock; then this client knows it. */
  async writeIndex(bytes: Buffer): Promise<string> {
    const name = indexName(this.blobs.now(), randomBytes(8).toString('hex'));
    const writer = this.blobs.createWriter(indexKey(name), { expectedBytes: bytes.length });
    try {
      await writer.append(bytes);
      await writer.finish();
    } catch (err) {
      await writer.abort();
      throw err;
    }
    await this.sync.adopt(name, bytes);
    return name;
  }

  /**
   * Seals the open pack (its index also naming `loose`) and waits for every seal: every object
   * appended so far is durable and known to everyone, or this throws.
   */
  async flush(loose?: LooseObjects): Promise<void> {
    const pack = this.current;
    this.current = undefined;
    if (pack && pack.records.length === 0) {
      // Only a header: nothing to keep.
      await pack.writer.abort();
      this.slots.release();
      if (loose) this.sealInBackground(undefined, loose);
    } else if (pack || loose) this.sealInBackground(pack, loose);
    while (this.sealing.size > 0) await Promise.all([...this.sealing]);
    const err = this.failure;
    this.failure = undefined;
    if (err) throw err;
  }

  /**
   * Waits for packs already sealing; a pack still open was never flushed: its objects are in no
   * version, and nothing of it is kept.
   */
  async close(): Promise<void> {
    await Promise.allSettled([...this.sealing]);
    const pack = this.current;
    this.current = undefined;
    if (pack) {
      await pack.appended;
      await pack.writer.abort();
      for (const hash of pack.hashes) {
        this.staged.delete(hash);
        this.failed.add(hash);
      }
      this.slots.release();
    }
  }
}
