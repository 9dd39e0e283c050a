import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('status')
    .description(
      'what a push of these files would change against the latest version, and upload; writes nothing',
    )
    .argument('<model>', 'model name')
    .argument(
      '[paths...]',
      'files and folders, as tv push takes them (default: what the last push from here was given)',
    )
    .option('--against <selector>', 'compare with this version (MODEL@vN) instead of the latest')
    .option('--no-cache', 'read every file, even those unchanged since the last push from here')
    .option('--json', 'print one JSON object')
    .action(
      async (
        model: string,
        paths: string[],
        opts: { against?: string; cache: boolean; json?: boolean },
        command: Command,
      ) => {
        await withService(command, async (service) => {
          const { statusText } = await import('../status-text');
          const status = await service.status({
            model,
            paths,
            noCache: !opts.cache,
            ...(opts.against ? { against: opts.against } : {}),
          });
          emit(opts.json, status, () =>
            statusText(
              status,
              paths.length > 0 ? paths.join(', ') : `${status.sources.join(', ')} (as last pushed)`,
            ),
          );
        });
      },
    );
}
