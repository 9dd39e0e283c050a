import { InvalidArgumentError, type Command } from 'commander';
import { emit, withService } from '../run';

function duration(value: string): number {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(value.trim());
  if (!match)
    throw new InvalidArgumentError('a duration is a number with s, m, h or d (e.g. 24h, 30m, 0)');
  return (
    Number(match[1]) *
    { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd']
  );
}

export function register(program: Command): void {
  program
    .command('gc')
    .description(
      'reclaim objects no version needs (an object must stay unreachable for the grace period)',
    )
    .option('--dry-run', 'report what would be reclaimed, delete nothing')
    .option(
      '--grace <duration>',
      'how long an object must be unreachable and unwritten first',
      duration,
      86400,
    )
    .option('--json', 'print one JSON object')
    .action(async (opts: { dryRun?: boolean; grace: number; json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const { formatBytes } = await import('../format');
        const r = await service.gc({ dryRun: opts.dryRun ?? false, graceSeconds: opts.grace });
        emit(opts.json, r, () =>
          [
            `${r.dryRun ? 'would reclaim' : 'reclaimed'} ${r.sweptObjects} objects, ${formatBytes(r.sweptBytes)}; ${r.liveVersions} live versions need ${r.reachableObjects} objects`,
            ...(r.deferredObjects > 0
              ? [
                  `  ${r.deferredObjects} unreachable objects (${formatBytes(r.deferredBytes)}) wait out the ${r.graceSeconds} s grace period: run gc again after it`,
                ]
              : []),
            ...(r.abandonedBytes > 0
              ? [
                  `  ${r.dryRun ? 'would remove' : 'removed'} ${formatBytes(r.abandonedBytes)} of packs that unfinished pushes left`,
                ]
              : []),
          ].join('\n'),
        );
      });
    });
}
