import type { PackRepairResult } from '../../../shared/types';
import { mapLimit } from '../concurrency';
import type { Repository } from '../repository/repository';
import { RepositoryError } from '../repository/repository';
import type { Catalog, PackEntry } from '../storage/packs/catalog';
import { rewrite } from '../storage/packs/maintenance';
import { PackedStore } from '../storage/packs/packed-store';
import { ObjectNotFoundError } from '../storage/store';
import { checkCopies, corruptCopies } from './copies';
import { liveVersions, reachable } from './reachable';
import { stillCondemned } from './repair';

/** Packs read back at once (each in ranged reads of up to 16 MiB). */
const PACKS_AT_ONCE = 2;

/**
 * Drops corrupt copies of objects in packs from the index, so that the next push stores those
 * objects again (a push never stores an object the index names). Every copy in the packs given
 * (every pack when none is) is read back and hashed; for each corrupt copy, the object's other
 * copies are checked too. Then, in this order: the cache forgets those objects (Redis must
 * confirm, or nothing changes), new index objects describe the packs without the corrupt copies
 * and supersede the old ones, which are deleted. The corrupt bytes stay in their packs as dead
 * bytes, named by no index, until gc rewrites them; a pack that held nothing else is deleted (a
 * pack no index names would be indexed again from its trailer by `tv repair index`).
 */
export async function repairPacks(
  repo: Repository,
  names: readonly string[] = [],
): Promise<PackRepairResult> {
  const started = performance.now();
  const own = repo.stack.packs;
  if (!own || repo.config.format < 3)
    throw new RepositoryError(
      `${repo.location} is a repository of format ${repo.config.format}, whose objects are not in packs of format 3 (run \`tv upgrade\` to move it to format 3)`,
    );
  // A catalog of its own, built from the store alone, whatever this client knew before.
  const packs = new PackedStore(own.blobs, { packBytes: repo.packSize, packsInFlight: 1 });
  await packs.sync.sync({ full: true });
  const { catalog } = packs;
  const entries = chosenPacks(catalog, names, repo.location);
  const { corrupt, copiesChecked, problems } = await checkPacks(repo, packs, entries);
  const intactElsewhere = await otherCopies(repo, packs, corrupt);

  // Once per copy (a pack two index objects describe has each copy twice in the catalog).
  const copies = new Map<string, PackRepairResult['dropped'][number]>();
  for (const r of corrupt) {
    const hash = catalog.objects.hashHex(r);
    const pack = catalog.pack(r).name;
    copies.set(`${hash}:${pack}`, { hash, pack, intactCopy: intactElsewhere.has(hash) });
  }
  const dropped = [...copies.values()];
  let deadBytes = 0;
  let packsDeleted = 0;
  let cacheKeysRemoved = 0;
  if (corrupt.size > 0) {
    const cache = repo.stack.cache;
    const condemned = catalog.condemnedSet().since.size > 0 ? stillCondemned(packs) : undefined;
    const result = await rewrite(packs, {
      drop: new Map(),
      dropCopies: corrupt,
      repack: () => false,
      ...(condemned ? { condemned } : {}),
      ...(cache
        ? {
            beforeRemoval: async (hashes) => {
              await cache.forget(hashes, 'drop corrupt copies from the index');
              cacheKeysRemoved = hashes.length;
            },
          }
        : {}),
    });
    deadBytes = result.deadBytesKept;
    packsDeleted = result.packsDeleted;
    // This client's own view of the index forgets the dropped copies too.
    await own.sync.sync({ full: true });
  }
  const lost = [...new Set(dropped.filter((d) => !d.intactCopy).map((d) => d.hash))];
  // A client whose view of the index was older than the rewrite may have written a key back
  // meanwhile (a miss it answered from the corrupt copy): removed again, now that no index names
  // the object.
  if (lost.length > 0) await repo.stack.cache?.forget(lost, 'drop corrupt copies from the index');
  return {
    packsChecked: entries.length - problems.length,
    copiesChecked,
    dropped,
    toPushAgain: await neededBy(repo, lost),
    cacheKeysRemoved,
    deadBytes,
    packsDeleted,
    problems,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
}

/** The pack entries to check: those named (by name or key), or every pack the index names. */
function chosenPacks(catalog: Catalog, names: readonly string[], location: string): PackEntry[] {
  const live = catalog.livePacks();
  if (names.length === 0) return live;
  const chosen: PackEntry[] = [];
  for (const given of names) {
    const name = /(?:^|\/)([0-9a-f]{24}|[0-9a-f]{32})(?:\.pack)?$/.exec(given.trim())?.[1];
    if (!name)
      throw new RepositoryError(
        `"${given}" is not a pack name: give the names \`tv verify --full\` prints (32 hex characters), or none to check every pack`,
      );
    const matching = live.filter((e) => e.name === name);
    if (matching.length === 0)
      throw new RepositoryError(
        `no pack named ${name} in the index of ${location}: \`tv verify --full\` names the packs that hold corrupt copies (\`tv repair index\` indexes packs the index lost)`,
      );
    for (const e of matching) if (!chosen.includes(e)) chosen.push(e);
  }
  return chosen;
}

/** Every copy of the chosen packs read back: the corrupt ones, by record. */
async function checkPacks(
  repo: Repository,
  packs: PackedStore,
  entries: PackEntry[],
): Promise<{ corrupt: Set<number>; copiesChecked: number; problems: string[] }> {
  const corrupt = new Set<number>();
  const problems: string[] = [];
  let copiesChecked = 0;
  await mapLimit(entries, PACKS_AT_ONCE, async (entry) => {
    try {
      for (const r of await corruptCopies(packs.blobs, packs.catalog, entry, repo.hash))
        corrupt.add(r);
      for (let r = entry.first; r < entry.first + entry.count; r++)
        if (packs.catalog.objects.isLive(r)) copiesChecked++;
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
      problems.push(
        `${entry.key}: named by the index, missing from the store (run \`tv repair index\`)`,
      );
    }
  });
  return { corrupt, copiesChecked, problems };
}

/**
 * The objects of these corrupt copies that have an intact copy in another pack. Copies in packs
 * that were not checked are read now: a corrupt one joins the copies to drop (one in a pack gone
 * from the store is left to `tv repair index`).
 */
async function otherCopies(
  repo: Repository,
  packs: PackedStore,
  corrupt: Set<number>,
): Promise<Set<string>> {
  const { catalog } = packs;
  const hashes = new Map<string, Buffer>();
  for (const r of corrupt)
    hashes.set(catalog.objects.hashHex(r), Buffer.from(catalog.objects.hash(r)));
  const intact = new Set<string>();
  await mapLimit([...hashes], 4, async ([hex, hash]) => {
    const copies = await checkCopies(packs.blobs, catalog, hash, repo.hash, (r) => corrupt.has(r));
    if (copies.intact.length > 0) intact.add(hex);
    for (const r of copies.corrupt) corrupt.add(r);
  });
  return intact;
}

/** Which live versions and files need these objects (the first few of each). */
async function neededBy(
  repo: Repository,
  hashes: string[],
): Promise<PackRepairResult['toPushAgain']> {
  if (hashes.length === 0) return [];
  const needed = await reachable(repo, await liveVersions(repo));
  return hashes.map((hash) => ({ hash, neededBy: needed.objects.get(hash)?.neededBy ?? [] }));
}
