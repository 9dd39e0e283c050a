import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { mapLimit } from '../concurrency';
import { ObjectIndex } from './object-index';

/**
 * Pack files of a folder repository (format 2, docs/format.md). Objects are appended to a pack;
 * when the pack is sealed (full, or at flush) it is fsynced and its index written next to it, and
 * only then do other processes see its objects. A pack without an index is a push that never
 * finished: its objects are in no version, and gc removes it once it is old.
 *
 *   packs/<name>.pack  "TVPK" u8 1, 3 reserved bytes; then the objects' bytes back to back
 *   packs/<name>.idx   "TVPX" u8 1, 3 reserved, u32 count; count × (hash 32 B, offset u64,
 *                      length u32) sorted by hash; sha256 of everything before it (32 B)
 */

export const PACKS_DIR = 'packs';
const PACK_MAGIC = Buffer.from('TVPK\x01\0\0\0', 'latin1');
const INDEX_MAGIC = Buffer.from('TVPX\x01\0\0\0', 'latin1');
const INDEX_RECORD = 44;
const TEMP_SUFFIX = '.tmp';

/** Pack size at which a pack is sealed and a new one started. */
export const DEFAULT_PACK_BYTES = 64 << 20;

export class PackError extends Error {
  override name = 'PackError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

interface PackInfo {
  name: string;
  /** When its index was written: the age of its objects (gc's grace period). */
  modified: Date;
  /** Sealed packs have an index on disk; the one being written does not yet. */
  sealed: boolean;
}

interface OpenPack {
  no: number;
  name: string;
  handle: FileHandle;
  /** Bytes reserved so far: where the next object goes. */
  size: number;
  /** Objects reserved and not yet written, in offset order (so contiguous). */
  queue: QueuedWrite[];
  /** The one write in flight (a writev of the queue), if any. */
  writing: Promise<void> | undefined;
  /** Bytes written since the last background datasync started; that datasync, if running. */
  unsynced: number;
  syncing: Promise<void> | undefined;
  records: number[];
}

interface PackReader {
  handle: Promise<FileHandle>;
  users: number;
  dropped: boolean;
}

function closeReader(reader: PackReader): void {
  void reader.handle.then((h) => h.close()).catch(() => {});
}

/** Read handles kept open at most (see withReader). */
const READERS = 16;

interface QueuedWrite {
  key: Buffer;
  data: Uint8Array;
  offset: number;
  done: (err?: unknown) => void;
}

/** How long after a folder's mtime a listing of it is sure to include the change. */
const RACY_MS = 100;

/** Bytes written to a pack between background datasyncs. */
const SYNC_EVERY = 8 << 20;

/** Objects per writev, and bytes. */
const WRITE_BATCH = 256;
const WRITE_BATCH_BYTES = 16 << 20;

export interface PackedObject {
  hash: string;
  size: number;
  modified: Date;
}

export class PackSet {
  readonly dir: string;
  private readonly index = new ObjectIndex();
  private readonly packs: PackInfo[] = [];
  /** Index files loaded, by pack name → pack number. */
  private readonly loaded = new Map<string, number>();
  private current: OpenPack | undefined;
  private opening: Promise<OpenPack> | undefined;
  private readonly sealing = new Set<Promise<void>>();
  private sealError: unknown;
  private readonly writing = new Map<string, Promise<void>>();
  /** Packs with objects deleted since the last flush: rewritten without them at flush. */
  private readonly dirty = new Set<number>();
  private rewriting: Promise<void> = Promise.resolve();
  /** Open read handles by pack number (see withReader). */
  private readonly readers = new Map<number, PackReader>();
  private refreshing: Promise<void> | undefined;
  private queuedRefresh: Promise<void> | undefined;
  /** The folder's mtime at the last listing, if that listing can be trusted while it holds. */
  private listedMtime: number | undefined;
  private dirChanged = false;

  constructor(
    root: string,
    private readonly packBytes = DEFAULT_PACK_BYTES,
  ) {
    this.dir = join(root, PACKS_DIR);
  }

