import { objectKey } from '../store';
import {
  LEGACY_PREFIX,
  legacyPackKey,
  packKey,
  readRecordInto,
  recordFields,
  type IndexContent,
  type ObjectRecord,
  type Records,
} from './format';
import { ObjectIndex, type Location, type ObjectIndexState } from './object-index';

/** A pack as the index describes it; loose objects of one index section count as one "pack". */
/** An object as gc sees it: see Catalog.objectSummary. */
export interface ObjectSummary {
  size: number;
  indexedAt: number;
  indexedAfter: number | undefined;
}

export interface PackEntry {
  no: number;
  /** 32 hex characters (format 3), 24 (format 2), or "" for loose objects. */
  name: string;
  layout: 'pack' | 'legacy' | 'loose';
  /** The pack's blob key ("" for loose objects: each has its own, objectKey(hash)). */
  key: string;
  length: number;
  /** The index object (or format 2 .idx key) that described it. */
  source: string;
  /** When that index was written, by the store's clock (ms): the age of the pack's objects. */
  indexedAt: number;
  /** Its records in the object index: [first, first + count). */
  first: number;
  count: number;
  gone: boolean;
}

/** A Catalog as it is in memory, for a snapshot (see catalog-snapshot.ts). */
export interface CatalogState {
  packs: PackEntry[];
  /** Pack numbers by source (index object name or .idx key). */
  sources: [string, number[]][];
  superseded: string[];
  condemned: [string, number][];
  condemnedAt: number;
  objects: ObjectIndexState;
}

/**
 * What a client knows of a repository's objects: the packs the index objects describe and where
 * each object lies, plus gc's condemned objects. Only durable objects are here (an index object
 * is written after its pack is durable). In memory; IndexSync brings it up to date.
 */
export class Catalog {
  readonly objects = new ObjectIndex();
  readonly packs: PackEntry[] = [];
  /** Pack numbers by source (index object name or .idx key). */
  private readonly bySource = new Map<string, number[]>();
  /** Index objects gc replaced: never applied, even when a listing still shows them. */
  private readonly superseded = new Set<string>();
  /** The newest condemned set: hash → since when unreachable; and when gc wrote it. */
  private condemned = new Map<string, number>();
  private condemnedAt = -1;
  /** Moves with every change (a snapshot is written when it moved since the last one). */
  changes = 0;

  /** Its state, sharing its buffers (see catalog-snapshot.ts). */
  state(): CatalogState {
    return {
      packs: this.packs,
      sources: [...this.bySource],
      superseded: [...this.superseded],
      condemned: [...this.condemned],
      condemnedAt: this.condemnedAt,
      objects: this.objects.state(),
    };
  }

  /** Takes a state back, into an empty catalog: what the sources it names said, once applied. */
  restore(state: CatalogState): void {
    if (this.packs.length > 0 || this.bySource.size > 0 || this.superseded.size > 0)
      throw new Error('a catalog is restored only while empty');
    this.objects.restore(state.objects);
    this.packs.push(...state.packs);
    for (const [source, packs] of state.sources) this.bySource.set(source, packs);
    for (const source of state.superseded) this.superseded.add(source);
    this.condemned = new Map(state.condemned);
    this.condemnedAt = state.condemnedAt;
  }

  /** Whether a source was applied (and is not forgotten), or was superseded. */
  knows(source: string): boolean {
    return this.bySource.has(source) || this.superseded.has(source);
  }

  isSuperseded(source: string): boolean {
    return this.superseded.has(source);
  }

  /** The sources applied and not forgotten. */
  sources(): string[] {
    return [...this.bySource.keys()];
  }

  /** Records each index object (not format 2 .idx) describes, by its name. */
  indexSizes(): Map<string, number> {
    const sizes = new Map<string, number>();
    for (const [source, packs] of this.bySource) {
      if (source.startsWith(LEGACY_PREFIX)) continue;
      sizes.set(
        source,
        packs.reduce((n, no) => n + (this.packs[no] as PackEntry).count, 0),
      );
    }
    return sizes;
  }

  /**
   * Every object named, each once however many copies: its size, when its oldest copy was indexed
   * (ms, the store's clock), and when its oldest copy indexed after `after` was (undefined when
   * none was): gc tells copies a push stored after the condemned set was written that way.
   */
  objectSummary(after = Infinity): Map<string, ObjectSummary> {
    const summary = new Map<string, ObjectSummary>();
    for (const record of this.records()) {
      const hash = this.objects.hashHex(record);
      const indexedAt = this.pack(record).indexedAt;
      const later = indexedAt > after ? indexedAt : undefined;
      const known = summary.get(hash);
      if (!known) {
        const size = this.objects.objectLength(record);
        summary.set(hash, { size, indexedAt, indexedAfter: later });
        continue;
      }
      if (indexedAt < known.indexedAt) known.indexedAt = indexedAt;
      if (later !== undefined && (known.indexedAfter === undefined || later < known.indexedAfter))
        known.indexedAfter = later;
    }
    return summary;
  }

