import { hostname, userInfo } from 'node:os';
import { dedupRatio, formatUtc } from '../../../shared/format';
import type { RepositoryInfo, VersionSummary } from '../../../shared/types';
import { DEFAULT_PROFILE, MiB, type ChunkingParams } from '../chunking/params';
import { userCacheDir } from '../config';
import { createHasher, type HashAlgorithm, type HashFn } from '../hashing';
import { silentLogger, type Logger } from '../log';
import { mapLimit } from '../concurrency';
import {
  composeStack,
  openBackend,
  openBackendChecking,
  type StorageStack,
} from '../storage/compose';
import type { CachedStoreOptions } from '../storage/cached';
import { encodeIndexObject, looseRecord, type ObjectRecord } from '../storage/packs/format';
import type { CompressionScheme } from '../storage/packs/encodings';
import { PackedStore } from '../storage/packs/packed-store';
import type { S3Options } from '../storage/s3';
import {
  hashOfKey,
  ObjectNotFoundError,
  objectKey,
  OBJECTS_PREFIX,
  readAll,
  type BlobStore,
  type Store,
} from '../storage/store';
import {
  CONFIG_KEY,
  decodeManifest,
  encodeTombstone,
  encodeVersion,
  FORMAT,
  FormatError,
  newConfig,
  parseConfig,
  parseRefKey,
  parseTombstone,
  parseVersion,
  REFS_PREFIX,
  refKey,
  TOMBSTONE_SUFFIX,
  validateModelName,
  type Manifest,
  type ParsedRef,
  type Removal,
  type RepositoryConfig,
  type VersionRecord,
} from './format';
import {
  currentTags,
  encodeTagRecord,
  tagKey,
  tagMoves,
  validateTagName,
  type TagMove,
} from './tags';

export interface OpenOptions {
  /** A path, file:// URL or s3://bucket/prefix. */
  repository: string;
  redisUrl?: string | undefined;
  s3?: S3Options;
  cache?: Omit<CachedStoreOptions, 'namespace' | 'logger'>;
  logger?: Logger;
  /** Create the repository with these settings when the location holds none. */
  createIfMissing?: InitOptions;
  /** The user's cache folder (default: the platform's; tests give a temp folder). */
  cacheDir?: string;
}

export interface InitOptions {
  hash?: HashAlgorithm;
  chunking?: ChunkingParams;
  /** Bytes per pack (default: defaultPackSize for the backend). */
  packSize?: number;
  /** How chunks are compressed in packs (format 3; default none). */
  compression?: CompressionScheme;
  /** An older format to create (tests and the benchmark: 1 keeps a blob per object). */
  format?: number;
}

/**
 * The pack size a repository gets unless `tv init --pack-size` says otherwise. On S3 16 MiB: its
 * two packs in flight kept a 4 GiB push at 268 MB of RSS (target < 300); 32 MiB packs add 32 MiB
 * and pushed faster cold but no faster warm or restoring at 30 ms per request
 * (docs/benchmarks.md). In a folder, where a pack costs a few fsyncs and no request and is not
 * held in memory, bigger packs.
 */
export function defaultPackSize(remote: boolean): number {
  return remote ? 16 * MiB : 64 * MiB;
}

/** Records per index object an upgrade writes for the loose objects it finds. */
const UPGRADE_INDEX_RECORDS = 100_000;

export class RepositoryError extends Error {
  override name = 'RepositoryError';
}

/** A version as listed: its record plus where it stands among the model's versions. */
export interface VersionEntry {
  model: string;
  number: number;
  id: string;
  ref: ParsedRef;
  record: VersionRecord;
}

/** A ref with its version's number; `removed` is its tombstone when the version was removed. */
export interface NumberedRef {
  model: string;
  number: number;
  ref: ParsedRef;
  removed: ParsedRef | undefined;
}