  // --- lookups ---------------------------------------------------------------------------------

  /** Whether the object is packed, as far as the indexes loaded so far say. */
  has(hash: string): boolean {
    return this.index.find(Buffer.from(hash, 'hex')) >= 0;
  }

  /** Loads the indexes other processes wrote since the last look, and forgets removed packs. */
  refresh(): Promise<void> {
    const run = async () => {
      let names: string[];
      let trusted: number | undefined;
      try {
        // The folder's mtime moves with every pack added or removed: while it stands still,
        // the last listing holds. It is trusted only when the listing began well after that
        // mtime (timestamps are per clock tick: a change in the same tick would not move it).
        const listedAt = Date.now();
        const { mtimeMs } = await stat(this.dir);
        if (this.listedMtime === mtimeMs) return;
        this.listedMtime = undefined; // until this listing is loaded whole
        names = await readdir(this.dir);
        trusted = listedAt - mtimeMs > RACY_MS ? mtimeMs : undefined;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      const present = new Set(
        names.filter((n) => n.endsWith('.idx')).map((n) => n.slice(0, -'.idx'.length)),
      );
      for (const [name, no] of this.loaded) {
        if (!present.has(name)) {
          this.index.killPack(no);
          this.loaded.delete(name);
          this.dropReader(no);
        }
      }
      // Read side by side (a repository of a few GiB has dozens), added in name order.
      const fresh = [...present].filter((name) => !this.loaded.has(name)).sort();
      const read = await mapLimit(fresh, 16, (name) => this.readIndex(name));
      read.forEach((index, i) => index && this.add(fresh[i] as string, index));
      this.listedMtime = trusted;
    };
    // A caller must get a look that began after its call: one running look serves those that
    // came before it began; all that come while it runs share the one queued after it.
    if (this.queuedRefresh) return this.queuedRefresh;
    const start = (): Promise<void> => {
      const look = run().finally(() => {
        if (this.refreshing === look) this.refreshing = undefined;
      });
      this.refreshing = look;
      return look;
    };
    if (!this.refreshing) return start();
    const queued = this.refreshing
      .catch(() => {})
      .then(() => {
        this.queuedRefresh = undefined;
        return start();
      });
    this.queuedRefresh = queued;
    return queued;
  }

  /** A pack's index and its mtime; undefined when it was removed since the listing. */
  private async readIndex(
    name: string,
  ): Promise<{ records: IndexRecords; modified: Date } | undefined> {
    const path = join(this.dir, `${name}.idx`);
    let bytes: Buffer;
    let modified: Date;
    try {
      [bytes, modified] = await Promise.all([readFile(path), stat(path).then((s) => s.mtime)]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return { records: decodeIndex(bytes, path), modified };
  }

  private add(
    name: string,
    { records, modified }: { records: IndexRecords; modified: Date },
  ): void {
    const no = this.packs.push({ name, modified, sealed: true }) - 1;
    this.loaded.set(name, no);
    const { bytes, first, count } = records;
    this.index.reserve(count);
    for (let i = 0, at = first; i < count; i++, at += INDEX_RECORD) {
      // Offsets are u64 on disk; a pack is far below 2^53 bytes.
      const offset = bytes.readUInt32BE(at + 32) * 2 ** 32 + bytes.readUInt32BE(at + 36);
      this.index.add(bytes, { pack: no, offset, length: bytes.readUInt32BE(at + 40) }, at);
    }
  }

  /** The object's bytes, or undefined when no loaded index has it. */
  async read(hash: string): Promise<Readable | undefined> {
    const bytes = await this.readBytes(hash);
    return bytes && Readable.from(bytes.length > 0 ? [bytes] : []);
  }

  /** The object's bytes in one buffer (objects are chunks, manifests, records: bounded). */
  async readBytes(hash: string): Promise<Buffer | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const record = this.index.find(Buffer.from(hash, 'hex'));
      if (record < 0) return undefined;
      const { pack, offset, length } = this.index.location(record);
      try {
        return await this.withReader(pack, async (handle) => {
          const bytes = Buffer.allocUnsafe(length);
          await readExactly(handle, bytes, offset);
          return bytes;
        });
      } catch (err) {
        // Rewritten by another process's gc since we loaded its index: look again.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err;
        await this.refresh();
      }
    }
    return undefined;
  }

  /**
   * Runs a read on the pack's open read handle: a restore reads thousands of chunks from each
   * pack, and an open and a close per chunk cost more than the read. At most READERS handles stay
   * open (the least recently used idle ones close first); a pack gone from the index has its
   * handle closed once its reads finish.
   */
  private async withReader<T>(pack: number, read: (handle: FileHandle) => Promise<T>): Promise<T> {
    let reader = this.readers.get(pack);
    if (reader)
      this.readers.delete(pack); // re-inserted below: the map's order is recency
    else {
      const info = this.packs[pack] as PackInfo;
      reader = { handle: open(join(this.dir, `${info.name}.pack`), 'r'), users: 0, dropped: false };
      reader.handle.catch(() => {}); // awaited below; a failed open is not kept
    }
    this.readers.set(pack, reader);
    reader.users++;
    try {
      return await read(await reader.handle);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.dropReader(pack);
      throw err;
    } finally {
      reader.users--;
      if (reader.dropped && reader.users === 0) closeReader(reader);
      this.trimReaders();
    }
  }

  private trimReaders(): void {
    for (const [pack, reader] of this.readers) {
      if (this.readers.size <= READERS) return;
      if (reader.users === 0) this.dropReader(pack);
    }
  }

  /** Forgets a pack's read handle; it closes as soon as no read uses it. */
  private dropReader(pack: number): void {
    const reader = this.readers.get(pack);
    if (!reader) return;
    this.readers.delete(pack);
    reader.dropped = true;
    if (reader.users === 0) closeReader(reader);
  }

  /** Where an object is: its pack file, offset and length (tests, debugging). */
  locate(hash: string): { file: string; offset: number; length: number } | undefined {
    const record = this.index.find(Buffer.from(hash, 'hex'));
    if (record < 0) return undefined;
    const { pack, offset, length } = this.index.location(record);
    return { file: join(this.dir, `${(this.packs[pack] as PackInfo).name}.pack`), offset, length };
  }

  /** Every live packed object. */
  *objects(): Generator<PackedObject> {
    for (const record of this.index.recordsOf()) {
      const { pack, length } = this.index.location(record);
      yield {
        hash: this.index.hashHex(record),
        size: length,
        modified: (this.packs[pack] as PackInfo).modified,
      };
    }
  }

  // --- writing ---------------------------------------------------------------------------------

  /**
   * Appends an object to the open pack (unless it is packed already). The caller sees it at once;
   * other processes see it once the pack is sealed: full, or at flush.
   */
  async put(hash: string, data: Uint8Array): Promise<void> {
    const key = Buffer.from(hash, 'hex');
    if (this.index.find(key) >= 0) return;
    const running = this.writing.get(hash);
    if (running) return running;
    const task = this.append(key, data).finally(() => this.writing.delete(hash));
    this.writing.set(hash, task);
    return task;
  }

  /**
   * Reserves the object's place in the open pack and queues it. One writev at a time per pack
   * writes everything queued: concurrent positional writes to one file would contend for its
   * inode lock, and a syscall per 64 KiB chunk costs more than the copy.
   */
  private async append(key: Buffer, data: Uint8Array): Promise<void> {
    let pack: OpenPack | undefined;
    while (!(pack = this.current)) await this.openPack();
    // From here until the write is queued nothing awaits, so a seal that starts after this
    // object took its place in the pack waits for it.
    const offset = pack.size;
    pack.size += data.length;
    const written = new Promise<void>((resolve, reject) =>
      (pack as OpenPack).queue.push({
        key,
        data,
        offset,
        done: (err) => (err ? reject(err) : resolve()),
      }),
    );
    if (!pack.writing) pack.writing = this.drain(pack);
    if (pack.size >= this.packBytes) {
      this.current = undefined;
      this.sealInBackground(pack);
    }
    return written;
  }

  /** Writes the pack's queue in batches until it is empty. */
  private async drain(pack: OpenPack): Promise<void> {
    while (pack.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < pack.queue.length && n < WRITE_BATCH && bytes < WRITE_BATCH_BYTES)
        bytes += (pack.queue[n++] as QueuedWrite).data.length;
      const batch = pack.queue.splice(0, n);
      try {
        await writeAll(
          pack.handle,
          batch.map((w) => w.data),
          (batch[0] as QueuedWrite).offset,
        );
      } catch (err) {
        for (const w of batch) w.done(err);
        continue;
      }
      for (const w of batch) {
        pack.records.push(
          this.index.add(w.key, { pack: pack.no, offset: w.offset, length: w.data.length }),
        );
        w.done();
      }
      // The kernel would hold the written pages until a writeback threshold; a datasync every
      // few MiB starts the disk writing while chunking goes on, so the seal finds little left.
      pack.unsynced += bytes;
      if (pack.unsynced >= SYNC_EVERY && !pack.syncing) {
        pack.unsynced = 0;
        pack.syncing = pack.handle
          .datasync()
          .catch(() => {}) // the seal's own datasync reports a failure
          .finally(() => (pack.syncing = undefined));
      }
    }
    pack.writing = undefined;
  }

