import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Entries kept per repository and kind; the least recently written go first. */
const MAX_ENTRIES = 500;

const SAFE = /^[0-9a-f-]{1,200}$/;

/**
 * Reports and diffs kept on this machine. A version never changes, so what is computed from
 * versions alone (a report, keyed by the version's id; a diff, by both ids) holds for as long as
 * the code computing it does: each entry is also keyed by the computation's format number, and a
 * result of another number is not found. Files are written whole (temp file, then rename); one
 * that cannot be read or parsed is removed and computed again.
 */
export class ReportCache {
  constructor(
    /** The user cache folder (see config.userCacheDir). */
    private readonly root: string,
    private readonly repositoryId: string,
    private readonly format: number,
  ) {}

  private folder(kind: 'report' | 'diff'): string {
    return join(this.root, 'reports', this.repositoryId, kind);
  }

  private file(kind: 'report' | 'diff', key: string): string {
    if (!SAFE.test(key) || !SAFE.test(this.repositoryId))
      throw new Error(`report cache: malformed key "${key}"`);
    return join(this.folder(kind), `${key}.f${this.format}.json`);
  }

  async get<T>(kind: 'report' | 'diff', key: string): Promise<T | undefined> {
    const file = this.file(kind, key);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      await rm(file, { force: true });
      return undefined;
    }
  }

  /** Keeps a result; a cache that cannot be written costs speed only, never the result. */
  async put(kind: 'report' | 'diff', key: string, value: unknown): Promise<void> {
    const file = this.file(kind, key);
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(this.folder(kind), { recursive: true });
      await writeFile(temp, JSON.stringify(value));
      await rename(temp, file);
      await this.trim(kind);
    } catch {
      await rm(temp, { force: true }).catch(() => {});
    }
  }

  /** Removes the oldest entries beyond MAX_ENTRIES. */
  private async trim(kind: 'report' | 'diff'): Promise<void> {
    const folder = this.folder(kind);
    const names = (await readdir(folder)).filter((n) => n.endsWith('.json'));
    if (names.length <= MAX_ENTRIES) return;
    const dated = await Promise.all(
      names.map(async (n) => ({
        n,
        t: (await stat(join(folder, n)).catch(() => undefined))?.mtimeMs ?? 0,
      })),
    );
    dated.sort((a, b) => a.t - b.t);
    for (const { n } of dated.slice(0, names.length - MAX_ENTRIES))
      await rm(join(folder, n), { force: true });
  }
}