export class Repository {
  readonly hash: HashFn;
  private readonly records = new Map<string, VersionRecord>();
  /** Recently read manifests (immutable, so never stale). */
  private readonly manifests = new Map<string, Manifest>();
  /** The latest version of each model as this client last listed it (others may push since). */
  private readonly lastListed = new Map<string, VersionEntry>();

  private constructor(
    private currentStack: StorageStack,
    private readonly opened: OpenOptions,
    private current: RepositoryConfig,
    readonly location: string,
    hash: HashFn,
    /** True when this open created the repository. */
    readonly created: boolean,
  ) {
    this.hash = hash;
  }

  /** Opens the repository at a location (creating it when asked), with the cache if configured. */
  static async open(options: OpenOptions): Promise<Repository> {
    const { store: backend, checked } = await openBackendChecking(options.repository, options.s3);
    try {
      let created = false;
      // The config is read while the store's check is under way: read, it vouches for the bucket
      // and the credentials; not read, the check's error says why, when there is one.
      let config = await readConfig(backend).catch(async (err: unknown) => {
        await checked;
        throw err;
      });
      if (!config) {
        await checked;
        if (!options.createIfMissing) {
          throw new RepositoryError(
            `no TensorVault repository at ${backend.location}: run \`tv init\` there first (or push, which creates one)`,
          );
        }
        config = await writeNewConfig(backend, options.createIfMissing);
        created = true;
      }
      const stack = await stackFor(backend, options, config);
      return new Repository(
        stack,
        options,
        config,
        backend.location,
        await createHasher(config.hash),
        created,
      );
    } catch (err) {
      await backend.close();
      throw err;
    }
  }

  /** Creates a repository; refuses a location that already holds one. */
  static async init(options: OpenOptions & InitOptions): Promise<Repository> {
    const backend = await openBackend(options.repository, options.s3);
    try {
      if (await readConfig(backend)) {
        throw new RepositoryError(
          `${backend.location} already holds a TensorVault repository: nothing to do`,
        );
      }
    } finally {
      await backend.close();
    }
    return Repository.open({
      ...options,
      createIfMissing: {
        hash: options.hash ?? 'sha256',
        chunking: options.chunking ?? DEFAULT_PROFILE,
        ...(options.packSize !== undefined ? { packSize: options.packSize } : {}),
        ...(options.compression !== undefined ? { compression: options.compression } : {}),
        ...(options.format !== undefined ? { format: options.format } : {}),
      },
    });
  }

  get stack(): StorageStack {
    return this.currentStack;
  }

  get store(): Store {
    return this.stack.store;
  }

  get config(): RepositoryConfig {
    return this.current;
  }

  /**
   * Moves a repository of format 1 (a blob per object) or 2 (folder packs) to format 3: every
   * loose object is named in index objects (so existence checks need no request per object), then
   * the config says 3. The loose objects and format 2 packs stay where they are and are read as
   * before; new chunks go to format 3 packs. Clients that know only older formats refuse the
   * repository afterwards. A crash before the config is written leaves the old format, with
   * index objects it ignores.
   */
  async upgrade(): Promise<{ from: number; to: number; looseObjects: number }> {
    const from = this.current.format;
    if (from >= FORMAT) return { from, to: from, looseObjects: 0 };
    const blobs = this.stack.blobs;
    const packSize = defaultPackSize(blobs.remote);
    const writer = new PackedStore(blobs, { packBytes: packSize, packsInFlight: 1 }).writer;
    let looseObjects = 0;
    let records: ObjectRecord[] = [];
    const write = async () => {
      if (records.length > 0) await writer.writeIndex(encodeIndexObject({ loose: records }));
      records = [];
    };
    for await (const entry of blobs.list(OBJECTS_PREFIX)) {
      const hash = hashOfKey(entry.key);
      if (!hash) continue;
      records.push(looseRecord(hash, entry.size));
      looseObjects++;
      if (records.length >= UPGRADE_INDEX_RECORDS) await write();
    }
    await write();
    const config: RepositoryConfig = { ...this.current, format: FORMAT, packSize };
    await blobs.put(CONFIG_KEY, Buffer.from(JSON.stringify(config, null, 2)));
    await blobs.flush();
    // The stack of the old format goes; this repository is of format 3 from here on.
    await this.stack.close();
    this.current = config;
    this.currentStack = await stackFor(
      await openBackend(this.opened.repository, this.opened.s3),
      this.opened,
      config,
    );
    return { from, to: FORMAT, looseObjects };
  }

