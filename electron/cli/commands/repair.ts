import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  const repair = program
    .command('repair')
    .description('rebuild what can be rebuilt from the store');
  repair
    .command('index')
    .description(
      'rebuild the index from the packs: index packs no index names (from their trailers), drop packs that are gone, replace damaged index objects',
    )
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const r = await service.repairIndex();
        emit(opts.json, r, () =>
          [
            `${r.packsListed} packs: ${r.packsIndexed} indexed again from their trailers, ${r.packsMissing} gone from the store dropped from the index; ${r.damagedIndexObjects} damaged index objects replaced; ${r.looseIndexed} loose objects named`,
            ...r.unreadablePacks.map((p) => `  left alone (unreadable trailer): ${p}`),
            ...(r.objectsLost > 0
              ? [
                  `  ${r.objectsLost} objects were only in missing packs: run tv verify to see which versions need them`,
                ]
              : []),
          ].join('\n'),
        );
      });
    });
}
