import type { RepairResult } from '../../../shared/types';
import { mapLimit } from '../concurrency';
import type { Repository } from '../repository/repository';
import { RepositoryError } from '../repository/repository';
import type { PackEntry } from '../storage/packs/catalog';
import {
  DATA_PREFIX,
  indexKey,
  looseRecord,
  packNameOfKey,
  PackFormatError,
  type ObjectRecord,
} from '../storage/packs/format';
import { writeIndexObjects } from '../storage/packs/maintenance';
import { PackedStore } from '../storage/packs/packed-store';
import { readTrailer } from '../storage/packs/trailer';
import { hashOfKey, OBJECTS_PREFIX } from '../storage/store';

/**
 * Rebuilds the index from what the store holds: every pack no index object names (its own, lost
 * or damaged) is indexed again from its trailer; packs an index object names that are gone are
 * dropped from the index; loose objects no index object names are named; damaged index objects
 * are replaced and removed. Safe beside pushes: it only adds descriptions of durable blobs, and
 * supersedes only the index objects it replaces. The local copy of the index starts afresh.
 */
export async function repairIndex(repo: Repository): Promise<RepairResult> {
  const started = performance.now();
  const own = repo.stack.packs;
  if (!own || repo.config.format < 3)
    throw new RepositoryError(
      `${repo.location} is a repository of format ${repo.config.format}, whose objects have no index to repair (run \`tv upgrade\` to move it to format 3)`,
    );
  // A catalog of its own, built from the store alone: every index object fetched and checked,
  // whatever this client (or its local copy) knew before.
  const packs = new PackedStore(own.blobs, { packBytes: repo.packSize, packsInFlight: 1 });
  const damaged: string[] = [];
  packs.sync.onDamaged = (name) => damaged.push(name);
  try {
    await packs.sync.sync({ full: true });
  } finally {
    packs.sync.onDamaged = undefined;
  }
  const { catalog } = packs;
  const listed = await listPacks(packs);
  const named = new Map<string, PackEntry[]>();
  for (const entry of catalog.livePacks())
    if (entry.layout === 'pack') named.set(entry.name, [...(named.get(entry.name) ?? []), entry]);

  // Packs no index names: indexed again from their own trailers.
  const unnamed = [...listed].filter(([name]) => !named.has(name));
  const unreadable: string[] = [];
  const recovered = (
    await mapLimit(unnamed, 8, async ([name, { key, size }]) => {
      try {
        return { name, length: size, records: await readTrailer(packs.blobs, key, size) };
      } catch (err) {
        if (!(err instanceof PackFormatError)) throw err;
        unreadable.push(`${key}: ${err.message}`);
        return undefined;
      }
    })
  ).filter((r) => r !== undefined);

  // Packs an index names that the store no longer holds: their index objects are replaced.
  const missing = [...named.keys()].filter((name) => !listed.has(name));
  const affected = new Set(missing.flatMap((name) => (named.get(name) ?? []).map((e) => e.source)));
  const described = catalog
    .livePacks()
    .filter((e) => affected.has(e.source) && e.layout === 'pack' && listed.has(e.name));
  const loose = await unnamedLoose(packs);
  const looseKept = catalog.packs
    .filter((e) => !e.gone && e.layout === 'loose' && affected.has(e.source))
    .flatMap((e) => recordsOf(packs, e));

  const lostObjects = countLost(packs, missing, recovered);
  const changed =
    recovered.length > 0 || affected.size > 0 || damaged.length > 0 || loose.length > 0;
  if (changed) {
    const condemned = stillCondemned(packs);
    await writeIndexObjects(packs, {
      packs: [
        ...recovered,
        ...described.map((e) => ({ name: e.name, length: e.length, records: recordsOf(packs, e) })),
      ],
      loose: [...loose, ...looseKept],
      supersedes: [...affected, ...damaged],
      condemned,
    });
    for (const name of damaged) await packs.blobs.delete(indexKey(name));
  }
  await own.sync.clearLocalCopy();
  await own.sync.sync({ full: true });
  return {
    packsListed: listed.size,
    packsIndexed: recovered.length,
    packsMissing: missing.length,
    damagedIndexObjects: damaged.length,
    looseIndexed: loose.length,
    unreadablePacks: unreadable,
    objectsLost: lostObjects,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
}

/**
 * gc's condemned set, to write again after the index objects repair writes, less the objects a
 * push stored again since it was written: gc keeps such copies (see gc's condemn), and they
 * would pass for condemned ones once the set is dated after them.
 */
export function stillCondemned(packs: PackedStore): { hash: Buffer; since: number }[] {
  const { at, since } = packs.catalog.condemnedSet();
  if (since.size === 0) return [];
  const summary = packs.catalog.objectSummary(at);
  return [...since]
    .filter(([hash]) => summary.get(hash)?.indexedAfter === undefined)
    .map(([hash, s]) => ({ hash: Buffer.from(hash, 'hex'), since: s }));
}

async function listPacks(packs: PackedStore): Promise<Map<string, { key: string; size: number }>> {
  const listed = new Map<string, { key: string; size: number }>();
  for await (const entry of packs.blobs.list(DATA_PREFIX)) {
    const name = packNameOfKey(entry.key);
    if (name) listed.set(name, { key: entry.key, size: entry.size });
  }
  return listed;
}

/** Loose objects in the store that no index object names. */
async function unnamedLoose(packs: PackedStore): Promise<ObjectRecord[]> {
  const records: ObjectRecord[] = [];
  for await (const entry of packs.blobs.list(OBJECTS_PREFIX)) {
    const hash = hashOfKey(entry.key);
    if (!hash || packs.catalog.find(hash, 'read') >= 0) continue;
    records.push(looseRecord(hash, entry.size));
  }
  return records;
}

function recordsOf(packs: PackedStore, entry: PackEntry): ObjectRecord[] {
  const { catalog } = packs;
  const records: ObjectRecord[] = [];
  for (let r = entry.first; r < entry.first + entry.count; r++) {
    if (!catalog.objects.isLive(r)) continue;
    const loc = catalog.location(r);
    records.push({
      hash: Buffer.from(catalog.objects.hash(r)),
      offset: loc.offset,
      storedLength: loc.storedLength,
      length: loc.length,
      encoding: loc.encoding,
    });
  }
  return records;
}

/** Objects only the missing packs held (no other pack, recovered or named, has a copy). */
function countLost(
  packs: PackedStore,
  missing: string[],
  recovered: { records: ObjectRecord[] }[],
): number {
  const { catalog } = packs;
  const gone = new Set(missing);
  const elsewhere = new Set<string>();
  for (const r of recovered) for (const o of r.records) elsewhere.add(o.hash.toString('hex'));
  const lost = new Set<string>();
  for (const entry of catalog.packs) {
    if (entry.gone) continue;
    for (let r = entry.first; r < entry.first + entry.count; r++) {
      if (!catalog.objects.isLive(r)) continue;
      const hash = catalog.objects.hashHex(r);
      if (entry.layout === 'pack' && gone.has(entry.name)) lost.add(hash);
      else elsewhere.add(hash);
    }
  }
  return [...lost].filter((h) => !elsewhere.has(h)).length;
}
