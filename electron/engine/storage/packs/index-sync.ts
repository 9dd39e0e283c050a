import { stat } from 'node:fs/promises';
import { mapLimit } from '../../concurrency';
import { ObjectNotFoundError, readAll, type BlobStore } from '../store';
import type { Catalog } from './catalog';
import type { CatalogSnapshotFile } from './catalog-snapshot';
import {
  decodeIndexObject,
  decodeLegacyIndex,
  INDEX_NAME,
  INDEX_PREFIX,
  indexKey,
  indexTime,
  LEGACY_PREFIX,
  PackFormatError,
  type IndexContent,
} from './format';
import type { LocalCopy } from './local-copy';

/**
 * How far before the newest index object a remote listing starts. Index objects are named by the
 * store's clock (S3's Date header) when they are written, and written in one request: one that
 * appears later than this after its name's time would be missed by incremental listings (until
 * the next full one), which costs a duplicate upload, never a wrong answer (see docs/format.md).
 */
export const LISTING_MARGIN_MS = 15 * 60_000;
/** A remote repository's index objects are listed whole at least this often (and by gc, repair). */
const FULL_LISTING_EVERY_MS = 24 * 3600_000;
/** Records a snapshot may lack before it is written again (see saveSnapshot). */
const SNAPSHOT_BEHIND = 4096;
/** How long after a folder's mtime a listing of it is sure to include the change. */
const RACY_MS = 100;

/**
 * Brings a Catalog up to date with the index objects in a blob store. From a remote store (S3) it
 * lists only the names written since the newest it knows (they sort by time), and keeps what it
 * fetched in a LocalCopy, so a push of a repository of tens of thousands of packs lists a page
 * and fetches what is new. A folder is listed whole, once its folder's mtime moved. Format 2
 * pack indexes (.idx in packs/, folders only) are read the same way.
 */
export class IndexSync {
  /** The newest index time known (ms, the store's clock), never past the time of a listing. */
  private highWater = -1;
  private localLoaded: Promise<void> | undefined;
  /** performance.now() when the last finished sync began. */
  private syncedAt = -Infinity;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private queuedFull = false;
  /**
   * When set (repair), an index object that fails its checks is reported here and passed over;
   * otherwise it stops the sync with an error that names it.
   */
  onDamaged: ((name: string, err: Error) => void) | undefined;
  /** A folder's mtime at its last listing, while that listing can be trusted (folders only). */
  private readonly listedMtime = new Map<string, number>();
  /**
   * No format 2 packs when first looked at, in a repository of format 3: none come later (format
   * 3 never writes them, and clients of format 2 do not open a repository of format 3).
   */
  private noLegacy = false;
  /** The catalog's change count when it was last read from or written to the snapshot. */
  private snapshotChanges = 0;
  /** Records the snapshot held when read or written; undefined while none was. */
  private snapshotRecords: number | undefined;

  /**
   * `legacyMayAppear`: a repository of format 2, where clients of that format may still add
   * packs/ (in format 3 no client does: a missing packs/ folder is looked for once).
   */
  constructor(
    private readonly blobs: BlobStore,
    private readonly catalog: Catalog,
    private readonly local: LocalCopy | undefined,
    private readonly legacyMayAppear = false,
    /** Where the catalog is kept between processes (see catalog-snapshot.ts). */
    private readonly snapshot?: CatalogSnapshotFile,
  ) {}

  /**
   * A sync that began after this call: a running one serves those that came before it began;
   * all that come while it runs share the one queued after it.
   */
  sync(options: { full?: boolean } = {}): Promise<void> {
    if (options.full) this.queuedFull = true;
    if (this.queued) return this.queued;
    const start = (): Promise<void> => {
      const full = this.queuedFull;
      this.queuedFull = false;
      const begun = performance.now();
      const run = this.run(full)
        .then(() => {
          this.syncedAt = begun;
        })
        .finally(() => {
          if (this.running === run) this.running = undefined;
        });
      this.running = run;
      return run;
    };
    if (!this.running) return start();
    this.queued = this.running
      .catch(() => {})
      .then(() => {
        this.queued = undefined;
        return start();
      });
    return this.queued;
  }

  /**
   * Syncs unless a sync began less than `maxAgeMs` ago (existence checks during a push need not
   * list a remote store again for every batch; a folder's sync is one stat of each of its index
   * folders when nothing moved).
   */
  async fresh(maxAgeMs: number): Promise<void> {
    if (this.isFresh(maxAgeMs)) return;
    await this.sync();
  }

