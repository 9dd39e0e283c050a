import type { GcResult } from '../../../shared/types';
import { mapLimit } from '../concurrency';
import type { Repository } from '../repository/repository';
import { DiskStore } from '../storage/disk';
import {
  hashOfKey,
  ObjectNotFoundError,
  objectKey,
  OBJECTS_PREFIX,
  readAll,
} from '../storage/store';
import { liveVersions, reachable } from './reachable';

/** Where gc keeps the objects it found unreachable, and when. */
export const PENDING_KEY = 'gc/pending';

export interface GcOptions {
  dryRun?: boolean;
  /** How long an object must have been unreachable (and unwritten) before it is swept. */
  graceSeconds?: number;
  now?: number;
}

interface Pending {
  markedAt: number;
  hashes: string[];
}

/**
 * Mark and sweep, safe beside pushes that run at the same time. An object is swept only when it
 * is unreachable now, was already unreachable at a gc run at least a grace period ago, and was
 * itself written more than a grace period ago. A push that is uploading (new objects are young) or
 * that deduplicated against an unreachable object since the last run (which that run recorded)
 * finishes long before the grace period ends, as long as pushes take less than it. Each swept
 * object's cache key is removed before the object, so the cache never claims what is gone.
 */
export async function gc(repo: Repository, options: GcOptions = {}): Promise<GcResult> {
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
    // CachedStore.delete removes the key first and refuses when Redis cannot confirm it. A
    // folder rewrites the packs that lost objects at the flush.
    await mapLimit(sweep, 16, (s) => repo.store.delete(objectKey(s.hash)));
    const pending: Pending = { markedAt: now, hashes: deferred.map((d) => d.hash) };
    await repo.store.put(PENDING_KEY, Buffer.from(JSON.stringify(pending)));
    await repo.store.flush();
    // Packs no index names are pushes that never finished (or are still running: hence the age).
    const backend = repo.stack.backend;
    if (backend instanceof DiskStore)
      abandonedBytes = (await backend.removeAbandoned(grace, now)).bytes;
  }
  const bytes = (items: { size: number }[]) => items.reduce((n, i) => n + i.size, 0);
  return {
    dryRun: options.dryRun ?? false,
    liveVersions: versions.length,
    reachableObjects: marked.objects.size,
    unreachableObjects: unreachable.length,
    sweptObjects: sweep.length,
    sweptBytes: bytes(sweep),
    deferredObjects: deferred.length,
    deferredBytes: bytes(deferred),
    abandonedBytes,
    graceSeconds: grace / 1000,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
}

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
