import { randomBytes } from 'node:crypto';
import { mkdir, open, opendir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { mapLimit } from '../concurrency';
import { ObjectNotFoundError, StoreError, validateKey, type ListEntry, type Store } from './store';

const TEMP_SUFFIX = '.tmp';

/** Files written before a background fsync of them starts (see put). */
const SYNC_BATCH = 256;

/**
 * A Store in a local folder. Objects are written to a temp file in their own directory and
 * renamed into place, so a crash never leaves a half-written object under its real name.
 * Putting an object again is harmless (same bytes, atomic rename).
 */
export class DiskStore implements Store {
  /** Files written and not yet being fsynced: fsynced before a version is made visible. */
  private unsynced = new Set<string>();
  /** Background fsyncs of earlier puts, which flush waits for. */
  private readonly syncing = new Set<Promise<void>>();
  private syncError: unknown;
  /** Folders known to exist: a put into a known shard skips its mkdir. */
  private readonly folders = new Set<string>();

  constructor(readonly root: string) {}

  get location(): string {
    return this.root;
  }

  private path(key: string): string {
    return join(this.root, ...validateKey(key).split('/'));
  }

  async has(key: string): Promise<boolean> {
    try {
      return (await stat(this.path(key))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw this.wrap(err, key);
    }
  }

  hasMany(keys: readonly string[]): Promise<boolean[]> {
    return mapLimit(keys, 64, (key) => this.has(key));
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const target = this.path(key);
    // Content-addressed objects are immutable; other keys (config, refs) are written once. A
    // put of an existing object rewrites identical bytes: the rename keeps it atomic either way.
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
    try {
      const handle = await open(this.path(key), 'r');
      return handle.createReadStream();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new ObjectNotFoundError(key, this.location);
      throw this.wrap(err, key);
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async *list(prefix: string): AsyncIterable<ListEntry> {
    // Start at the deepest folder the prefix names whole, then filter by the rest.
    const folder = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const start = folder ? join(this.root, ...folder.split('/')) : this.root;
    yield* this.walk(start, prefix);
  }

  private async *walk(dir: string, prefix: string): AsyncIterable<ListEntry> {
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
        yield* this.walk(full, prefix);
      } else if (entry.isFile() && !entry.name.endsWith(TEMP_SUFFIX)) {
        const key = full
          .slice(this.root.length + 1)
          .split(sep)
          .join('/');
        if (!key.startsWith(prefix)) continue;
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

  async close(): Promise<void> {}

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
