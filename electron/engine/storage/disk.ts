import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, opendir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { mapLimit } from '../concurrency';
import { PACKS_DIR, PackError, PackSet } from './packs';
import {
  hashOfKey,
  ObjectNotFoundError,
  OBJECTS_PREFIX,
  StoreError,
  validateKey,
  type ListEntry,
  type Store,
} from './store';

const TEMP_SUFFIX = '.tmp';

/** Files written before a background fsync of them starts (see put). */
const SYNC_BATCH = 256;

export interface DiskStoreOptions {
  /**
   * "packed" (format 2): content-addressed objects are appended to pack files (packs.ts);
   * "loose" (format 1): one file per object. Either way both kinds are read.
   */
  layout?: 'packed' | 'loose';
  /** Pack size at which a pack is sealed (tests). */
  packBytes?: number;
}

/**
 * A Store in a local folder. Content-addressed objects go to pack files (or, in a format 1
 * repository, one file each); other keys (config, refs) are files of their own, written to a
 * temp file in their directory and renamed into place, so a crash never leaves a half-written
 * object under its real name. Putting an object again is harmless.
 */
export class DiskStore implements Store {
  /** Puts are durable, and packed objects visible to other processes, only after flush. */
  readonly durableOnPut = false;
  private readonly packs: PackSet;
  layout: 'packed' | 'loose';
  /** Files written and not yet being fsynced: fsynced before a version is made visible. */
  private unsynced = new Set<string>();
  /** Background fsyncs of earlier puts, which flush waits for. */
  private readonly syncing = new Set<Promise<void>>();
  private syncError: unknown;
  /** Folders known to exist: a put into a known shard skips its mkdir. */
  private readonly folders = new Set<string>();

  constructor(
    readonly root: string,
    options: DiskStoreOptions = {},
  ) {
    this.layout = options.layout ?? 'packed';
    this.packs = new PackSet(root, options.packBytes);
  }

  get location(): string {
    return this.root;
  }

  private path(key: string): string {
    validateKey(key);
    if (key === PACKS_DIR || key.startsWith(`${PACKS_DIR}/`))
      throw new StoreError(`invalid storage key "${key}": ${PACKS_DIR}/ is reserved`, 'BAD_KEY');
    return join(this.root, ...key.split('/'));
  }

  /** Where a packed object is (tests and debugging); undefined when it is not packed. */
  async locate(
    hash: string,
  ): Promise<{ file: string; offset: number; length: number } | undefined> {
    if (!this.packs.has(hash)) await this.guard(() => this.packs.refresh(), PACKS_DIR);
    return this.packs.locate(hash);
  }

  /**
   * Where each object lies in a pack, after one look for packs other processes added or rewrote;
   * undefined for an object that is not packed (loose, or absent). For readers that read the
   * files themselves (a restore's workers); a pack can still be rewritten by another process's
   * gc before they read it, so they fall back to get when a read fails.
   */
  async locateMany(
    hashes: readonly string[],
  ): Promise<({ file: string; offset: number; length: number } | undefined)[]> {
    await this.guard(() => this.packs.refresh(), PACKS_DIR);
    return hashes.map((hash) => this.packs.locate(hash));
  }

  async has(key: string): Promise<boolean> {
    return (await this.hasMany([key]))[0] as boolean;
  }

  async hasMany(keys: readonly string[]): Promise<boolean[]> {
    const hashes = keys.map((key) => (this.path(key), hashOfKey(key)));
    // Packs other processes added or rewrote (gc) since we last looked: a hit must not come from
    // an index that is gone (a push would name an object gc removed). One stat when nothing moved.
    if (hashes.some((hash) => hash)) await this.guard(() => this.packs.refresh(), PACKS_DIR);
    const answers = hashes.map((hash) => hash !== undefined && this.packs.has(hash));
    // Then loose files: other keys, and objects of format 1 (skipped where there are none).
    const loose = existsSync(join(this.root, OBJECTS_PREFIX));
    const rest = keys.flatMap((key, i) => (!answers[i] && (loose || !hashes[i]) ? [i] : []));
    const found = await mapLimit(rest, 64, (i) => this.isFile(keys[i] as string));
    rest.forEach((i, k) => (answers[i] = found[k] as boolean));
    return answers;
  }

  private async isFile(key: string): Promise<boolean> {
    try {
      return (await stat(this.path(key))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw this.wrap(err, key);
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const hash = hashOfKey(key);
    if (hash && this.layout === 'packed') {
      return this.guard(() => this.packs.put(hash, data), key);
    }
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
    const path = this.path(key);
    const hash = hashOfKey(key);
    if (hash) {
      // As for has: never read through an index another process's gc has removed (its pack may
      // still be open here). One stat when nothing moved.
      const packed = await this.guard(async () => {
        await this.packs.refresh();
        return this.packs.read(hash);
      }, key);
      if (packed) return packed;
    }
    try {
      const handle = await open(path, 'r');
      return handle.createReadStream();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new ObjectNotFoundError(key, this.location);
      throw this.wrap(err, key);
    }
  }

  /** Removes the object; a packed one is gone for lookups at once and from disk at flush. */
  async delete(key: string): Promise<void> {
    const path = this.path(key);
    const hash = hashOfKey(key);
    if (hash) this.packs.delete(hash);
    await rm(path, { force: true });
  }

  async *list(prefix: string): AsyncIterable<ListEntry> {
    if (OBJECTS_PREFIX.startsWith(prefix) || prefix.startsWith(OBJECTS_PREFIX)) {
      await this.guard(() => this.packs.refresh(), PACKS_DIR);
      for (const o of this.packs.objects()) {
        const key = `${OBJECTS_PREFIX}${o.hash.slice(0, 2)}/${o.hash}`;
        if (key.startsWith(prefix)) yield { key, size: o.size, modified: o.modified };
      }
    }
    // Start at the deepest folder the prefix names whole, then filter by the rest.
    const folder = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const start = folder ? join(this.root, ...folder.split('/')) : this.root;
    yield* this.walk(start, prefix);
  }

  /**
   * Removes packs that pushes which never finished left behind, once older than the given age
   * (gc calls it with its grace period; a younger one may be a push still running).
   */
  removeAbandoned(olderThanMs: number, now?: number): Promise<{ files: number; bytes: number }> {
    return this.guard(() => this.packs.removeAbandoned(olderThanMs, now), PACKS_DIR);
  }

  private async guard<T>(action: () => Promise<T>, key: string): Promise<T> {
    try {
      return await action();
    } catch (err) {
      throw this.wrap(err, key);
    }
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
      if (dir === this.root && entry.name === PACKS_DIR) continue; // not keys: listed above
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
    await Promise.all([
      this.guard(() => this.packs.flush(), PACKS_DIR),
      this.syncFiles(files, 32),
      ...this.syncing,
    ]);
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
    await this.packs.close();
  }

  private wrap(err: unknown, key: string): Error {
    if (err instanceof StoreError) return err;
    if (err instanceof PackError) return new StoreError(err.message, err.code, { cause: err });
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
