import { InvalidArgumentError, Option, type Command } from 'commander';
import { duration, emit, withService, type Duration } from '../run';

function percentage(value: string): number {
  const n = Number(value.trim().replace(/%$/, ''));
  if (!Number.isFinite(n) || n < 0 || n > 100)
    throw new InvalidArgumentError('a percentage is a number from 0 to 100 (e.g. 50)');
  return n;
}

export function register(program: Command): void {
  program
    .command('gc')
    .description(
      'reclaim objects no version needs (an object must stay unreachable for the grace period)',
    )
    .option('--dry-run', 'report what would be reclaimed, delete nothing')
    .addOption(
      new Option('--grace <duration>', 'how long an object must be unreachable and unwritten first')
        .argParser(duration)
        .default({ seconds: 86400, text: '24h' }, '24h'),
    )
    .option(
      '--repack-below <percent>',
      'rewrite a pack that lost objects once less than this share of it is still needed',
      percentage,
      50,
    )
    .option('--json', 'print one JSON object')
    .action(
      async (
        opts: { dryRun?: boolean; grace: Duration; repackBelow: number; json?: boolean },
        command: Command,
      ) => {
        await withService(command, async (service) => {
          const { formatBytes, plural } = await import('../format');
          const r = await service.gc({
            dryRun: opts.dryRun ?? false,
            graceSeconds: opts.grace.seconds,
            repackBelowPercent: opts.repackBelow,
          });
          const verb = (n: number, one: string, many: string) => (n === 1 ? one : many);
          emit(opts.json, r, () =>
            [
              `${r.dryRun ? 'would reclaim' : 'reclaimed'} ${plural(r.sweptObjects, 'object')}, ${formatBytes(r.sweptBytes)}; ${plural(r.liveVersions, 'live version')} ${verb(r.liveVersions, 'needs', 'need')} ${plural(r.reachableObjects, 'object')}`,
              ...(r.deferredObjects > 0
                ? [
                    `  ${plural(r.deferredObjects, 'unreachable object')} (${formatBytes(r.deferredBytes)}) ${verb(r.deferredObjects, 'waits', 'wait')} out the ${opts.grace.text} grace period: run gc again after it`,
                  ]
                : []),
              ...(r.abandonedBytes > 0
                ? [
                    `  ${r.dryRun ? 'would remove' : 'removed'} ${formatBytes(r.abandonedBytes)} that unfinished pushes left`,
                  ]
                : []),
              ...((r.packsDeleted ?? 0) + (r.packsRewritten ?? 0) > 0 || (r.deadBytesKept ?? 0) > 0
                ? [
                    `  packs: ${r.packsDeleted ?? 0} ${r.dryRun ? 'to delete' : 'deleted'}, ${r.packsRewritten ?? 0} ${r.dryRun ? 'to rewrite' : 'rewritten'} (${formatBytes(r.repackedBytes ?? 0)} copied); ${formatBytes(r.deadBytesKept ?? 0)} of swept objects stay in packs still mostly needed`,
                  ]
                : []),
            ].join('\n'),
          );
        });
      },
    );
}