  private openPack(): Promise<OpenPack> {
    if (this.current) return Promise.resolve(this.current);
    this.opening ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      const name = randomBytes(12).toString('hex');
      const handle = await open(join(this.dir, `${name}.pack`), 'wx');
      try {
        await handle.write(PACK_MAGIC, 0, PACK_MAGIC.length, 0);
      } catch (err) {
        await handle.close();
        await unlink(join(this.dir, `${name}.pack`)).catch(() => {});
        throw err;
      }
      const no = this.packs.push({ name, modified: new Date(), sealed: false }) - 1;
      const pack: OpenPack = {
        no,
        name,
        handle,
        size: PACK_MAGIC.length,
        queue: [],
        writing: undefined,
        unsynced: 0,
        syncing: undefined,
        records: [],
      };
      this.current = pack;
      this.dirChanged = true;
      return pack;
    })().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private sealInBackground(pack: OpenPack): void {
    const task = this.seal(pack).catch((err: unknown) => {
      this.sealError ??= err;
    });
    this.sealing.add(task);
    void task.finally(() => this.sealing.delete(task));
  }

  /**
   * Makes a pack's objects durable and visible to everyone: waits for its writes, fsyncs it, then
   * writes its index (temp file, fsync, rename). If that fails, its objects are forgotten here too,
   * so a later push writes them again instead of naming objects no index lists.
   */
  private async seal(pack: OpenPack): Promise<void> {
    try {
      await pack.writing;
      await pack.syncing;
      const live = pack.records.filter((r) => this.index.isLive(r));
      if (live.length === 0) {
        await pack.handle.close();
        await unlink(join(this.dir, `${pack.name}.pack`)).catch(() => {});
        return;
      }
      await pack.handle.datasync();
      await pack.handle.close();
      await this.writeIndex(
        pack.name,
        live.map((r) => ({ hash: this.index.hash(r), ...this.index.location(r) })),
      );
      const info = this.packs[pack.no] as PackInfo;
      info.sealed = true;
      info.modified = new Date();
      this.loaded.set(pack.name, pack.no);
    } catch (err) {
      this.index.killPack(pack.no);
      this.dropReader(pack.no);
      await pack.handle.close().catch(() => {});
      throw err;
    }
  }