  /** Whether the last sync is younger than maxAgeMs. */
  isFresh(maxAgeMs: number): boolean {
    return performance.now() - this.syncedAt < maxAgeMs;
  }

  /** Drops the local copy: the next sync fetches every index object again (repair). */
  async clearLocalCopy(): Promise<void> {
    await this.local?.clear();
    await this.snapshot?.remove();
    this.highWater = -1;
  }

  /**
   * Writes the catalog's snapshot (a command ending; the app closing), once no sync runs: when
   * there was none, or when it lacks enough records that applying them each time would cost more
   * than writing it (a push adds an index object or two: those are applied, not written, until
   * they add up to 5% of the records).
   */
  async saveSnapshot(): Promise<void> {
    if (!this.snapshot || this.catalog.changes === this.snapshotChanges) return;
    await Promise.allSettled([this.running, this.queued]);
    const records = this.catalog.objects.length;
    const held = this.snapshotRecords;
    if (held !== undefined && records - held < Math.max(SNAPSHOT_BEHIND, held / 20)) return;
    const changes = this.catalog.changes;
    await this.snapshot.write(this.catalog.state());
    this.snapshotChanges = changes;
    this.snapshotRecords = records;
  }

  /** Applies an index object this client wrote (and keeps it in the local copy). */
  async adopt(name: string, bytes: Buffer): Promise<void> {
    this.catalog.apply(name, decodeIndexObject(bytes, indexKey(name)), indexTime(name));
    await this.local?.write(name, bytes);
  }

  private async run(full: boolean): Promise<void> {
    this.localLoaded ??= this.loadLocal();
    await this.localLoaded;
    const listedAt = this.blobs.now();
    const whole =
      full ||
      !this.blobs.remote ||
      this.highWater < 0 ||
      listedAt - ((await this.local?.listed())?.fullAt ?? 0) > FULL_LISTING_EVERY_MS;
    await this.syncIndexObjects(whole, listedAt);
    if (!this.blobs.remote && !this.noLegacy) await this.syncLegacy();
  }

  /**
   * Applies what the local copy holds (checked like anything fetched; damaged ones dropped). The
   * next listing starts where the copy's last one ended, unless files went missing from it.
   */
  private async loadLocal(): Promise<void> {
    await this.loadSnapshot();
    const local = this.local;
    if (!local) return;
    const names = await local.names();
    const listed = await local.listed();
    if (listed && names.length >= listed.held) this.highWater = listed.at;
    // Those the snapshot's catalog applied (or was told were superseded) are not read again.
    const unknown = names.filter((name) => !this.catalog.knows(name));
    const read = await mapLimit(unknown, 16, async (name) => {
      const bytes = await local.read(name);
      try {
        return bytes && decodeIndexObject(bytes, indexKey(name));
      } catch {
        await local.remove(name);
        return undefined;
      }
    });
    this.catalog.reserveFor(read);
    read.forEach((content, i) => content && this.applyOne(unknown[i] as string, content));
  }

  /** Starts an empty catalog from the snapshot, when there is a sound one of this repository. */
  private async loadSnapshot(): Promise<void> {
    if (!this.snapshot || this.catalog.changes > 0) return;
    const state = await this.snapshot.read();
    if (!state) return;
    this.catalog.restore(state);
    this.snapshotChanges = this.catalog.changes;
    this.snapshotRecords = this.catalog.objects.length;
  }

  private async syncIndexObjects(whole: boolean, listedAt: number): Promise<void> {
    const names = await this.listNames(
      INDEX_PREFIX,
      whole
        ? undefined
        : indexKey(String(Math.max(0, this.highWater - LISTING_MARGIN_MS)).padStart(13, '0')),
    );
    if (!names) return; // a folder whose index folder did not change
    const fresh = names.filter((n) => !this.catalog.knows(n)).sort();
    const fetched = await mapLimit(fresh, 16, (name) => this.fetch(name));
    this.catalog.reserveFor(fetched);
    fresh.forEach((name, i) => {
      const content = fetched[i];
      if (content) this.applyOne(name, content);
    });
    if (whole) {
      // Every index object is listed: one that is gone was removed by gc (after it wrote the
      // one that replaces it) or by repair; what it said no longer holds.
      const listed = new Set(names);
      for (const source of this.catalog.sources())
        if (!source.startsWith(LEGACY_PREFIX) && !listed.has(source)) this.catalog.forget(source);
      for (const name of (await this.local?.names()) ?? [])
        if (!listed.has(name)) await this.local?.remove(name);
    }
    // Everything named before the listing began is known now; the next listing starts a margin
    // before it (by the store's clock, as the names are), whatever times the names carry.
    this.highWater = listedAt;
    await this.local?.setListed({
      at: listedAt,
      held: (await this.local.names()).length,
      ...(whole ? { fullAt: listedAt } : {}),
    });
  }

