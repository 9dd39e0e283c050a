import { objectKey, type BlobStore } from '../store';
import type { Catalog, PackEntry } from './catalog';
import { encodeIndexObject, indexKey, LEGACY_PREFIX, type ObjectRecord } from './format';
import type { PackWriter } from './writer';

/** What a rewrite works on: a pack layer's catalog, writer, blob store and reads. */
export interface PackLayer {
  readonly catalog: Catalog;
  readonly writer: PackWriter;
  readonly blobs: BlobStore;
  readManyStored(
    hashes: readonly string[],
  ): Promise<{ bytes: Buffer; encoding: number; length: number }[]>;
}

/** What a rewrite of the index and packs is to do (gc's sweep, or removing objects at once). */
export interface RewritePlan {
  /**
   * Objects to remove (hex hashes): for each, the copies indexed at or before the time given (ms,
   * the store's clock; Infinity for every copy). A copy indexed later is kept.
   */
  drop: ReadonlyMap<string, number>;
  /**
   * Copies to remove whatever their hash and age: record numbers of the catalog (`tv repair packs`
   * drops corrupt copies this way, and keeps the intact copies of the same objects elsewhere).
   */
  dropCopies?: ReadonlySet<number>;
  /**
   * Whether a pack that keeps some objects and loses others is rewritten without them (else the
   * lost ones stay as dead bytes in it, named by no index, until a later rewrite).
   */
  repack(keptBytes: number, packBytes: number): boolean;
  /** Index objects to fold into the new ones though nothing in them changed (compaction). */
  merge?: ReadonlySet<string>;
  /** gc's condemned objects, recorded in the new index object (the newest such set holds). */
  condemned?: { hash: Buffer; since: number }[];
  /** Told the objects that go, before any index stops naming them (the cache forgets them). */
  beforeRemoval?(hashes: string[]): Promise<void>;
  dryRun?: boolean;
}

export interface RewriteResult {
  packsDeleted: number;
  packsRewritten: number;
  looseDeleted: number;
  /** Bytes of packs and loose objects removed from the store. */
  bytesFreed: number;
  /** Bytes copied into new packs (the kept objects of rewritten packs). */
  bytesRepacked: number;
  /** Bytes of removed objects left inside packs kept as they are (below the repack threshold). */
  deadBytesKept: number;
  indexObjectsReplaced: number;
}

/** Records per index object gc writes: big enough to keep them few, small enough to fetch. */
const INDEX_RECORDS = 100_000;

interface Fate {
  entry: PackEntry;
  kept: number[];
  dropped: number[];
  keptBytes: number;
  droppedBytes: number;
  action: 'describe' | 'repack' | 'delete';
}

/**
 * Rewrites the index (and packs) without the dropped objects, in an order that keeps every
 * reader right at every step, and a crash anywhere harmless:
 *
 * 1. the cache forgets the dropped objects (`beforeRemoval`);
 * 2. the kept objects of packs to rewrite are copied into new packs, durable and indexed;
 * 3. new index objects describe what the touched index objects described, minus the dropped
 *    objects, and the last one says it supersedes them (readers then forget those);
 * 4. the superseded index objects, then the packs and loose objects no longer named, are deleted.
 *
 * A crash before 3 leaves duplicates; between 3 and 4, blobs nobody names (gc removes them).
 */
export async function rewrite(store: PackLayer, plan: RewritePlan): Promise<RewriteResult> {
  const fates = decide(store, plan);
  const result: RewriteResult = {
    packsDeleted: 0,
    packsRewritten: 0,
    looseDeleted: 0,
    bytesFreed: 0,
    bytesRepacked: 0,
    deadBytesKept: 0,
    indexObjectsReplaced: 0,
  };
  const sources = new Set(fates.map((f) => f.entry.source));
  const indexSources = [...sources].filter((s) => !s.startsWith(LEGACY_PREFIX));
  result.indexObjectsReplaced = indexSources.length;
  const dropped = new Set<string>();
  for (const f of fates) {
    for (const r of f.dropped) dropped.add(store.catalog.objects.hashHex(r));
    if (f.entry.layout === 'loose') {
      result.looseDeleted += f.dropped.length;
      result.bytesFreed += f.droppedBytes;
    } else if (f.action === 'delete') {
      result.packsDeleted++;
      result.bytesFreed += f.entry.length || f.droppedBytes;
    } else if (f.action === 'repack') {
      result.packsRewritten++;
      result.bytesRepacked += f.keptBytes;
      result.bytesFreed += f.droppedBytes;
    } else result.deadBytesKept += f.droppedBytes;
  }
  if (plan.dryRun || (fates.length === 0 && !plan.condemned)) return result;

  const keptLoose = looseKept(store.catalog, fates);
  await plan.beforeRemoval?.([...dropped]);
  await repack(
    store,
    fates.filter((f) => f.action === 'repack'),
  );
  await describe(store, fates, indexSources, plan.condemned);
  const blobs = store.blobs;
  for (const source of indexSources) await blobs.delete(indexKey(source));
  for (const f of fates) {
    if (f.entry.layout === 'loose') {
      for (const r of f.dropped) {
        const hash = store.catalog.objects.hashHex(r);
        if (!keptLoose.has(hash)) await blobs.delete(objectKey(hash));
      }
    } else if (f.action !== 'describe') {
      // A format 2 pack goes after its .idx: readers tell a removed pack by its missing .idx.
      if (f.entry.layout === 'legacy') {
        await blobs.delete(f.entry.source);
        store.catalog.forget(f.entry.source);
      }
      await blobs.delete(f.entry.key);
    }
  }
  return result;
}

/**
 * Loose objects that lose a record and keep another: a loose object has one key, so a copy
 * stored again under it since (and kept) is the same blob, which stays.
 */