  /** Bytes at which a pack is sealed (format 3). */
  get packSize(): number {
    return this.config.packSize ?? defaultPackSize(this.stack.blobs.remote);
  }

  /** How this client compresses chunks it writes to packs ('none' without packs). */
  get compression(): CompressionScheme {
    return this.stack.packs ? (this.config.compression ?? 'none') : 'none';
  }

  get chunking(): ChunkingParams {
    const { minSize, avgSize, maxSize } = this.config.chunking;
    return { minSize, avgSize, maxSize };
  }

  info(): RepositoryInfo {
    return {
      location: this.location,
      repositoryId: this.config.repositoryId,
      format: this.config.format,
      hash: this.config.hash,
      chunking: this.chunking,
      packSize: this.config.format >= 3 ? this.packSize : null,
      compression: this.compression,
      createdAt: this.config.createdAt,
    };
  }

  async close(): Promise<void> {
    await this.stack.close();
  }

  // --- refs and versions ------------------------------------------------------------------------

  /** Every ref of every model (or of one), tombstones included, in creation order. */
  async refs(model?: string): Promise<ParsedRef[]> {
    const refs: ParsedRef[] = [];
    for await (const entry of this.store.list(model ? `${REFS_PREFIX}${model}/` : REFS_PREFIX)) {
      const ref = parseRefKey(entry.key);
      if (ref) refs.push(ref);
    }
    return refs.sort((a, b) =>
      a.base < b.base ? -1 : a.base > b.base ? 1 : Number(a.tombstone) - Number(b.tombstone),
    );
  }

  async modelNames(): Promise<string[]> {
    const refs = await this.refs();
    const live = new Set<string>();
    const removed = new Set(refs.filter((r) => r.tombstone).map((r) => r.base));
    for (const ref of refs) if (!ref.tombstone && !removed.has(ref.base)) live.add(ref.model);
    return [...live].sort();
  }

  /**
   * A model's refs with their numbers (creation order), removed versions included: they keep
   * their numbers, so numbers never change. `removed` is the version's tombstone, if any.
   */
  async numberedRefs(model: string): Promise<NumberedRef[]> {
    validateModelName(model);
    const refs = await this.refs(model);
    const tombstones = new Map(refs.filter((r) => r.tombstone).map((r) => [r.base, r]));
    return refs
      .filter((r) => !r.tombstone)
      .map((ref, i) => ({ model, ref, number: i + 1, removed: tombstones.get(ref.base) }));
  }

  /** A model's live refs with their numbers (creation order; removed versions keep theirs). */
  async liveRefs(model: string): Promise<NumberedRef[]> {
    return (await this.numberedRefs(model)).filter((r) => !r.removed);
  }

  /** A model's live versions, numbered by creation order; none for a model that has none. */
  async versions(model: string): Promise<VersionEntry[]> {
    return this.liveEntries(model, await this.numberedRefs(model));
  }

  /** A model's live versions; an error naming the model when it has none. */
  async requireVersions(model: string): Promise<VersionEntry[]> {
    const numbered = await this.numberedRefs(model);
    const entries = await this.liveEntries(model, numbered);
    if (entries.length === 0) throw this.noVersions(model, numbered.length);
    return entries;
  }