  private applyOne(name: string, content: IndexContent): void {
    this.catalog.apply(name, content, indexTime(name));
    for (const old of content.supersedes) void this.local?.remove(old);
  }

  /** An index object's content: from the local copy when it holds it, else fetched (and kept). */
  private async fetch(name: string): Promise<IndexContent | undefined> {
    const key = indexKey(name);
    const held = await this.local?.read(name);
    if (held) {
      try {
        return decodeIndexObject(held, key);
      } catch {
        await this.local?.remove(name); // a damaged copy: fetched again below
      }
    }
    let bytes: Buffer;
    try {
      bytes = await readAll(this.blobs, key);
    } catch (err) {
      // Removed since it was listed (gc replaced it): the object that replaces it is newer.
      if (err instanceof ObjectNotFoundError) return undefined;
      throw err;
    }
    let content: IndexContent;
    try {
      content = decodeIndexObject(bytes, `${key} in ${this.blobs.location}`);
    } catch (err) {
      if (!this.onDamaged || !(err instanceof PackFormatError)) throw err;
      this.onDamaged(name, err);
      return undefined;
    }
    await this.local?.write(name, bytes);
    return content;
  }

  /** Format 2 pack indexes: applied when new, forgotten when their .idx is gone. */
  private async syncLegacy(): Promise<void> {
    const names = await this.listNames(LEGACY_PREFIX);
    if (!names) return;
    if (names.length === 0 && !this.legacyMayAppear) this.noLegacy = true;
    const sources = new Set(
      names.filter((n) => n.endsWith('.idx')).map((n) => `${LEGACY_PREFIX}${n}`),
    );
    for (const source of this.catalog.sources())
      if (source.startsWith(LEGACY_PREFIX) && !sources.has(source)) this.catalog.forget(source);
    const fresh = [...sources].filter((s) => !this.catalog.knows(s)).sort();
    const read = await mapLimit(fresh, 16, async (source) => {
      try {
        const [bytes, modified] = await Promise.all([
          readAll(this.blobs, source),
          this.modified(source),
        ]);
        return { records: decodeLegacyIndex(bytes, this.where(source)), modified };
      } catch (err) {
        if (err instanceof ObjectNotFoundError) return undefined; // removed since the listing
        throw err;
      }
    });
    read.forEach(
      (r, i) => r && this.catalog.applyLegacy(fresh[i] as string, r.records, r.modified),
    );
  }

  private where(key: string): string {
    return this.blobs.localPath?.(key) ?? `${key} in ${this.blobs.location}`;
  }

  private async modified(key: string): Promise<number> {
    const path = this.blobs.localPath?.(key);
    if (!path) return this.blobs.now();
    return (await stat(path)).mtimeMs;
  }

  /**
   * The names under a prefix (without it), or undefined for a folder that did not change since
   * its last trusted listing: a folder's mtime moves with every file added or removed, and is
   * trusted once the listing began well after it (timestamps are per clock tick).
   */
  private async listNames(prefix: string, startAfter?: string): Promise<string[] | undefined> {
    const folder = this.blobs.remote ? undefined : this.blobs.localPath?.(prefix.slice(0, -1));
    let trusted: number | undefined;
    if (folder) {
      const listedAt = Date.now();
      const mtime = await stat(folder).then(
        (s) => s.mtimeMs,
        () => undefined,
      );
      if (mtime === undefined) return [];
      if (this.listedMtime.get(prefix) === mtime) return undefined;
      this.listedMtime.delete(prefix);
      trusted = listedAt - mtime > RACY_MS ? mtime : undefined;
    }
    const names: string[] = [];
    for await (const entry of this.blobs.list(prefix, {
      keysOnly: true,
      ...(startAfter ? { startAfter } : {}),
    })) {
      const name = entry.key.slice(prefix.length);
      if (prefix === INDEX_PREFIX ? INDEX_NAME.test(name) : !name.includes('/')) names.push(name);
    }
    if (trusted !== undefined) this.listedMtime.set(prefix, trusted);
    return names;
  }
}