function looseKept(catalog: Catalog, fates: Fate[]): Set<string> {
  const dropped = new Set(fates.flatMap((f) => f.dropped));
  const kept = new Set<string>();
  for (const f of fates) {
    if (f.entry.layout !== 'loose') continue;
    for (const r of f.dropped) {
      const other = catalog.objects.find(
        catalog.objects.hash(r),
        (o) => !dropped.has(o) && catalog.pack(o).layout === 'loose',
      );
      if (other >= 0) kept.add(catalog.objects.hashHex(r));
    }
  }
  return kept;
}

/** What becomes of each pack of every index object the plan touches. */
function decide(store: PackLayer, plan: RewritePlan): Fate[] {
  const { catalog } = store;
  const fates: Fate[] = [];
  const sources = new Set(plan.merge ?? []);
  for (const entry of catalog.packs) {
    if (entry.gone) continue;
    const fate: Fate = {
      entry,
      kept: [],
      dropped: [],
      keptBytes: 0,
      droppedBytes: 0,
      action: 'describe',
    };
    for (let r = entry.first; r < entry.first + entry.count; r++) {
      if (!catalog.objects.isLive(r)) continue;
      const bytes = catalog.location(r).storedLength;
      const until = plan.drop.get(catalog.objects.hashHex(r));
      if ((until !== undefined && entry.indexedAt <= until) || plan.dropCopies?.has(r)) {
        fate.dropped.push(r);
        fate.droppedBytes += bytes;
      } else {
        fate.kept.push(r);
        fate.keptBytes += bytes;
      }
    }
    if (fate.dropped.length > 0) sources.add(entry.source);
    fates.push(fate);
  }
  const touched = fates.filter((f) => sources.has(f.entry.source));
  for (const f of touched) {
    if (f.entry.layout === 'loose') continue;
    if (f.kept.length === 0) f.action = 'delete';
    else if (
      f.dropped.length > 0 &&
      (f.entry.layout === 'legacy' || plan.repack(f.keptBytes, f.entry.length))
    )
      f.action = 'repack'; // a format 2 pack cannot be described by a format 3 index object
  }
  return touched;
}

/** Copies the kept objects of these packs into new packs (durable and indexed when it returns). */
async function repack(store: PackLayer, fates: Fate[]): Promise<void> {
  for (const f of fates) {
    const hashes = f.kept.map((r) => store.catalog.objects.hashHex(r));
    // A pack's worth at a time: the kept objects of one pack come in a few ranged reads.
    for (let at = 0; at < hashes.length; at += 1024) {
      const batch = hashes.slice(at, at + 1024);
      // As stored: an object kept compressed is copied compressed, never decoded.
      const objects = await store.readManyStored(batch);
      for (const [i, hash] of batch.entries()) {
        const { bytes, encoding, length } = objects[i] as (typeof objects)[number];
        await store.writer.append(hash, bytes, encoding !== 0 ? { encoding, length } : undefined);
      }
    }
  }
  await store.writer.flush();
}

/** Writes the index objects that replace the touched ones; the last one supersedes them. */
async function describe(
  store: PackLayer,
  fates: Fate[],
  supersedes: string[],
  condemned: RewritePlan['condemned'],
): Promise<void> {
  const { catalog } = store;
  const record = (r: number): ObjectRecord => {
    const loc = catalog.location(r);
    return {
      hash: Buffer.from(catalog.objects.hash(r)),
      offset: loc.offset,
      storedLength: loc.storedLength,
      length: loc.length,
      encoding: loc.encoding,
    };
  };
  await writeIndexObjects(store, {
    packs: fates
      .filter((f) => f.action === 'describe' && f.entry.layout === 'pack')
      .map((f) => ({ name: f.entry.name, length: f.entry.length, records: f.kept.map(record) })),
    loose: fates.filter((f) => f.entry.layout === 'loose').flatMap((f) => f.kept.map(record)),
    supersedes,
    ...(condemned ? { condemned } : {}),
  });
}

export interface Descriptions {
  packs: { name: string; length: number; records: ObjectRecord[] }[];
  loose: ObjectRecord[];
  supersedes: string[];
  condemned?: { hash: Buffer; since: number }[];
}

/**
 * Writes index objects describing these packs and loose objects, at most INDEX_RECORDS records
 * each; the last one carries the superseded names and the condemned set, so readers forget the
 * old descriptions only once the new ones are all there.
 */
export async function writeIndexObjects(store: PackLayer, d: Descriptions): Promise<void> {
  const groups: { packs: Descriptions['packs']; loose: ObjectRecord[] }[] = [
    { packs: [], loose: [] },
  ];
  let size = 0;
  const next = () => {
    groups.push({ packs: [], loose: [] });
    size = 0;
  };
  for (const pack of d.packs) {
    if (size > 0 && size + pack.records.length > INDEX_RECORDS) next();
    (groups.at(-1) as (typeof groups)[number]).packs.push(pack);
    size += pack.records.length;
  }
  for (let at = 0; at < d.loose.length; at += INDEX_RECORDS) {
    if (size > 0) next();
    const part = d.loose.slice(at, at + INDEX_RECORDS);
    (groups.at(-1) as (typeof groups)[number]).loose.push(...part);
    size = part.length;
  }
  for (const [i, group] of groups.entries()) {
    const last = i === groups.length - 1;
    const empty = group.packs.length === 0 && group.loose.length === 0;
    if (empty && (!last || (d.supersedes.length === 0 && !d.condemned))) continue;
    await store.writer.writeIndex(
      encodeIndexObject({
        packs: group.packs,
        loose: group.loose,
        ...(last
          ? { supersedes: d.supersedes, ...(d.condemned ? { condemned: d.condemned } : {}) }
          : {}),
      }),
    );
  }
}
