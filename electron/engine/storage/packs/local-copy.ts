import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { INDEX_NAME } from './format';

const ListedSchema = z.object({
  /** When the last listing began (ms, the store's clock): everything named before is held. */
  at: z.number(),
  /** How many index objects the copy held then (fewer now: files went missing). */
  held: z.number().check(z.int()),
  /** When the last listing of every index object began. */
  fullAt: z.optional(z.number()),
});
const StateSchema = z.object({ location: z.string(), listed: z.optional(ListedSchema) });
type State = z.infer<typeof StateSchema>;
export type Listed = z.infer<typeof ListedSchema>;

/**
 * A repository's folder in the user's cache folder: by its id and a digest of its location (a
 * bucket copied elsewhere keeps its id but not its contents).
 */
export function repositoryCacheDir(
  cacheDir: string,
  repositoryId: string,
  location: string,
): string {
  const digest = createHash('sha256').update(location).digest('hex').slice(0, 12);
  return join(cacheDir, 'repositories', `${repositoryId}-${digest}`);
}

/**
 * A copy of a remote repository's index objects in the user's cache folder, so that a push reads
 * only the index objects written since the last one. One folder per repository, named by its id
 * and a digest of its location (a bucket copied elsewhere keeps its id but not its contents):
 *
 *   <cache>/repositories/<repository id>-<sha256(location)[0:12]>/index/<name>   the objects
 *   .../state.json                                                               when last listed whole
 *   .../catalog                                   the catalog (see catalog-snapshot.ts; folders too)
 *
 * Nothing here is trusted more than the store: every object is checked (its checksum) when read,
 * and a damaged or missing copy is fetched again. Losing the folder costs time, never data.
 */
export class LocalCopy {
  readonly dir: string;
  private state: State | undefined;

  constructor(
    cacheDir: string,
    repositoryId: string,
    private readonly location: string,
  ) {
    this.dir = repositoryCacheDir(cacheDir, repositoryId, location);
  }

  private get indexDir(): string {
    return join(this.dir, 'index');
  }

  /** Names of the index objects held, in name order (oldest first). */
  async names(): Promise<string[]> {
    const names = await readdir(this.indexDir).catch(() => [] as string[]);
    return names.filter((n) => INDEX_NAME.test(n)).sort();
  }

  async read(name: string): Promise<Buffer | undefined> {
    return readFile(join(this.indexDir, name)).catch(() => undefined);
  }

  /** Keeps an object (temp file, rename): a crash leaves it whole or absent, never half. */
  async write(name: string, bytes: Buffer): Promise<void> {
    await mkdir(this.indexDir, { recursive: true });
    const target = join(this.indexDir, name);
    const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temp, bytes);
      await rename(temp, target);
    } catch {
      // A cache that cannot be written only costs the next sync time.
      await unlink(temp).catch(() => {});
    }
  }

  async remove(name: string): Promise<void> {
    await rm(join(this.indexDir, name), { force: true });
  }

  async listed(): Promise<Listed | undefined> {
    return (await this.loadState()).listed;
  }

  /** Records a listing; a listing that was not whole keeps the time of the last whole one. */
  async setListed(listed: Listed): Promise<void> {
    const previous = (await this.loadState()).listed;
    const fullAt = listed.fullAt ?? previous?.fullAt;
    const state: State = {
      location: this.location,
      listed: { at: listed.at, held: listed.held, ...(fullAt !== undefined ? { fullAt } : {}) },
    };
    this.state = state;
    await mkdir(this.dir, { recursive: true }).catch(() => {});
    const target = join(this.dir, 'state.json');
    const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temp, JSON.stringify(state));
      await rename(temp, target);
    } catch {
      await unlink(temp).catch(() => {});
    }
  }

  private async loadState(): Promise<State> {
    if (this.state) return this.state;
    let state: State = { location: this.location };
    try {
      const parsed = StateSchema.safeParse(
        JSON.parse(await readFile(join(this.dir, 'state.json'), 'utf8')),
      );
      if (parsed.success && parsed.data.location === this.location) state = parsed.data;
    } catch {
      // Missing or damaged: the next sync lists everything.
    }
    this.state = state;
    return state;
  }

  /** Drops the whole copy (`tv repair index`). */
  async clear(): Promise<void> {
    this.state = undefined;
    await rm(this.dir, { recursive: true, force: true });
  }
}