  private async writeIndex(
    name: string,
    records: { hash: Uint8Array; offset: number; length: number }[],
    modified?: Date,
  ): Promise<void> {
    const bytes = encodeIndex(records);
    const target = join(this.dir, `${name}.idx`);
    const temp = `${target}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      if (modified) await utimes(temp, modified, modified);
      await rename(temp, target);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw err;
    }
    this.dirChanged = true;
  }

  /** Marks a packed object deleted (gone for lookups now); its pack is rewritten at flush. */
  delete(hash: string): void {
    const record = this.index.find(Buffer.from(hash, 'hex'));
    if (record < 0) return;
    this.dirty.add(this.index.location(record).pack);
    this.index.kill(record);
  }

  /**
   * Seals the open pack, waits for every seal, rewrites packs that lost objects, and fsyncs the
   * folder: every put and delete so far is durable and visible to other processes.
   */
  async flush(): Promise<void> {
    const pack = this.current;
    this.current = undefined;
    if (pack) this.sealInBackground(pack);
    while (this.sealing.size > 0) await Promise.all([...this.sealing]);
    const err = this.sealError;
    this.sealError = undefined;
    if (err) throw err;
    // One rewrite at a time, each pack once, however many flushes run at once (gc beside a push).
    const rewrites = this.rewriting.then(async () => {
      for (const no of [...this.dirty]) {
        await this.rewrite(no);
        this.dirty.delete(no);
      }
    });
    this.rewriting = rewrites.catch(() => {});
    await rewrites;
    if (this.dirChanged) {
      this.dirChanged = false;
      await syncFolder(this.dir);
    }
  }

  /**
   * Rewrites a sealed pack without its deleted objects: a new pack and index (dated like the old
   * one, so its objects keep their age), then the old index and pack go. A crash in between
   * leaves both, which only means duplicates.
   */
  private async rewrite(no: number): Promise<void> {
    const info = this.packs[no] as PackInfo;
    if (!info.sealed) return;
    const keep = [...this.index.recordsOf(no)];
    const oldPack = join(this.dir, `${info.name}.pack`);
    const oldIndex = join(this.dir, `${info.name}.idx`);
    // The age on disk: another process may have loaded this pack with it.
    const modified = await stat(oldIndex).then(
      (s) => s.mtime,
      () => info.modified,
    );
    if (keep.length > 0) {
      const name = randomBytes(12).toString('hex');
      const source = await open(oldPack, 'r');
      const target = await open(join(this.dir, `${name}.pack`), 'wx');
      const moved: { hash: Buffer; offset: number; length: number }[] = [];
      try {
        await target.write(PACK_MAGIC, 0, PACK_MAGIC.length, 0);
        let offset = PACK_MAGIC.length;
        for (const record of keep) {
          const { offset: from, length } = this.index.location(record);
          const bytes = Buffer.allocUnsafe(length);
          await readExactly(source, bytes, from);
          await target.write(bytes, 0, length, offset);
          moved.push({ hash: Buffer.from(this.index.hash(record)), offset, length });
          offset += length;
        }
        await target.datasync();
      } finally {
        await source.close();
        await target.close();
      }
      await this.writeIndex(name, moved, modified);
      const newNo = this.packs.push({ name, modified, sealed: true }) - 1;
      this.loaded.set(name, newNo);
      this.index.killPack(no);
      for (const m of moved)
        this.index.add(m.hash, { pack: newNo, offset: m.offset, length: m.length });
    }
    await unlink(oldIndex).catch(ignoreMissing);
    this.loaded.delete(info.name);
    this.dropReader(no);
    await unlink(oldPack).catch(ignoreMissing);
    this.dirChanged = true;
  }

  /**
   * Removes what pushes that never finished left: packs with no index and temp files, older
   * than the given age (a younger one may be a push still running). Returns the bytes freed.
   */
  async removeAbandoned(
    olderThanMs: number,
    now = Date.now(),
  ): Promise<{ files: number; bytes: number }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { files: 0, bytes: 0 };
      throw err;
    }
    const indexed = new Set(names.filter((n) => n.endsWith('.idx')).map((n) => n.slice(0, -4)));
    const ours = new Set(this.packs.filter((p) => !p.sealed).map((p) => p.name));
    let files = 0;
    let bytes = 0;
    for (const n of names) {
      const abandonedPack = n.endsWith('.pack') && !indexed.has(n.slice(0, -5));
      if (!abandonedPack && !n.endsWith(TEMP_SUFFIX)) continue;
      if (ours.has(n.slice(0, -5))) continue;
      const path = join(this.dir, n);
      const info = await stat(path).catch(() => undefined);
      if (!info || now - info.mtimeMs < olderThanMs) continue;
      await unlink(path).catch(ignoreMissing);
      files++;
      bytes += info.size;
    }
    return { files, bytes };
  }

  async close(): Promise<void> {
    // A pack still open was never flushed: its objects are in no version. Left without an index,
    // it is removed by gc once old.
    await Promise.allSettled([...this.sealing]);
    const pack = this.current;
    this.current = undefined;
    if (pack) {
      await pack.writing;
      await pack.syncing;
      await pack.handle.close().catch(() => {});
    }
    for (const no of [...this.readers.keys()]) this.dropReader(no);
  }
}

// --- index files -----------------------------------------------------------------------------

export function encodeIndex(
  records: { hash: Uint8Array; offset: number; length: number }[],
): Buffer {
  const sorted = [...records].sort((a, b) => Buffer.compare(a.hash, b.hash));
  const body = Buffer.alloc(INDEX_MAGIC.length + 4 + sorted.length * INDEX_RECORD);
  INDEX_MAGIC.copy(body, 0);
  body.writeUInt32BE(sorted.length, INDEX_MAGIC.length);
  let at = INDEX_MAGIC.length + 4;
  for (const r of sorted) {
    body.set(r.hash.subarray(0, 32), at);
    body.writeBigUInt64BE(BigInt(r.offset), at + 32);
    body.writeUInt32BE(r.length, at + 40);
    at += INDEX_RECORD;
  }
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** A pack index's records, checked: record i starts at `first + i * INDEX_RECORD` in `bytes`. */
export interface IndexRecords {
  bytes: Buffer;
  first: number;
  count: number;
}

export function decodeIndex(bytes: Buffer, path: string): IndexRecords {
  const damaged = (why: string) =>
    new PackError(
      `the pack index ${path} is damaged (${why}): restore it from a backup, or remove it and its objects count as missing (\`tv verify\` then names the versions that need them)`,
      'BAD_PACK_INDEX',
    );
  const head = INDEX_MAGIC.length + 4;
  if (bytes.length < head + 32) throw damaged('too short');
  if (!bytes.subarray(0, 4).equals(INDEX_MAGIC.subarray(0, 4))) throw damaged('not a pack index');
  if (bytes[4] !== INDEX_MAGIC[4])
    throw damaged(`unknown version ${bytes[4]}: upgrade TensorVault`);
  const count = bytes.readUInt32BE(INDEX_MAGIC.length);
  if (bytes.length !== head + count * INDEX_RECORD + 32) throw damaged('wrong length');
  const body = bytes.subarray(0, bytes.length - 32);
  if (
    !createHash('sha256')
      .update(body)
      .digest()
      .equals(bytes.subarray(bytes.length - 32))
  )
    throw damaged('checksum mismatch');
  return { bytes, first: head, count };
}

/** Writes the buffers back to back from a position, however many calls it takes. */
async function writeAll(
  handle: FileHandle,
  buffers: Uint8Array[],
  position: number,
): Promise<void> {
  let at = position;
  let rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const left: Uint8Array[] = [];
    for (const b of rest) {
      if (skip >= b.length) skip -= b.length;
      else {
        left.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    if (bytesWritten === 0 && left.length > 0)
      throw new PackError('the disk accepted no bytes of a write', 'SHORT_WRITE');
    rest = left;
  }
}

async function readExactly(handle: FileHandle, into: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0)
      throw new PackError(`pack ends early at byte ${position + done}`, 'SHORT_PACK');
    done += bytesRead;
  }
}

/** fsyncs a folder so renames and removals in it are durable (where the platform allows it). */
export async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some platforms cannot fsync a directory.
  } finally {
    await handle.close();
  }
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
