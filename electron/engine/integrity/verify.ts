import type { DamagedObject, RepairResult, VerifyResult } from '../../../shared/types';
import { mapLimit } from '../concurrency';
import type { Repository, VersionEntry } from '../repository/repository';
import { DATA_PREFIX, packNameOfKey, PackFormatError } from '../storage/packs/format';
import type { PackedStore } from '../storage/packs/packed-store';
import { readTrailer } from '../storage/packs/trailer';
import {
  hashOfKey,
  ObjectNotFoundError,
  objectKey,
  OBJECTS_PREFIX,
  readAll,
  type Store,
} from '../storage/store';
import { checkCopies } from './copies';
import { reachable, type Reachable } from './reachable';
import { repairIndex } from './repair';

/** Below this many objects to check, one existence check each beats listing the whole store. */
const LIST_THRESHOLD = 1000;
/** Objects read per batch by --full in a repository of packs (runs of a pack come in one read). */
const FULL_BATCH = 512;

export interface VerifyOptions {
  /** MODEL or MODEL@VERSION; every model when absent. */
  selector?: string;
  /** Also download every object and check its hash (and, for packs, each pack's trailer). */
  full?: boolean;
}

interface Presence {
  present: Set<string>;
  method: VerifyResult['method'];
  /** Every object the backend holds, when it was listed whole (stale cache keys are those beyond). */
  listed: Set<string> | undefined;
}

/**
 * Checks that every object the chosen versions need is in the storage backend itself (never the
 * cache), and with --full that its content matches its address (in a repository of packs, also
 * that each pack's trailer agrees with the index). Cache keys that claim objects the backend does
 * not hold are removed. Names every damaged version, file and object.
 */
