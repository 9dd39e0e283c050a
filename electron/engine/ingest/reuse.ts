import type { Manifest, VersionRecord } from '../repository/format';
import type { Repository, VersionEntry } from '../repository/repository';
import { sameStamp, stampOf, type FileStamp, type FilesCache } from './files-cache';
import type { ParentFiles } from './push';
import type { FileSource } from './sources';

/**
 * A push's use of the files cache: files on disk that look as recorded get their manifest back
 * without being read, as long as the repository holds that manifest and its chunks (the
 * parent's manifests do; another is read and its chunks checked, as a push checks any chunk);
 * files that were read are recorded once the push has stored their manifests.
 */
export class CachedFiles {
  /** Each file's stamp, taken before it was looked up or read, and when. */
  private readonly stamps = new Map<string, { stamp: FileStamp; at: number }>();

  constructor(
    private readonly cache: FilesCache,
    /** False with --no-cache: every file is read (and recorded afresh). */
    private readonly lookups: boolean,
    private readonly repo: Repository,
    private readonly listing: Promise<{ parent: VersionEntry | undefined; files: ParentFiles }>,
    private readonly exists: (hashes: string[]) => Promise<boolean[]>,
  ) {}

  /** The manifest of a file the cache vouches for; undefined when it must be read. */
  async manifestFor(source: FileSource): Promise<Manifest | undefined> {
    if (!source.file) return undefined;
    const at = Date.now();
    const stamp = await stampOf(source.file);
    if (!stamp || stamp.size !== source.size) return undefined;
    this.stamps.set(source.file, { stamp, at });
    if (!this.lookups) return undefined;
    const hash = this.cache.lookup(source.file, stamp);
    if (!hash) return undefined;
    const manifest = await this.held(hash).catch(() => undefined);
    if (!manifest || manifest.size !== source.size) {
      this.cache.forget(source.file);
      return undefined;
    }
    this.cache.touch(source.file);
    return manifest;
  }

  /** A manifest the repository holds with every chunk it names, or undefined. */
  private async held(hash: string): Promise<Manifest | undefined> {
    const { files } = await this.listing;
    const parentHas = [...files.values()].some((f) => f.manifest === hash);
    const manifest = this.repo.manifestAtHand(hash) ?? (await this.repo.readManifest(hash));
    if (parentHas) return manifest;
    const known = new Set<string>();
    for (const f of files.values()) for (const c of f.content.chunks) known.add(c.hash);
    const others = [...new Set(manifest.chunks.map((c) => c.hash))].filter((h) => !known.has(h));
    const found = others.length > 0 ? await this.exists(others) : [];
    return found.every(Boolean) ? manifest : undefined;
  }

  /**
   * Records the files this push read (`files[i]` is `sources[i]`'s entry), unless one changed
   * while it was read (its stamp moved), and writes the cache.
   */
  async save(sources: readonly FileSource[], files: VersionRecord['files']): Promise<void> {
    await Promise.all(
      sources.map(async (source, i) => {
        const before = source.file ? this.stamps.get(source.file) : undefined;
        const file = files[i];
        if (!source.file || !before || !file) return;
        if (this.lookups && this.cache.lookup(source.file, before.stamp) === file.manifest) return;
        const after = await stampOf(source.file);
        if (after && sameStamp(after, before.stamp))
          this.cache.record(source.file, before.stamp, before.at, file.manifest);
      }),
    );
    await this.cache.save();
  }
}
