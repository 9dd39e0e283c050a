import type { Command } from 'commander';
import type { PackRepairResult } from '../../../shared/types';
import { emit, withService } from '../run';

export function register(program: Command): void {
  const repair = program
    .command('repair')
    .description('mend the index: rebuild it from the packs, or drop corrupt copies from it');
  repair
    .command('index')
    .description(
      'rebuild the index from the packs: index packs no index names (from their trailers), drop packs that are gone, replace damaged index objects',
    )
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const { plural } = await import('../format');
        const r = await service.repairIndex();
        emit(opts.json, r, () =>
          [
            `${plural(r.packsListed, 'pack')}: ${r.packsIndexed} indexed again from ${r.packsIndexed === 1 ? 'its trailer' : 'their trailers'}, ${r.packsMissing} gone from the store dropped from the index; ${plural(r.damagedIndexObjects, 'damaged index object')} replaced; ${plural(r.looseIndexed, 'loose object')} named`,
            ...r.unreadablePacks.map((p) => `  left alone (unreadable trailer): ${p}`),
            ...(r.objectsLost > 0
              ? [
                  `  ${plural(r.objectsLost, 'object')} ${r.objectsLost === 1 ? 'was' : 'were'} only in missing packs: run tv verify to see which versions need ${r.objectsLost === 1 ? 'it' : 'them'}`,
                ]
              : []),
          ].join('\n'),
        );
      });
    });
  repair
    .command('packs')
    .description(
      'read back every copy in these packs (every pack when none is named) and drop the corrupt ones from the index, their cache keys first, so that a push stores those objects again',
    )
    .argument('[packs...]', 'pack names, as `tv verify --full` prints them')
    .option('--json', 'print one JSON object')
    .action(async (names: string[], opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const r = await service.repairPacks(names);
        const text = await packRepairText(r);
        emit(opts.json, r, () => text);
        if (r.problems.length > 0) process.exitCode = 1;
      });
    });
}

async function packRepairText(r: PackRepairResult): Promise<string> {
  const { formatBytes, plural } = await import('../format');
  const head = `${plural(r.packsChecked, 'pack')} read back (${plural(r.copiesChecked, 'copy', 'copies')})`;
  const lines =
    r.dropped.length === 0
      ? [`${head}: every copy intact, nothing to do`]
      : [
          `${head}: ${plural(r.dropped.length, 'corrupt copy', 'corrupt copies')} dropped from the index${r.cacheKeysRemoved > 0 ? `, ${plural(r.cacheKeysRemoved, 'cache key')} removed first` : ''}`,
        ];
  for (const d of r.dropped.slice(0, 50))
    lines.push(
      `  ${d.hash} in pack ${d.pack}: ${d.intactCopy ? 'an intact copy in another pack serves it' : 'no intact copy left'}`,
    );
  if (r.dropped.length > 50)
    lines.push(`  ... and ${r.dropped.length - 50} more (--json lists all)`);
  if (r.deadBytes > 0 || r.packsDeleted > 0)
    lines.push(
      `  ${[
        r.deadBytes > 0
          ? `${formatBytes(r.deadBytes)} of dropped copies stay in their packs as dead bytes, named by no index, until gc rewrites those packs`
          : '',
        r.packsDeleted > 0
          ? `${plural(r.packsDeleted, 'pack')} that held only corrupt copies deleted`
          : '',
      ]
        .filter(Boolean)
        .join('; ')}`,
    );
  if (r.toPushAgain.length > 0) {
    const files = [
      ...new Set(
        r.toPushAgain.flatMap((o) =>
          o.neededBy.map((n) => (n.file ? `${n.version}: ${n.file}` : n.version)),
        ),
      ),
    ];
    const it = r.toPushAgain.length === 1 ? 'it' : 'them';
    const named =
      files.length <= 5
        ? files.join(', ')
        : `${files.slice(0, 5).join(', ')} and ${files.length - 5} more`;
    lines.push(
      files.length === 0
        ? `  no live version needs ${it}: nothing to push again`
        : `  to store ${it} again, push the files that need ${it} again: tv push MODEL PATHS --no-cache (${named})`,
    );
  }
  for (const p of r.problems) lines.push(`  left alone: ${p}`);
  return lines.join('\n');
}
