import { Option, type Command } from 'commander';
import { duration, emit, withService, type Duration } from '../run';

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
    .option('--json', 'print one JSON object')
    .action(
      async (opts: { dryRun?: boolean; grace: Duration; json?: boolean }, command: Command) => {
        await withService(command, async (service) => {
          const { formatBytes, plural } = await import('../format');
          const r = await service.gc({
            dryRun: opts.dryRun ?? false,
            graceSeconds: opts.grace.seconds,
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
                    `  ${r.dryRun ? 'would remove' : 'removed'} ${formatBytes(r.abandonedBytes)} of packs that unfinished pushes left`,
                  ]
                : []),
            ].join('\n'),
          );
        });
      },
    );
}
