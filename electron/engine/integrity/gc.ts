import type { GcResult } from '../../../shared/types';
import { mapLimit } from '../concurrency';
import type { Repository } from '../repository/repository';
import { DiskStore } from '../storage/disk';
import { DATA_PREFIX, packNameOfKey } from '../storage/packs/format';
import { rewrite } from '../storage/packs/maintenance';
import type { PackedStore } from '../storage/packs/packed-store';
import {
  hashOfKey,
  ObjectNotFoundError,
  objectKey,
  OBJECTS_PREFIX,
  readAll,
} from '../storage/store';
import { liveVersions, reachable, type Reachable } from './reachable';

/** Where gc keeps the objects it found unreachable, and when (format 1 repositories). */
export const PENDING_KEY = 'gc/pending';

export interface GcOptions {
  dryRun?: boolean;
  /** How long an object must have been unreachable (and unwritten) before it is swept. */
  graceSeconds?: number;
  /**
   * Packs: a pack that loses objects is rewritten once less than this share of its bytes (in
   * percent) is still needed; above it the swept objects stay in it as dead bytes (default 50:
   * a rewrite downloads and uploads what is kept, which on S3 may cost more than storing the rest).
   */
  repackBelowPercent?: number;
  now?: number;
}

interface Pending {
  markedAt: number;
  hashes: string[];
}

/** Small index objects folded into one by gc once there are more than this many. */
const SMALL_INDEX_OBJECTS = 16;
const SMALL_INDEX_RECORDS = 10_000;

/**
 * Mark and sweep, safe beside pushes from other workstations at the same time. An object is swept
 * only once it has been unreachable for a whole grace period, as seen by two gc runs at least a
 * grace period apart. In a repository of packs (format 3) the first run condemns it: the cache
 * forgets it, and the index records it, so a push started since stores it again rather than rely
 * on it; a push started before finishes within the grace period (pushes must take less), and a
 * version it makes keeps the object. Each swept object's cache key goes before the object.
 */
export async function gc(repo: Repository, options: GcOptions = {}): Promise<GcResult> {
  const packs = repo.stack.packs;
  return packs ? gcPacks(repo, packs, options) : gcLoose(repo, options);
}

async function gcPacks(
  repo: Repository,
  packs: PackedStore,
  options: GcOptions,
): Promise<GcResult> {
  const started = performance.now();
  const now = options.now ?? packs.blobs.now();
  const grace = (options.graceSeconds ?? 24 * 3600) * 1000;
  const dryRun = options.dryRun ?? false;
  await packs.sync.sync({ full: true });
  const { versions, marked, keep } = await mark(repo);
  const plan = condemn(packs, (hash) => marked.objects.has(hash) || keep.has(hash), now, grace);

  // Newly condemned objects: the cache forgets them now (it refuses when Redis cannot confirm),
  // so that no push relies on them from here on.
  const cache = repo.stack.cache;
  if (!dryRun && cache && plan.fresh.length > 0)
    await cache.forget(plan.fresh, 'condemn unreachable objects');

  const threshold = (options.repackBelowPercent ?? 50) / 100;
  const small = [...packs.catalog.indexSizes()]
    .filter(([, n]) => n < SMALL_INDEX_RECORDS)
    .map(([name]) => name);
  const drop = new Map(plan.sweep.map((s) => [s.hash, s.until]));
  const merging = small.length > SMALL_INDEX_OBJECTS;
  const result = await rewrite(packs, {
    drop,
    repack: (kept, length) => length === 0 || kept / length < threshold,
    ...(merging ? { merge: new Set(small) } : {}),
    // Every index object gc writes comes before a condemned set: a copy it describes anew never
    // looks like one a push stored after the set (which a push relies on, and gc keeps).
    ...(plan.changed || drop.size > 0 || merging ? { condemned: plan.condemned } : {}),
    ...(cache
      ? { beforeRemoval: (hashes) => cache.forget(hashes, 'sweep unreachable objects') }
      : {}),
    dryRun,
  });
  const abandonedBytes = await removeAbandoned(repo, packs, marked, grace, now, dryRun);
  return {
    dryRun,
    liveVersions: versions.length,
    reachableObjects: marked.objects.size,
    unreachableObjects: plan.unreachable.length,
    sweptObjects: plan.sweep.length,
    sweptBytes: total(plan.sweep),
    deferredObjects: plan.deferred.length,
    deferredBytes: total(plan.deferred),
    abandonedBytes,
    graceSeconds: grace / 1000,
    seconds: Math.round((performance.now() - started) / 10) / 100,
    packsDeleted: result.packsDeleted,
    packsRewritten: result.packsRewritten,
    repackedBytes: result.bytesRepacked,
    deadBytesKept: result.deadBytesKept,
  };
}