  /**
   * A model's latest live version, its record the only one read (a push needs its parent, not
   * the hundreds of versions before it); undefined for a model that has none.
   */
  async latestVersion(model: string): Promise<VersionEntry | undefined> {
    const latest = (await this.liveRefs(model)).at(-1);
    if (!latest) {
      this.lastListed.delete(model);
      return undefined;
    }
    const entry = await this.entryOf(latest);
    this.lastListed.set(model, entry);
    return entry;
  }

  /** The version a live numbered ref names, its record read. */
  private async entryOf({ model, ref, number }: NumberedRef): Promise<VersionEntry> {
    return { model, number, id: ref.versionId, ref, record: await this.readVersion(ref.versionId) };
  }

  private async liveEntries(model: string, numbered: NumberedRef[]): Promise<VersionEntry[]> {
    const entries = await Promise.all(
      numbered.filter((r) => !r.removed).map((r) => this.entryOf(r)),
    );
    const latest = entries.at(-1);
    if (latest) this.lastListed.set(model, latest);
    else this.lastListed.delete(model);
    return entries;
  }

  private noVersions(model: string, removed: number): RepositoryError {
    return new RepositoryError(
      removed === 0
        ? `model "${model}" has no versions in ${this.location} (see \`tv models\`)`
        : `model "${model}" has no versions: its ${removed === 1 ? '1 version was' : `${removed} versions were`} removed (tv rm); see \`tv models\``,
    );
  }

  /**
   * The model's latest version when this client last listed it, with no request: a hint only
   * (another client may have pushed or removed versions since), for what works with any version.
   */
  lastListedVersion(model: string): VersionEntry | undefined {
    return this.lastListed.get(model);
  }

  /** A manifest read or written before, with no request; undefined when it is not at hand. */
  manifestAtHand(hash: string): Manifest | undefined {
    return this.manifests.get(hash);
  }

  /**
   * Removes a version (`MODEL@VERSION`) or every version of a model (`MODEL`) by writing
   * tombstone refs that say when and by whom: nothing is overwritten or deleted; gc reclaims the
   * data later.
   */
  async remove(selector: string): Promise<VersionEntry[]> {
    const targets = selector.includes('@')
      ? [await this.resolve(selector)]
      : await this.requireVersions(validateModelName(selector));
    const now = new Date();
    const by = defaultAuthor();
    for (const v of targets)
      await this.store.put(`${v.ref.base}${TOMBSTONE_SUFFIX}`, encodeTombstone(v.id, now, by));
    await this.store.flush();
    return targets;
  }

  /**
   * Resolves `MODEL`, `MODEL@vN`, `MODEL@latest`, `MODEL@<id prefix>` or `MODEL@<tag>` to a live
   * version. A removed version is an error that says when and by whom it was removed.
   */
  async resolve(selector: string): Promise<VersionEntry> {
    const at = selector.indexOf('@');
    const model = validateModelName(at < 0 ? selector : selector.slice(0, at));
    const which = at < 0 ? 'latest' : selector.slice(at + 1);
    if (which === '')
      throw new RepositoryError(
        `"${selector}" names no version: after the @ give vN, latest or a version id prefix (see \`tv log ${model}\`)`,
      );
    // Only the record of the version named is read, however many the model has.
    const numbered = await this.numberedRefs(model);
    const live = numbered.filter((r) => !r.removed);
    if (live.length === 0) throw this.noVersions(model, numbered.length);
    if (which === 'latest') {
      const entry = await this.entryOf(live.at(-1) as NumberedRef);
      this.lastListed.set(model, entry);
      return entry;
    }
    const pick = async (found: NumberedRef): Promise<VersionEntry> => {
      if (found.removed) throw await this.removedError(found);
      return this.entryOf(found);
    };
    const numberMatch = /^v(\d+)$/.exec(which);
    if (numberMatch) {
      const found = numbered.find((r) => r.number === Number(numberMatch[1]));
      if (!found)
        throw new RepositoryError(
          `model "${model}" has no version ${which} (it has ${describeLabels(live)}; see \`tv log ${model}\`)`,
        );
      return pick(found);
    }
    if (/^[0-9a-f]{4,64}$/.test(which)) {
      const matches = numbered.filter((r) => r.ref.versionId.startsWith(which));
      if (matches.length === 1) return pick(matches[0] as NumberedRef);
      if (matches.length > 1)
        throw new RepositoryError(
          `version id prefix "${which}" of "${model}" is ambiguous: give more characters`,
        );
    }
    const tagged = currentTags(await tagMoves(this.store, model, which)).get(which);
    const target = tagged && numbered.find((r) => r.ref.versionId === tagged.version);
    if (target) {
      if (target.removed)
        throw new RepositoryError(
          `tag "${which}" of ${model} points at v${target.number}, which was removed: ${(await this.removedError(target)).message} (move the tag with \`tv tag ${model}@vN ${which}\`)`,
        );
      return pick(target);
    }
    throw new RepositoryError(
      `model "${model}" has no version "${which}", nor a tag of that name: use vN, latest, a tag, or an id prefix (see \`tv log ${model}\` and \`tv tags ${model}\`)`,
    );
  }

