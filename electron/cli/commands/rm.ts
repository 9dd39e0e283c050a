import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('rm')
    .description(
      'remove a version (MODEL@VERSION) or a whole model (MODEL); the data stays until gc',
    )
    .argument('<selector>', 'MODEL@VERSION or MODEL')
    .option('--json', 'print one JSON object')
    .action(async (selector: string, opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const r = await service.remove(selector);
        emit(
          opts.json,
          r,
          () =>
            `removed ${r.model} ${r.removed.map((v) => v.version).join(', ')} (run tv gc to reclaim space)`,
        );
      });
    });
}