/** What the live versions need; and what a version published meanwhile needs (it is kept). */
async function mark(repo: Repository) {
  const versions = await liveVersions(repo);
  const marked = await reachable(repo, versions, { strict: true });
  const known = new Set(versions.map((v) => v.id));
  const published = (await liveVersions(repo)).filter((v) => !known.has(v.id));
  const keep = (await reachable(repo, published, { strict: true })).objects;
  return { versions, marked, keep };
}

interface Unreachable {
  hash: string;
  size: number;
  /** Since when it is condemned (ms); undefined while it is too young to condemn. */
  since: number | undefined;
}

/** An unreachable object to sweep: its copies indexed at or before `until` go. */
interface Swept {
  hash: string;
  size: number;
  until: number;
}

/**
 * What is unreachable now, and since when (as the last run's condemned set says); what may be
 * swept; the condemned set to record. An object indexed less than a grace period ago is likely a
 * push's that is still running: not condemned yet (a later run condemns it if no version came to
 * need it). A copy indexed after the condemned set was written is a push's that would not rely on
 * the condemned ones (Catalog.find): it is never swept with them, and is judged by its own age.
 */
function condemn(
  packs: PackedStore,
  needed: (hash: string) => boolean,
  now: number,
  grace: number,
) {
  const { at, since: previous } = packs.catalog.condemnedSet();
  const unreachable: Unreachable[] = [];
  const sweep: Swept[] = [];
  const deferred: Unreachable[] = [];
  const young = (indexedAt: number) => now - indexedAt < grace;
  for (const [hash, { size, indexedAt, indexedAfter }] of packs.catalog.objectSummary(at)) {
    if (needed(hash)) continue;
    unreachable.push({ hash, size, since: previous.get(hash) });
    if (grace === 0) {
      sweep.push({ hash, size, until: Infinity });
      continue;
    }
    const was = previous.get(hash);
    if (was === undefined) {
      deferred.push({ hash, size, since: young(indexedAt) ? undefined : now });
    } else if (indexedAfter === undefined) {
      if (now - was >= grace) sweep.push({ hash, size, until: at });
      else deferred.push({ hash, size, since: was });
    } else {
      // Stored again since it was condemned: the condemned copies go in their time; the new
      // ones are another object's, condemned only once they are old.
      if (now - was >= grace) sweep.push({ hash, size, until: at });
      deferred.push({ hash, size, since: young(indexedAfter) ? undefined : now });
    }
  }
  const condemned = deferred.flatMap((d) =>
    d.since === undefined ? [] : [{ hash: Buffer.from(d.hash, 'hex'), since: d.since }],
  );
  const fresh = condemned
    .filter((c) => previous.get(c.hash.toString('hex')) !== c.since)
    .map((c) => c.hash.toString('hex'));
  const changed = condemned.length !== previous.size || fresh.length > 0;
  return { unreachable, sweep, deferred, condemned, changed, fresh };
}

/**
 * What pushes that never finished left, once older than the grace period (a younger one may be a
 * push still running): packs no index object names, loose objects no index object or version
 * names, and a folder's temp files.
 */