export async function verify(repo: Repository, options: VerifyOptions = {}): Promise<VerifyResult> {
  const started = performance.now();
  const packs = repo.stack.packs;
  const { refs, versions, damaged } = await versionsToCheck(repo, options.selector);
  const needed = await reachable(repo, versions);
  const hashes = [...needed.objects.keys()];

  let repaired: RepairResult | undefined;
  let presence: Presence;
  if (packs) ({ presence, repaired } = await presentRepairing(repo, packs, hashes, options.full));
  else presence = await presentInBackend(repo.stack.backend, hashes);
  const missing = hashes.filter((h) => !presence.present.has(h));
  for (const hash of missing) damaged.push(damage(needed, hash, 'missing'));

  let packReport: VerifyResult['packs'];
  if (options.full) {
    const intact = hashes.filter((h) => presence.present.has(h));
    const corrupt = packs
      ? await corruptInPacks(repo, packs, intact)
      : await corruptInBackend(repo, intact);
    const found = [...corrupt].map(([hash, problem]) => damage(needed, hash, problem));
    if (packs) await mapLimit(found, 8, (d) => placeCorruptCopies(repo, packs, d));
    damaged.push(...found);
    if (packs) packReport = await checkPacks(packs);
  }
  const staleCacheKeysRemoved = await removeStaleCacheKeys(repo, missing, presence.listed);
  const problems = packReport?.problems.length ?? 0;
  return {
    ok: damaged.length === 0 && problems === 0,
    versionsChecked: refs.length,
    objectsChecked: hashes.length,
    method: presence.method,
    full: options.full ?? false,
    damaged,
    damagedVersions: damagedVersions(damaged, refs),
    staleCacheKeysRemoved,
    ...(packReport ? { packs: packReport } : {}),
    ...(repaired ? { repaired } : {}),
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
}

type Ref = { model: string; number: number; ref: VersionEntry['ref'] };

/** The versions to check; a version whose record cannot be read is damaged itself. */
async function versionsToCheck(
  repo: Repository,
  selector: string | undefined,
): Promise<{ refs: Ref[]; versions: VersionEntry[]; damaged: DamagedObject[] }> {
  const refs: Ref[] = selector?.includes('@')
    ? [await repo.resolve(selector).then((v) => ({ model: v.model, number: v.number, ref: v.ref }))]
    : (
        await Promise.all(
          (selector ? [selector] : await repo.modelNames()).map((m) => repo.liveRefs(m)),
        )
      ).flat();
  const versions: VersionEntry[] = [];
  const damaged: DamagedObject[] = [];
  for (const r of refs) {
    try {
      versions.push({
        model: r.model,
        number: r.number,
        id: r.ref.versionId,
        ref: r.ref,
        record: await repo.readVersion(r.ref.versionId),
      });
    } catch {
      const missing = !(await repo.stack.backend.has(objectKey(r.ref.versionId)));
      damaged.push({
        hash: r.ref.versionId,
        kind: 'version',
        problem: missing ? 'missing' : 'corrupt',
        neededBy: [{ version: `${r.model} v${r.number}` }],
      });
    }
  }
  return { refs, versions, damaged };
}

/** Existence in a blob-per-object backend: one listing, or one check per object when cheaper. */
async function presentInBackend(backend: Store, hashes: string[]): Promise<Presence> {
  if (hashes.length > LIST_THRESHOLD) {
    const listed = new Set<string>();
    for await (const entry of backend.list(OBJECTS_PREFIX)) {
      const hash = hashOfKey(entry.key);
      if (hash) listed.add(hash);
    }
    return { present: listed, method: 'list', listed };
  }
  const found = await backend.hasMany(hashes.map(objectKey));
  return { present: new Set(hashes.filter((_, i) => found[i])), method: 'head', listed: undefined };
}

/**
 * Existence in a repository of packs: what the index (listed whole) names in a pack the store
 * holds (one listing of the packs); an object the index does not name is looked for as a loose
 * blob of its own, so a lagging index never passes for damage.
 */
/**
 * Existence from the index; with --full, an index that lacks objects the versions need, or has a
 * damaged index object, is rebuilt from the packs' trailers first (`tv repair index`), so that
 * only what no pack holds counts as missing.
 */
async function presentRepairing(
  repo: Repository,
  packs: PackedStore,
  hashes: string[],
  full: boolean | undefined,
): Promise<{ presence: Presence; repaired?: RepairResult }> {
  const repairable = full && repo.config.format >= 3;
  try {
    const presence = await presentInPacks(packs, hashes);
    if (!repairable || presence.present.size === hashes.length) return { presence };
  } catch (err) {
    if (!repairable || !(err instanceof PackFormatError)) throw err;
  }
  const repaired = await repairIndex(repo);
  return { presence: await presentInPacks(packs, hashes), repaired };
}

async function presentInPacks(packs: PackedStore, hashes: string[]): Promise<Presence> {
  await packs.sync.sync({ full: true });
  const stored = new Set<string>();
  for await (const entry of packs.blobs.list(DATA_PREFIX)) {
    const name = packNameOfKey(entry.key);
    if (name) stored.add(name);
  }
  const { catalog } = packs;
  const listed = new Set<string>();
  for (const record of catalog.records()) {
    const pack = catalog.pack(record);
    if (pack.layout !== 'pack' || stored.has(pack.name))
      listed.add(catalog.objects.hashHex(record));
  }
  const unnamed = hashes.filter((h) => !listed.has(h));
  const found = unnamed.length > 0 ? await packs.blobs.hasMany(unnamed.map(objectKey)) : [];
  const present = new Set(hashes.filter((h) => listed.has(h)));
  unnamed.forEach((h, i) => found[i] && present.add(h));
  return { present, method: 'index', listed };
}

async function corruptInBackend(
  repo: Repository,
  hashes: string[],
): Promise<Map<string, 'missing' | 'corrupt'>> {
  const bad = new Map<string, 'missing' | 'corrupt'>();
  await mapLimit(hashes, 16, async (hash) => {
    const data = await readAll(repo.stack.backend, objectKey(hash)).catch(() => undefined);
    if (data === undefined) bad.set(hash, 'missing');
    else if (repo.hash(data) !== hash) bad.set(hash, 'corrupt');
  });
  return bad;
}

/** Every object read back (objects that lie together in a pack in one read) and hashed. */
async function corruptInPacks(
  repo: Repository,
  packs: PackedStore,
  hashes: string[],
): Promise<Map<string, 'missing' | 'corrupt'>> {
  const bad = new Map<string, 'missing' | 'corrupt'>();
  const batches: string[][] = [];
  for (let at = 0; at < hashes.length; at += FULL_BATCH)
    batches.push(hashes.slice(at, at + FULL_BATCH));
  await mapLimit(batches, 4, async (batch) => {
    let data: (Buffer | undefined)[];
    try {
      data = await packs.readMany(batch);
    } catch {
      // Something in the batch cannot be read: each object on its own says which.
      data = await Promise.all(
        batch.map((h) =>
          packs
            .read(h)
            .catch((err: { code?: string }) => (err.code === 'BAD_OBJECT' ? DAMAGED : undefined)),
        ),
      );
    }
    batch.forEach((h, i) => {
      const bytes = data[i];
      if (bytes === DAMAGED) bad.set(h, 'corrupt');
      else if (bytes === undefined) bad.set(h, 'missing');
      else if (repo.hash(bytes) !== h) bad.set(h, 'corrupt');
    });
  });
  return bad;
}

/**
 * A corrupt object in packs: which packs hold its corrupt copies (for `tv repair packs`), and
 * whether another holds an intact one. Every copy the index names is read back.
 */
async function placeCorruptCopies(
  repo: Repository,
  packs: PackedStore,
  damaged: DamagedObject,
): Promise<void> {
  if (damaged.problem !== 'corrupt') return;
  const { catalog } = packs;
  // A copy in a pack gone from the store is neither: checkPacks says so.
  const { intact, corrupt } = await checkCopies(
    packs.blobs,
    catalog,
    Buffer.from(damaged.hash, 'hex'),
    repo.hash,
  );
  const corruptIn = new Set(corrupt.map((r) => catalog.pack(r).name));
  if (corruptIn.size === 0) return;
  damaged.corruptIn = [...corruptIn];
  damaged.intactCopy = intact.length > 0;
}

/** Stored bytes that do not decode (or not to the object's length): the object is corrupt. */
const DAMAGED = Buffer.alloc(0);

/**
 * Each pack's trailer against the index: the index must describe every object where the pack's
 * own trailer says it is (a lost or damaged index is rebuilt from the trailers by `tv repair
 * index`). Packs no index names are counted (a push running now has some).
 */
async function checkPacks(packs: PackedStore): Promise<NonNullable<VerifyResult['packs']>> {
  const problems: string[] = [];
  const entries = packs.catalog.livePacks().filter((e) => e.layout === 'pack');
  await mapLimit(entries, 8, async (entry) => {
    try {
      const trailer = await readTrailer(packs.blobs, entry.key, entry.length);
      const at = new Map(trailer.map((r) => [r.hash.toString('hex'), r]));
      const { catalog } = packs;
      for (let r = entry.first; r < entry.first + entry.count; r++) {
        if (!catalog.objects.isLive(r)) continue;
        const hash = catalog.objects.hashHex(r);
        const loc = catalog.location(r);
        const t = at.get(hash);
        if (!t || t.offset !== loc.offset || t.storedLength !== loc.storedLength)
          problems.push(
            `${entry.key}: the index places object ${hash} where the pack's trailer does not (run \`tv repair index\`)`,
          );
      }
    } catch (err) {
      if (err instanceof ObjectNotFoundError)
        problems.push(
          `${entry.key}: named by the index, missing from the store (run \`tv repair index\`)`,
        );
      else if (err instanceof PackFormatError) problems.push(`${entry.key}: ${err.message}`);
      else throw err;
    }
  });
  const named = new Set(entries.map((e) => e.name));
  let unindexed = 0;
  for await (const entry of packs.blobs.list(DATA_PREFIX)) {
    const name = packNameOfKey(entry.key);
    if (name && !named.has(name)) unindexed++;
  }
  return { checked: entries.length, unindexed, problems };
}

/** Cache keys must never claim what the backend does not hold. */
async function removeStaleCacheKeys(
  repo: Repository,
  missing: string[],
  listed: Set<string> | undefined,
): Promise<number> {
  const cache = repo.stack.cache;
  if (!cache) return 0;
  const stale = new Set<string>();
  const claims = missing.length > 0 ? await cache.claims(missing) : [];
  missing.forEach((h, i) => claims?.[i] && stale.add(h));
  if (listed) {
    for await (const page of cache.claimedHashes())
      for (const h of page) if (!listed.has(h)) stale.add(h);
  }
  if (stale.size > 0) await cache.forget([...stale], 'remove stale cache keys');
  return stale.size;
}

function damage(needed: Reachable, hash: string, problem: 'missing' | 'corrupt'): DamagedObject {
  const o = needed.objects.get(hash)!;
  return { hash, kind: o.kind, problem, neededBy: o.neededBy };
}

/** Which versions and files are damaged. */
function damagedVersions(damaged: DamagedObject[], refs: Ref[]): VerifyResult['damagedVersions'] {
  const byVersion = new Map<string, Set<string>>();
  for (const d of damaged) {
    for (const n of d.neededBy) {
      const files = byVersion.get(n.version) ?? new Set<string>();
      if (n.file) files.add(n.file);
      byVersion.set(n.version, files);
    }
  }
  return [...byVersion.entries()].map(([label, files]) => {
    const ref = refs.find((r) => `${r.model} v${r.number}` === label);
    return {
      model: ref?.model ?? label,
      version: `v${ref?.number ?? '?'}`,
      id: ref?.ref.versionId ?? '',
      files: [...files].sort(),
    };
  });
}