  // --- tags (see tags.ts) -------------------------------------------------------------------------

  /** Every move of a model's tags, oldest first. */
  tagMoves(model: string): Promise<TagMove[]> {
    return tagMoves(this.store, model);
  }

  /**
   * Points a tag at a version (setting or moving it): a new record, never an overwrite. Returns
   * the move written, or undefined when the tag already pointed there (nothing is written).
   */
  async setTag(
    entry: VersionEntry,
    tag: string,
  ): Promise<{ move: TagMove | undefined; previous: string | null }> {
    validateTagName(tag);
    const current = currentTags(await tagMoves(this.store, entry.model, tag)).get(tag);
    const previous = current?.version ?? null;
    if (previous === entry.id) return { move: undefined, previous };
    return { move: await this.writeTag(entry.model, tag, entry.id, current), previous };
  }

  /** Deletes a tag (a record saying so); an error when the model has no such tag. */
  async deleteTag(model: string, tag: string): Promise<{ previous: string }> {
    validateModelName(model);
    const current = currentTags(await tagMoves(this.store, model, tag)).get(tag);
    if (!current?.version)
      throw new RepositoryError(`model "${model}" has no tag "${tag}" (see \`tv tags ${model}\`)`);
    await this.writeTag(model, tag, null, current);
    return { previous: current.version };
  }

  /**
   * Writes a tag move after `current` (the tag's newest move): stamped now, or a millisecond
   * after it when this clock runs behind, so that the newest move is the one made last.
   */
  private async writeTag(
    model: string,
    tag: string,
    version: string | null,
    current: TagMove | undefined,
  ): Promise<TagMove> {
    const at = Math.max(Date.now(), (current?.at ?? 0) + 1);
    const key = tagKey(model, tag, at, version);
    await this.store.put(
      key,
      encodeTagRecord(model, tag, version, current?.version ?? null, defaultAuthor(), new Date(at)),
    );
    await this.store.flush();
    return { key, model, tag, at, version };
  }

  /** When and by whom a removed version was removed, as its tombstone says. */
  async removal(ref: NumberedRef): Promise<Removal> {
    if (!ref.removed) throw new Error(`${ref.model} v${ref.number} is not removed`);
    try {
      return parseTombstone(await readAll(this.store, ref.removed.key));
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return { removedAt: null, removedBy: null };
      throw err;
    }
  }

  private async removedError(ref: NumberedRef): Promise<RepositoryError> {
    const [removal, kept] = await Promise.all([
      this.removal(ref),
      this.stack.backend.has(objectKey(ref.ref.versionId)),
    ]);
    const when =
      removal.removedAt && removal.removedBy
        ? ` on ${formatUtc(removal.removedAt)} by ${removal.removedBy} (tv rm)`
        : ' (tv rm; when and by whom were not recorded)';
    return new RepositoryError(
      `${ref.model} v${ref.number} (${ref.ref.versionId.slice(0, 12)}) was removed${when}; ${kept ? 'its data stays until tv gc reclaims it' : 'tv gc has reclaimed its data'}`,
    );
  }

