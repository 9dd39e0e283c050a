import type { DamagedObject, VerifyResult } from '../../../shared/types';
import { mapLimit } from '../concurrency';
import type { Repository, VersionEntry } from '../repository/repository';
import { hashOfKey, objectKey, OBJECTS_PREFIX, readAll } from '../storage/store';
import { reachable } from './reachable';

/** Below this many objects to check, one existence check each beats listing the whole store. */
const LIST_THRESHOLD = 1000;

export interface VerifyOptions {
  /** MODEL or MODEL@VERSION; every model when absent. */
  selector?: string;
  /** Also download every object and check its hash. */
  full?: boolean;
}

/**
 * Checks that every object the chosen versions need is in the storage backend itself (never the
 * cache), and with --full that its content matches its address. Cache keys that claim objects the
 * backend does not hold are removed. Names every damaged version, file and object.
 */
export async function verify(repo: Repository, options: VerifyOptions = {}): Promise<VerifyResult> {
  const started = performance.now();
  const backend = repo.stack.backend;
  const damaged: DamagedObject[] = [];

  // Versions to check; a version whose record cannot be read is damaged itself.
  const selector = options.selector;
  const refs = selector?.includes('@')
    ? [await repo.resolve(selector).then((v) => ({ model: v.model, number: v.number, ref: v.ref }))]
    : (
        await Promise.all(
          (selector ? [selector] : await repo.modelNames()).map((m) => repo.liveRefs(m)),
        )
      ).flat();
  const versions: VersionEntry[] = [];
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
      const missing = !(await backend.has(objectKey(r.ref.versionId)));
      damaged.push({
        hash: r.ref.versionId,
        kind: 'version',
        problem: missing ? 'missing' : 'corrupt',
        neededBy: [{ version: `${r.model} v${r.number}` }],
      });
    }
  }
  const needed = await reachable(repo, versions);
  const hashes = [...needed.objects.keys()];

  // Existence in the backend: one listing, or one check per object when that is cheaper.
  let method: VerifyResult['method'] = 'head';
  let listed: Set<string> | undefined;
  let present: Set<string>;
  if (hashes.length > LIST_THRESHOLD) {
    method = 'list';
    listed = new Set();
    for await (const entry of backend.list(OBJECTS_PREFIX)) {
      const hash = hashOfKey(entry.key);
      if (hash) listed.add(hash);
    }
    present = listed;
  } else {
    const found = await backend.hasMany(hashes.map(objectKey));
    present = new Set(hashes.filter((_, i) => found[i]));
  }
  const missing = hashes.filter((h) => !present.has(h));
  for (const hash of missing) {
    const o = needed.objects.get(hash)!;
    damaged.push({ hash, kind: o.kind, problem: 'missing', neededBy: o.neededBy });
  }

  if (options.full) {
    await mapLimit(
      hashes.filter((h) => present.has(h)),
      16,
      async (hash) => {
        const data = await readAll(backend, objectKey(hash)).catch(() => undefined);
        if (data === undefined || repo.hash(data) !== hash) {
          const o = needed.objects.get(hash)!;
          damaged.push({
            hash,
            kind: o.kind,
            problem: data === undefined ? 'missing' : 'corrupt',
            neededBy: o.neededBy,
          });
        }
      },
    );
  }

  // Cache keys must never claim what the backend does not hold.
  let staleCacheKeysRemoved = 0;
  const cache = repo.stack.cache;
  if (cache) {
    const stale = new Set<string>();
    const claims = missing.length > 0 ? await cache.claims(missing) : [];
    missing.forEach((h, i) => claims?.[i] && stale.add(h));
    if (listed) {
      for await (const page of cache.claimedHashes())
        for (const h of page) if (!listed.has(h)) stale.add(h);
    }
    if (stale.size > 0) {
      await cache.forget([...stale], 'remove stale cache keys');
      staleCacheKeysRemoved = stale.size;
    }
  }

  // Which versions and files are damaged.
  const byVersion = new Map<string, Set<string>>();
  for (const d of damaged) {
    for (const n of d.neededBy) {
      const files = byVersion.get(n.version) ?? new Set<string>();
      if (n.file) files.add(n.file);
      byVersion.set(n.version, files);
    }
  }
  const damagedVersions = [...byVersion.entries()].map(([label, files]) => {
    const ref = refs.find((r) => `${r.model} v${r.number}` === label);
    return {
      model: ref?.model ?? label,
      version: `v${ref?.number ?? '?'}`,
      id: ref?.ref.versionId ?? '',
      files: [...files].sort(),
    };
  });
  return {
    ok: damaged.length === 0,
    versionsChecked: refs.length,
    objectsChecked: hashes.length,
    method,
    full: options.full ?? false,
    damaged,
    damagedVersions,
    staleCacheKeysRemoved,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
}
