import type { Command } from 'commander';
import type { DamagedObject } from '../../../shared/types';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('verify')
    .description(
      'check that every object the versions need is in the storage backend (never trusting the cache)',
    )
    .argument('[selector]', 'MODEL or MODEL@VERSION (default: every model)')
    .option('--full', 'also download every object and check its hash')
    .option('--json', 'print one JSON object')
    .action(
      async (
        selector: string | undefined,
        opts: { full?: boolean; json?: boolean },
        command: Command,
      ) => {
        await withService(command, async (service) => {
          const { plural } = await import('../format');
          const r = await service.verify({
            ...(selector ? { selector } : {}),
            full: opts.full ?? false,
          });
          emit(opts.json, r, () => {
            const lines = [
              r.ok
                ? `ok: ${plural(r.versionsChecked, 'version')}, ${plural(r.objectsChecked, 'object')} present${r.full ? ' and intact' : ''} (${{ list: 'listed', head: 'checked one by one', index: 'by the index' }[r.method]}, ${r.seconds} s)`
                : `DAMAGED: ${r.damaged.length} of ${plural(r.objectsChecked, 'object')} missing or corrupt, in ${plural(r.damagedVersions.length, 'version')}`,
            ];
            for (const v of r.damagedVersions)
              lines.push(
                `  ${v.model} ${v.version} (${v.id.slice(0, 12)}): ${v.files.length > 0 ? v.files.join(', ') : 'version record'}`,
              );
            for (const d of r.damaged.slice(0, 50))
              lines.push(
                `  ${d.problem} ${d.kind} ${d.hash}${d.neededBy[0]?.file ? ` (${d.neededBy[0].file})` : ''}${d.corruptIn ? ` in pack ${d.corruptIn.join(', ')}` : ''}`,
              );
            if (r.damaged.length > 50)
              lines.push(`  ... and ${r.damaged.length - 50} more (--json lists all)`);
            if (
              !r.ok &&
              !r.full &&
              r.method === 'index' &&
              r.damaged.some((d) => d.kind === 'chunk')
            )
              lines.push(
                "  missing chunks may still be in packs whose index object was lost: `tv verify --full` rebuilds the index from the packs' trailers and checks again",
              );
            const mend = repairPacksHint(r.damaged);
            if (mend) lines.push(mend);
            if (r.full && r.damaged.some((d) => d.problem === 'missing'))
              lines.push(
                '  to store missing chunks again: push the files named above again (tv push MODEL PATHS --no-cache); every version that names them is whole again',
              );
            if (r.repaired)
              lines.push(
                `  the index lacked objects: rebuilt from the packs' trailers first (${plural(r.repaired.packsIndexed, 'pack')} indexed again, ${plural(r.repaired.damagedIndexObjects, 'damaged index object')} replaced, ${plural(r.repaired.packsMissing, 'pack')} gone from the store dropped)`,
              );
            if (r.packs) {
              lines.push(
                `  ${plural(r.packs.checked, 'pack')} checked against ${r.packs.checked === 1 ? 'its trailer' : 'their trailers'}${r.packs.unindexed > 0 ? `; ${plural(r.packs.unindexed, 'pack')} no index names (a push running now, or run \`tv repair index\`)` : ''}`,
              );
              for (const p of r.packs.problems.slice(0, 50)) lines.push(`  ${p}`);
            }
            if (r.staleCacheKeysRemoved > 0)
              lines.push(
                `  removed ${plural(r.staleCacheKeysRemoved, 'cache key')} that claimed missing objects`,
              );
            return lines.join('\n');
          });
          if (!r.ok) process.exitCode = 1;
        });
      },
    );
}

/** Packs named on the command line at most; beyond, `tv repair packs` reads every pack. */
const PACKS_NAMED = 8;

/**
 * One line saying what mends corrupt copies in packs: `tv repair packs` drops them from the index,
 * then a push of the files that need them stores them again (unless an intact copy stays).
 */
function repairPacksHint(damaged: DamagedObject[]): string | undefined {
  const corrupt = damaged.filter((d) => d.corruptIn);
  if (corrupt.length === 0) return undefined;
  const packs = [...new Set(corrupt.flatMap((d) => d.corruptIn ?? []))];
  const command = `tv repair packs${packs.length <= PACKS_NAMED ? ` ${packs.join(' ')}` : ''}`;
  const push = corrupt.some((d) => !d.intactCopy)
    ? '; then push the files named above again (tv push MODEL PATHS --no-cache) to store them again'
    : '; the intact copies in other packs then serve, nothing to push again';
  return `  to mend the corrupt copies: ${command} (drops them from the index and their cache keys)${push}`;
}