  async readVersion(id: string): Promise<VersionRecord> {
    const cached = this.records.get(id);
    if (cached) return cached;
    const record = parseVersion(await this.readObject(id, 'version record'), id);
    this.records.set(id, record);
    return record;
  }

  async readManifest(hash: string): Promise<Manifest> {
    const cached = this.manifests.get(hash);
    if (cached) return cached;
    const manifest = decodeManifest(await this.readObject(hash, 'file manifest'), hash);
    this.rememberManifest(hash, manifest);
    return manifest;
  }

  /** Keeps a manifest this client wrote or read (immutable), so the next push need not read it. */
  rememberManifest(hash: string, manifest: Manifest): void {
    if (this.manifests.size >= 256)
      this.manifests.delete(this.manifests.keys().next().value as string);
    this.manifests.set(hash, manifest);
  }

  /**
   * The bytes of several objects (chunks of a file's range, for a report): from packs, those
   * that lie together in one ranged read; otherwise one read each, side by side. Not checked
   * against their hashes: the caller does.
   */
  async readObjects(hashes: readonly string[]): Promise<Buffer[]> {
    const packs = this.stack.packs;
    if (packs) return packs.readMany(hashes);
    return mapLimit(hashes, 16, (hash) => readAll(this.store, objectKey(hash)));
  }

  private async readObject(hash: string, what: string): Promise<Buffer> {
    try {
      const bytes = await readAll(this.store, objectKey(hash));
      const actual = this.hash(bytes);
      if (actual !== hash)
        throw new FormatError(
          `${what} ${hash} is corrupt: its content hashes to ${actual} (run \`tv verify --full\` to find every damaged object)`,
        );
      return bytes;
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw new RepositoryError(
          `${what} ${hash} is missing from ${this.location} (run \`tv verify\`)`,
        );
      }
      throw err;
    }
  }

  /**
   * Makes the objects this client stored durable, with no version: a push identical to its
   * parent may have stored chunks the repository had lost (--no-cache after a repair). Packs are
   * written for many callers at once: a pack of these objects that failed may have been reported
   * to another caller's flush, so every one of `written` must be named now.
   */
  async storeDurably(
    written: readonly string[],
    failed = (lost: number) => `${lost} objects could not be stored (an upload failed): push again`,
  ): Promise<void> {
    await this.store.flush();
    const lost = this.stack.packs?.notDurable(written) ?? [];
    if (lost.length > 0) throw new RepositoryError(failed(lost.length));
  }

  /**
   * Publishes a version whose chunks are stored (and whose manifests are, or are being: `stored`
   * settles when they are): stores the record, makes everything durable, checks that every object
   * it stored (`written`) is, then writes the ref, the one step that makes the version visible.
   */
  async publish(
    record: VersionRecord,
    stored?: Promise<unknown>,
    written: readonly string[] = [],
  ): Promise<VersionEntry> {
    validateModelName(record.model);
    const bytes = encodeVersion(record);
    const id = this.hash(bytes);
    // The model's refs are listed while everything is stored: the new ref's time must come after
    // every one of them (see refTime).
    const listed = this.refs(record.model);
    listed.catch(() => {}); // awaited below
    // The record is stored alongside the objects still being stored (`stored`: the manifests),
    // while the flush seals the last pack: the index object written once that pack is durable
    // names the manifests and the record too (a second flush names one put too late for it,
    // and makes no request otherwise). All of them durable, then the ref.
    await Promise.all([
      stored,
      this.store.put(objectKey(id), bytes, { ...this.putOptions(id), loose: true }),
      this.store.flush(),
    ]);
    await this.storeDurably(
      [...written, id],
      (lost) =>
        `${lost} objects of this version could not be stored (an upload failed): no version was written; push again`,
    );
    const key = refKey(record.model, refTime(await listed), id);
    await this.store.put(key, Buffer.from(id));
    await this.store.flush();
    this.records.set(id, record);
    // The number is the ref's place among the refs listed after it landed, so that it counts
    // every version another workstation published while this one was storing its objects.
    const refs = (await this.refs(record.model)).filter((r) => !r.tombstone);
    const entry: VersionEntry = {
      model: record.model,
      number: refs.filter((r) => r.base < key).length + 1,
      id,
      ref: parseRefKey(key) as ParsedRef,
      record,
    };
    if (!refs.some((r) => r.base > key)) this.lastListed.set(record.model, entry);
    return entry;
  }

  /** Options for storing an object whose content address is `hash`. */
  putOptions(hash: string): { sha256?: string } {
    return this.config.hash === 'sha256' ? { sha256: hash } : {};
  }

  summarize(entry: VersionEntry, tags: string[] = []): VersionSummary {
    const { record } = entry;
    return {
      model: entry.model,
      number: entry.number,
      label: `v${entry.number}`,
      id: entry.id,
      shortId: entry.id.slice(0, 12),
      parent: record.parent,
      createdAt: record.createdAt,
      author: record.author,
      message: record.message,
      files: record.files.length,
      stats: record.stats,
      dedupRatio: dedupRatio(record.stats.logicalBytes, record.stats.newBytes),
      tags,
    };
  }
}

