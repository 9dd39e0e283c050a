import { randomBytes } from 'node:crypto';
import { mkdir, open, opendir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { mapLimit } from '../concurrency';
import { DiskBlobWriter, readExactly, TEMP_SUFFIX } from './disk-writer';
import { ReadHandles } from './read-handles';
import { countRequest } from './requests';
import {
  ObjectNotFoundError,
  StoreError,
  validateKey,
  type BlobStore,
  type BlobWriter,
  type ListEntry,
  type ListOptions,
  type RangeSink,
} from './store';

/** Files written before a background fsync of them starts (see put). */
const SYNC_BATCH = 256;
/** Objects up to this size are read whole (one buffer) rather than streamed. */
const WHOLE_READ_BYTES = 4 << 20;

/**
 * A blob store in a local folder: each key is a file. A put writes a temp file in the key's
 * folder and renames it into place, so a crash never leaves a half-written blob under its real
 * name, and fsyncs it (in batches, in the background) before flush returns. A writer appends a
 * big blob (a pack) piece by piece and makes it durable at its finish. Ranged reads go through a
 * few kept-open handles. Putting a blob again is harmless.
 */
export class DiskStore implements BlobStore {
  readonly remote = false;
  /** Puts are durable only after flush. */
  readonly durableOnPut = false;
  /** Files written and not yet being fsynced: fsynced before a version is made visible. */
  private unsynced = new Set<string>();
  /** Background fsyncs of earlier puts, which flush waits for. */
  private readonly syncing = new Set<Promise<void>>();
  private syncError: unknown;
  /** Folders known to exist: a put into a known shard skips its mkdir. */
  private readonly folders = new Set<string>();
  private readonly handles = new ReadHandles();

  constructor(readonly root: string) {}

  get location(): string {
    return this.root;
  }

  private path(key: string): string {
    validateKey(key);
    return join(this.root, ...key.split('/'));
  }

  localPath(key: string): string {
    return this.path(key);
  }

  /** The local clock, never going back nor giving the same time twice (see S3Store.now). */
  now(): number {
    this.lastNow = Math.max(Date.now(), this.lastNow + 1);
    return this.lastNow;
  }

  private lastNow = 0;

  async has(key: string): Promise<boolean> {
    return (await this.hasMany([key]))[0] as boolean;
  }

  async hasMany(keys: readonly string[]): Promise<boolean[]> {
    return mapLimit(keys, 64, (key) => this.isFile(key));
  }

  private async isFile(key: string): Promise<boolean> {
    countRequest('head', 0, 0);
    try {
      return (await stat(this.path(key))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw this.wrap(err, key);
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const target = this.path(key);
    countRequest('put', data.length, 0);
    // Content-addressed objects are immutable; other keys (config, refs) are written once. A
    // put of an existing blob rewrites identical bytes: the rename keeps it atomic either way.
    const temp = `${target}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
    try {
      const folder = dirname(target);
      if (!this.folders.has(folder)) {
        await mkdir(folder, { recursive: true });
        this.folders.add(folder);
      }
      await writeFile(temp, data, { flag: 'wx' });
      await rename(temp, target);
      this.unsynced.add(target);
      // A long push fsyncs as it goes, so the disk writes back while chunking goes on and the
      // flush before the version's ref has little left to wait for.
      if (this.unsynced.size >= SYNC_BATCH) this.syncInBackground();
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw this.wrap(err, key);
    }
  }

  async get(key: string): Promise<Readable> {
    const path = this.path(key);
    countRequest('get', 0, 0);
    try {
      const handle = await open(path, 'r');
      const { size } = await handle.stat();
      if (size <= WHOLE_READ_BYTES) {
        // A manifest, a version record, an index object: one read into one buffer of its size
        // (a stream reads into 64 KiB buffers, then copies each short read into another).
        try {
          return Readable.from([await handle.readFile()]);
        } finally {
          await handle.close();
        }
      }
      return handle.createReadStream();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new ObjectNotFoundError(key, this.location);
      throw this.wrap(err, key);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const path = this.path(key);
    countRequest('get', 0, length);
    const bytes = Buffer.allocUnsafe(length);
    try {
      await this.handles.with(path, (handle) => readExactly(handle, bytes, offset));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new ObjectNotFoundError(key, this.location);
      throw this.wrap(err, key);
    }
    return bytes;
  }

  async readRange(key: string, offset: number, length: number, sink: RangeSink): Promise<void> {
    sink(await this.getRange(key, offset, length), 0);
  }

  createWriter(key: string): BlobWriter {
    const path = this.path(key);
    const writer: DiskBlobWriter = new DiskBlobWriter(
      path,
      async (finished) => {
        countRequest('put', writer.size, 0);
        // The rename is durable once the folder is: a writer's blob counts as durable at finish.
        await syncFolder(dirname(finished));
      },
      (err) => this.wrap(err, key),
    );
    return writer;
  }

  /** Removes the blob; removing an absent blob is not an error. */
  async delete(key: string): Promise<void> {
    const path = this.path(key);
    countRequest('delete', 0, 0);
    this.handles.drop(path);
    await rm(path, { force: true });
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    countRequest('list', 0, 0);
    // Start at the deepest folder the prefix names whole, then filter by the rest.
    const folder = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const start = folder ? join(this.root, ...folder.split('/')) : this.root;
    for await (const entry of this.walk(start, prefix, options.keysOnly ?? false))
      if (options.startAfter === undefined || entry.key > options.startAfter) yield entry;
  }

  /**
   * Removes what writers that never finished left (temp files of a killed push), once older than
   * the given age: a younger one may be a writer still running. Returns what it freed.
   */
  async removeAbandoned(
    olderThanMs: number,
    now = Date.now(),
  ): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    const visit = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await opendir(dir);
      } catch {
        return;
      }
      for await (const entry of entries) {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) await visit(full);
        else if (entry.name.endsWith(TEMP_SUFFIX)) {
          const info = await stat(full).catch(() => undefined);
          if (!info || now - info.mtimeMs < olderThanMs) continue;
          await unlink(full).catch(() => {});
          files++;
          bytes += info.size;
        }
      }
    };
    await visit(this.root);
    return { files, bytes };
  }

  private async *walk(dir: string, prefix: string, keysOnly: boolean): AsyncIterable<ListEntry> {
    let entries;
    try {
      entries = await opendir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.wrap(err, dir);
    }
    for await (const entry of entries) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        yield* this.walk(full, prefix, keysOnly);
      } else if (entry.isFile() && !entry.name.endsWith(TEMP_SUFFIX)) {
        const key = full
          .slice(this.root.length + 1)
          .split(sep)
          .join('/');
        if (!key.startsWith(prefix)) continue;
        if (keysOnly) {
          yield { key, size: 0 };
          continue;
        }
        const info = await stat(full).catch(() => undefined);
        if (info) yield { key, size: info.size, modified: info.mtime };
      }
    }
  }

  private syncInBackground(): void {
    const files = [...this.unsynced];
    this.unsynced = new Set();
    const task = this.syncFiles(files, 2).catch((err: unknown) => {
      this.syncError ??= err;
    });
    this.syncing.add(task);
    void task.finally(() => this.syncing.delete(task));
  }

  async flush(): Promise<void> {
    const files = [...this.unsynced];
    this.unsynced = new Set();
    await Promise.all([this.syncFiles(files, 32), ...this.syncing]);
    const err = this.syncError;
    this.syncError = undefined;
    if (err) throw this.wrap(err, 'a written object');
  }

  /** fsyncs the files, then their folders (so the renames are durable too). */
  private async syncFiles(files: string[], concurrency: number): Promise<void> {
    const dirs = new Set(files.map((f) => dirname(f)));
    const sync = async (path: string) => {
      const handle = await open(path, 'r').catch(() => undefined);
      if (!handle) return; // deleted since: nothing to make durable
      try {
        await handle.sync();
      } catch (err) {
        // Some platforms cannot fsync a directory; the file fsyncs still hold.
        if (!dirs.has(path)) throw err;
      } finally {
        await handle.close();
      }
    };
    await mapLimit(files, concurrency, sync);
    await mapLimit([...dirs], concurrency, sync);
  }

  async close(): Promise<void> {
    this.handles.dropAll();
  }

  private wrap(err: unknown, key: string): Error {
    if (err instanceof StoreError) return err;
    const e = err as NodeJS.ErrnoException;
    const what =
      e.code === 'EACCES' || e.code === 'EPERM'
        ? 'permission denied'
        : e.code === 'ENOSPC'
          ? 'no space left on the device'
          : e.code === 'EROFS'
            ? 'the file system is read-only'
            : e.message;
    return new StoreError(`cannot access ${key} in ${this.root}: ${what}`, e.code ?? 'IO', {
      cause: err,
    });
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
