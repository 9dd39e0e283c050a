import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('diff')
    .description('what changed between two versions, file by file and tensor by tensor')
    .argument('<from>', 'MODEL@VERSION (the older one)')
    .argument('<to>', 'MODEL@VERSION (the newer one)')
    .option('--json', 'print one JSON object')
    .action(async (from: string, to: string, opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const { formatBytes, table } = await import('../format');
        const { modelChangeLines } = await import('../model-changes');
        const d = await service.diff(from, to);
        emit(opts.json, d, () => {
          const lines = [
            `${d.from.model} ${d.from.label} -> ${d.to.model} ${d.to.label}: ${formatBytes(d.bytesChanged)} changed`,
            '',
            table(
              ['file', 'status', 'changed', 'size'],
              d.files.map((f) => [
                f.path,
                f.status,
                formatBytes(f.bytesChanged),
                formatBytes(f.sizeAfter ?? f.sizeBefore ?? 0),
              ]),
              [2, 3],
            ),
          ];
          for (const f of d.files) lines.push(...modelChangeLines(f));
          return lines.join('\n');
        });
      });
    });
}