/**
 * The time a new ref gets: now, or a millisecond after the newest ref listed, whichever is later.
 * A workstation whose clock runs behind would otherwise write a ref that sorts before versions
 * already published, and every later version's number would change.
 */
export function refTime(listed: readonly ParsedRef[], now = Date.now()): number {
  const newest = listed.reduce((t, r) => Math.max(t, r.createdAtMs), 0);
  return Math.max(now, newest + 1);
}

/** "v2, v3 and v5", or "12 versions, v2 to v14": what a model has, for messages. */
function describeLabels(versions: { number: number }[]): string {
  const labels = versions.map((v) => `v${v.number}`);
  if (labels.length > 5) return `${labels.length} versions, ${labels[0]} to ${labels.at(-1)}`;
  return labels.length === 1
    ? (labels[0] as string)
    : `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)}`;
}

export function defaultAuthor(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `unknown@${hostname()}`;
  }
}

async function readConfig(backend: Store): Promise<RepositoryConfig | undefined> {
  try {
    return parseConfig(await readAll(backend, CONFIG_KEY), backend.location);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
}

/** The store stack for a repository of this config. */
function stackFor(
  backend: BlobStore,
  options: OpenOptions,
  config: RepositoryConfig,
): Promise<StorageStack> {
  return composeStack(
    backend,
    {
      repository: options.repository,
      redisUrl: options.redisUrl,
      ...(options.cache ? { cache: options.cache } : {}),
      logger: options.logger ?? silentLogger,
      cacheDir: options.cacheDir ?? userCacheDir(),
    },
    {
      repositoryId: config.repositoryId,
      format: config.format,
      packSize: config.packSize ?? defaultPackSize(backend.remote),
    },
  );
}

async function writeNewConfig(backend: BlobStore, options: InitOptions): Promise<RepositoryConfig> {
  const format = options.format ?? FORMAT;
  const config = newConfig(
    options.hash ?? 'sha256',
    options.chunking ?? DEFAULT_PROFILE,
    format,
    format >= 3 ? (options.packSize ?? defaultPackSize(backend.remote)) : undefined,
    options.compression,
  );
  await backend.put(CONFIG_KEY, Buffer.from(JSON.stringify(config, null, 2)));
  await backend.flush();
  // Two clients creating the same repository at once: the one whose config landed wins for both.
  return (await readConfig(backend)) ?? config;
}