async function removeAbandoned(
  repo: Repository,
  packs: PackedStore,
  marked: Reachable,
  grace: number,
  now: number,
  dryRun = false,
): Promise<number> {
  const old = (modified: Date | undefined) =>
    modified ? now - modified.getTime() >= grace : grace === 0;
  const named = new Set(packs.catalog.livePacks().map((p) => p.name));
  const doomed: { key: string; size: number }[] = [];
  for await (const entry of packs.blobs.list(DATA_PREFIX)) {
    const name = packNameOfKey(entry.key);
    if (name && !named.has(name) && old(entry.modified)) doomed.push(entry);
  }
  for await (const entry of packs.blobs.list(OBJECTS_PREFIX)) {
    const hash = hashOfKey(entry.key);
    if (
      hash &&
      !marked.objects.has(hash) &&
      packs.catalog.find(hash, 'read') < 0 &&
      old(entry.modified)
    )
      doomed.push(entry);
  }
  let bytes = doomed.reduce((n, d) => n + d.size, 0);
  if (dryRun) return bytes;
  const cache = repo.stack.cache;
  const loose = doomed.flatMap((d) => hashOfKey(d.key) ?? []);
  if (cache && loose.length > 0) await cache.forget(loose, 'remove objects no index names');
  await mapLimit(doomed, 16, (d) => packs.blobs.delete(d.key));
  if (packs.blobs instanceof DiskStore)
    bytes += (await packs.blobs.removeAbandoned(grace, now)).bytes;
  return bytes;
}

/**
 * Format 1 (a blob per object): an object is swept when it is unreachable now, was already at a
 * run at least a grace period ago (recorded in gc/pending), and was itself written more than a
 * grace period ago.
 */
async function gcLoose(repo: Repository, options: GcOptions): Promise<GcResult> {
  const started = performance.now();
  const now = options.now ?? Date.now();
  const grace = (options.graceSeconds ?? 24 * 3600) * 1000;
  const versions = await liveVersions(repo);
  const marked = await reachable(repo, versions, { strict: true });

  const previous = await readPending(repo);
  const wasPending = new Set(previous && now - previous.markedAt >= grace ? previous.hashes : []);
  const unreachable: { hash: string; size: number }[] = [];
  const sweep: { hash: string; size: number }[] = [];
  for await (const entry of repo.stack.backend.list(OBJECTS_PREFIX)) {
    const hash = hashOfKey(entry.key);
    if (!hash || marked.objects.has(hash)) continue;
    const item = { hash, size: entry.size };
    unreachable.push(item);
    const old = entry.modified ? now - entry.modified.getTime() >= grace : grace === 0;
    if (grace === 0 || (wasPending.has(hash) && old)) sweep.push(item);
  }
  const swept = new Set(sweep.map((s) => s.hash));
  const deferred = unreachable.filter((u) => !swept.has(u.hash));
  let abandonedBytes = 0;
  if (!options.dryRun) {
    // CachedStore.delete removes the key first and refuses when Redis cannot confirm it.
    await mapLimit(sweep, 16, (s) => repo.store.delete(objectKey(s.hash)));
    const pending: Pending = { markedAt: now, hashes: deferred.map((d) => d.hash) };
    await repo.store.put(PENDING_KEY, Buffer.from(JSON.stringify(pending)));
    await repo.store.flush();
    const blobs = repo.stack.blobs;
    if (blobs instanceof DiskStore)
      abandonedBytes = (await blobs.removeAbandoned(grace, now)).bytes;
  }
  return {
    dryRun: options.dryRun ?? false,
    liveVersions: versions.length,
    reachableObjects: marked.objects.size,
    unreachableObjects: unreachable.length,
    sweptObjects: sweep.length,
    sweptBytes: total(sweep),
    deferredObjects: deferred.length,
    deferredBytes: total(deferred),
    abandonedBytes,
    graceSeconds: grace / 1000,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
}

const total = (items: { size: number }[]) => items.reduce((n, i) => n + i.size, 0);

async function readPending(repo: Repository): Promise<Pending | undefined> {
  try {
    const parsed = JSON.parse(
      (await readAll(repo.stack.backend, PENDING_KEY)).toString('utf8'),
    ) as Pending;
    return typeof parsed.markedAt === 'number' && Array.isArray(parsed.hashes) ? parsed : undefined;
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    return undefined; // a damaged pending list only delays sweeping by one run
  }
}
