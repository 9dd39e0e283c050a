import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod/mini';
import type { Logger } from '../log';

/**
 * The files cache (as borg's and git's index): per repository and model, on this machine, what
 * each file pushed last looked like on disk (size, mtime, ctime, inode, device) and the manifest
 * its bytes produced. A file that still looks the same is not read again: its manifest is reused.
 *
 * It only ever saves time. A missing, unreadable or damaged cache is an empty one; a record is
 * used only when every stamp field matches, and never for a file changed within the same second
 * as its record (the stamps cannot tell such a change apart: git's "racily clean" files); the
 * caller checks that a reused manifest is one the repository holds. Records live under the
 * repository's id, so no manifest is ever reused across repositories.
 *
 * Layout: `<cache>/files/<repositoryId>/<model>.json`, written to a temp file and renamed.
 */

/** What a file looked like on disk: stat's fields, the times in nanoseconds. */
export interface FileStamp {
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  dev: string;
}

const Stamp = z.object({
  size: z.number().check(z.int(), z.nonnegative()),
  mtimeNs: z.string().check(z.regex(/^\d+$/)),
  ctimeNs: z.string().check(z.regex(/^\d+$/)),
  ino: z.string().check(z.regex(/^\d+$/)),
  dev: z.string().check(z.regex(/^\d+$/)),
});

const CacheRecord = z.object({
  /** The file's absolute path on this machine. */
  path: z.string(),
  stamp: Stamp,
  /** When the stamp was taken (ms since the epoch), before the file was read. */
  stampedAt: z.number(),
  manifest: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
  /** Last push that used or wrote the record (ms): the oldest go first when there are too many. */
  usedAt: z.number(),
});
type CacheRecord = z.infer<typeof CacheRecord>;

const CacheFile = z.object({
  format: z.literal(1),
  repositoryId: z.string(),
  model: z.string(),
  /** What the last push of the model from this machine was given (absolute paths). */
  sources: z.optional(z.array(z.string())),
  records: z.array(CacheRecord),
});

/** Records kept per model: the most recently used. */
const MAX_RECORDS = 100_000;

/** A file's stamp, or undefined when it cannot be stat'ed (the push reports that itself). */
export async function stampOf(path: string): Promise<FileStamp | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return {
      size: Number(s.size),
      mtimeNs: String(s.mtimeNs),
      ctimeNs: String(s.ctimeNs),
      ino: String(s.ino),
      dev: String(s.dev),
    };
  } catch {
    return undefined;
  }
}

export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return (
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.ino === b.ino &&
    a.dev === b.dev
  );
}

/** Whole seconds of a nanosecond time. */
const seconds = (ns: string) => Number(BigInt(ns) / 1_000_000_000n);

export class FilesCache {
  private readonly records = new Map<string, CacheRecord>();
  private changed = false;
  /** The files and folders the last push of the model from this machine was given. */
  sources: string[] = [];

  private constructor(
    private readonly file: string,
    private readonly repositoryId: string,
    private readonly model: string,
  ) {}

  /**
   * The model's cache in `dir` (the user's cache folder's `files`), read now. Never fails: what
   * cannot be read is logged and leaves the cache empty.
   */
  static async open(
    dir: string,
    repositoryId: string,
    model: string,
    logger?: Logger,
  ): Promise<FilesCache> {
    const cache = new FilesCache(join(dir, repositoryId, `${model}.json`), repositoryId, model);
    let text: string;
    try {
      text = await readFile(cache.file, 'utf8');
    } catch {
      return cache; // none yet, or unreadable: an empty cache
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      raw = undefined;
    }
    const parsed = CacheFile.safeParse(raw);
    if (
      !parsed.success ||
      parsed.data.repositoryId !== repositoryId ||
      parsed.data.model !== model
    ) {
      logger?.debug(`files cache ${cache.file} is damaged or not this model's: starting afresh`);
      return cache;
    }
    for (const record of parsed.data.records) cache.records.set(record.path, record);
    cache.sources = parsed.data.sources ?? [];
    return cache;
  }

  /**
   * The manifest recorded for the file at `path`, when it looks exactly as recorded and was not
   * changed within the same second as the record was made.
   */
  lookup(path: string, stamp: FileStamp): string | undefined {
    const record = this.records.get(path);
    if (!record || !sameStamp(record.stamp, stamp)) return undefined;
    const recorded = Math.floor(record.stampedAt / 1000);
    if (seconds(stamp.mtimeNs) >= recorded || seconds(stamp.ctimeNs) >= recorded) return undefined;
    return record.manifest;
  }

  /**
   * Whether the cache has a trusted record for every file (a hint, before a push: it need not
   * start the workers that would read them). Streams have none.
   */
  async vouchesForAll(files: readonly { file?: string; size: number }[]): Promise<boolean> {
    for (const f of files) {
      const stamp = f.file ? await stampOf(f.file) : undefined;
      if (!f.file || !stamp || stamp.size !== f.size || !this.lookup(f.file, stamp)) return false;
    }
    return true;
  }

  /** Marks a record as used by this push (kept in preference to older ones). */
  touch(path: string, now = Date.now()): void {
    const record = this.records.get(path);
    if (record) {
      record.usedAt = now;
      this.changed = true;
    }
  }

  /** Records what a file looked like (`stamp`, taken at `stampedAt`, before it was read) and its manifest. */
  record(path: string, stamp: FileStamp, stampedAt: number, manifest: string): void {
    this.records.set(path, { path, stamp, stampedAt, manifest, usedAt: Date.now() });
    this.changed = true;
  }

  /** Remembers what a push was given (absolute paths), for `tv status MODEL` without a path. */
  setSources(paths: string[]): void {
    if (JSON.stringify(paths) === JSON.stringify(this.sources)) return;
    this.sources = paths;
    this.changed = true;
  }

  /** Forgets a file whose record proved wrong (its manifest is not in the repository). */
  forget(path: string): void {
    if (this.records.delete(path)) this.changed = true;
  }

  /** Writes the cache (temp file, then rename); a failure is logged, never thrown. */
  async save(logger?: Logger): Promise<void> {
    if (!this.changed) return;
    const records = [...this.records.values()]
      .sort((a, b) => b.usedAt - a.usedAt)
      .slice(0, MAX_RECORDS);
    const body = JSON.stringify({
      format: 1,
      repositoryId: this.repositoryId,
      model: this.model,
      sources: this.sources,
      records,
    });
    const temp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(join(this.file, '..'), { recursive: true });
      await writeFile(temp, body, { mode: 0o600 });
      await rename(temp, this.file);
      this.changed = false;
    } catch (err) {
      await rm(temp, { force: true }).catch(() => {});
      logger?.debug(`cannot write the files cache ${this.file}: ${(err as Error).message}`);
    }
  }
}
