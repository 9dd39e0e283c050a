import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('models')
    .description('list the models in the repository')
    .option('--json', 'print one JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const { formatBytes, table } = await import('../format');
        const models = await service.models();
        emit(opts.json, models, () =>
          models.length === 0
            ? 'no models yet: tv push MODEL PATH'
            : table(
                ['model', 'versions', 'latest', 'size', 'created (UTC)'],
                models.map((m) => [
                  m.name,
                  String(m.versions),
                  m.latest?.label ?? '-',
                  m.latest ? formatBytes(m.latest.stats.logicalBytes) : '-',
                  m.latest?.createdAt.replace('T', ' ').slice(0, 19) ?? '-',
                ]),
                [1, 3],
              ),
        );
      });
    });
}