  /**
   * Makes room for the records of these index objects at once, before they are applied one by
   * one: growing step by step copies the table and rehashes it each time (tens of milliseconds
   * for a 4 GiB repository, on memory touched for the first time).
   */
  reserveFor(contents: readonly (IndexContent | undefined)[]): void {
    let count = 0;
    for (const content of contents) {
      if (!content) continue;
      for (const pack of content.packs) count += pack.records.count;
      count += content.loose?.count ?? 0;
    }
    this.objects.reserve(count);
  }

  /** Applies an index object written at `time` (the store's clock, from its name). */
  apply(source: string, content: IndexContent, time: number): void {
    if (this.knows(source)) return;
    this.changes++;
    for (const old of content.supersedes) {
      this.forget(old);
      this.superseded.add(old);
    }
    const added: number[] = [];
    for (const pack of content.packs)
      added.push(
        this.addPack(
          source,
          pack.name,
          'pack',
          packKey(pack.name),
          pack.length,
          time,
          pack.records,
        ),
      );
    if (content.loose) added.push(this.addPack(source, '', 'loose', '', 0, time, content.loose));
    this.bySource.set(source, added);
    if (content.condemned && time > this.condemnedAt) {
      const { hashes, since } = content.condemned;
      this.condemned = new Map(
        since.map((s, i) => [hashes.toString('hex', i * 32, i * 32 + 32), s]),
      );
      this.condemnedAt = time;
    }
  }

  /** Applies a format 2 pack index (.idx beside its pack), dated by its mtime. */
  applyLegacy(source: string, records: ObjectRecord[], modified: number): void {
    if (this.knows(source)) return;
    this.changes++;
    const name = source.slice(LEGACY_PREFIX.length, -'.idx'.length);
    const no = this.addPack(source, name, 'legacy', legacyPackKey(name), 0, modified, records);
    this.bySource.set(source, [no]);
  }

  private addPack(
    source: string,
    name: string,
    layout: PackEntry['layout'],
    key: string,
    length: number,
    indexedAt: number,
    records: Records | ObjectRecord[],
  ): number {
    const no = this.packs.length;
    const count = Array.isArray(records) ? records.length : records.count;
    this.objects.reserve(count);
    const first = this.objects.length;
    if (Array.isArray(records))
      for (const r of records)
        this.objects.addFields(r.hash, 0, no, r.offset, r.storedLength, r.length, r.encoding);
    else {
      const r = recordFields();
      for (let i = 0; i < count; i++) {
        readRecordInto(records, i, r);
        const { hashAt, offset, storedLength, length, encoding } = r;
        this.objects.addFields(records.bytes, hashAt, no, offset, storedLength, length, encoding);
      }
    }
    this.packs.push({
      no,
      name,
      layout,
      key,
      length,
      source,
      indexedAt,
      first,
      count,
      gone: false,
    });
    return no;
  }

  /** Forgets what a source said (it is gone, or superseded). */
  forget(source: string): void {
    if (this.bySource.has(source)) this.changes++;
    for (const no of this.bySource.get(source) ?? []) {
      const pack = this.packs[no] as PackEntry;
      pack.gone = true;
      this.objects.kill(pack.first, pack.count);
    }
    this.bySource.delete(source);
  }

  /**
   * A live record of the object, or -1. For "store" (may a push rely on this copy?), a copy gc
   * condemned is passed over: gc may remove it once its grace period ends. A copy indexed after
   * gc condemned the object is new, and counts.
   */
  find(hash: string, purpose: 'read' | 'store'): number {
    const key = Buffer.from(hash, 'hex');
    const since = purpose === 'store' ? this.condemned.get(hash) : undefined;
    if (since === undefined) return this.objects.find(key);
    return this.objects.find(key, (r) => this.pack(r).indexedAt > this.condemnedAt);
  }

  pack(record: number): PackEntry {
    return this.packs[this.objects.pack(record)] as PackEntry;
  }

  location(record: number): Location {
    return this.objects.location(record);
  }

  /** The blob key holding a record's bytes. */
  keyOf(record: number): string {
    const pack = this.pack(record);
    return pack.layout === 'loose' ? objectKey(this.objects.hashHex(record)) : pack.key;
  }

  /** Live packs (not loose entries). */
  livePacks(): PackEntry[] {
    return this.packs.filter((p) => !p.gone && p.layout !== 'loose');
  }

  /** Every live record, once per entry (an object in two packs appears twice). */
  *records(): Generator<number> {
    for (const pack of this.packs) {
      if (pack.gone) continue;
      for (let r = pack.first; r < pack.first + pack.count; r++)
        if (this.objects.isLive(r)) yield r;
    }
  }

  /** gc's condemned objects (hex hash → since when unreachable, ms) and when it wrote them. */
  condemnedSet(): { at: number; since: ReadonlyMap<string, number> } {
    return { at: this.condemnedAt, since: this.condemned };
  }
}
