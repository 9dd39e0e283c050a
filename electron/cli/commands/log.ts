import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('log')
    .description("list a model's versions, oldest first")
    .argument('<model>', 'model name')
    .option('--json', 'print one JSON array')
    .action(async (model: string, opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const { formatBytes, formatRatio, table } = await import('../format');
        const versions = await service.log(model);
        emit(opts.json, versions, () =>
          versions.length === 0
            ? `${model} has no versions`
            : table(
                [
                  'version',
                  'id',
                  'created (UTC)',
                  'size',
                  'new',
                  'dedup',
                  'files',
                  'tags',
                  'message',
                ],
                versions.map((v) => [
                  v.label,
                  v.shortId,
                  v.createdAt.replace('T', ' ').slice(0, 19),
                  formatBytes(v.stats.logicalBytes),
                  formatBytes(v.stats.newBytes),
                  formatRatio(v.dedupRatio),
                  String(v.files),
                  v.tags.join(', '),
                  v.message,
                ]),
                [3, 4, 5, 6],
              ),
        );
      });
    });
}
