import type { Repository, VersionEntry } from '../repository/repository';

/** Every object the given versions need, each with the places that need it. */
export interface Reachable {
  versions: VersionEntry[];
  /** hash -> kind and who needs it (the first few, for messages). */
  objects: Map<
    string,
    { kind: 'chunk' | 'manifest' | 'version'; neededBy: { version: string; file?: string }[] }
  >;
}

const MAX_NAMED = 20;

/**
 * Marks every object reachable from these versions: records, manifests, chunks. A manifest that
 * cannot be read is skipped (verify reports it by its own entry), or with `strict` stops the mark:
 * gc must never sweep chunks it could not see were needed.
 */
export async function reachable(
  repo: Repository,
  versions: VersionEntry[],
  options: { strict?: boolean } = {},
): Promise<Reachable> {
  const objects: Reachable['objects'] = new Map();
  const need = (
    hash: string,
    kind: 'chunk' | 'manifest' | 'version',
    by: { version: string; file?: string },
  ) => {
    const entry = objects.get(hash) ?? { kind, neededBy: [] };
    if (entry.neededBy.length < MAX_NAMED) entry.neededBy.push(by);
    objects.set(hash, entry);
  };
  for (const v of versions) {
    const label = `${v.model} v${v.number}`;
    need(v.id, 'version', { version: label });
    for (const file of v.record.files) {
      need(file.manifest, 'manifest', { version: label, file: file.path });
      let manifest;
      try {
        manifest = await repo.readManifest(file.manifest);
      } catch (err) {
        if (options.strict) throw err;
        continue;
      }
      for (const c of manifest.chunks) need(c.hash, 'chunk', { version: label, file: file.path });
    }
  }
  return { versions, objects };
}

/** Live versions of every model (or of the models named). */
export async function liveVersions(repo: Repository, models?: string[]): Promise<VersionEntry[]> {
  const names = models ?? (await repo.modelNames());
  return (await Promise.all(names.map((m) => repo.versions(m)))).flat();
}
