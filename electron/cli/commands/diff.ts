import type { Command } from 'commander';
import { emit, reportProgressBar, withService } from '../run';

export function register(program: Command): void {
  program
    .command('diff')
    .description('what changed between two versions, file by file and tensor by tensor')
    .argument('<from>', 'MODEL@VERSION (the older one)')
    .argument('<to>', 'MODEL@VERSION (the newer one)')
    .option(
      '--stats',
      'also compute how much each changed tensor moved (relative L2, max |change|, share of elements changed)',
    )
    .option('--json', 'print one JSON object')
    .action(
      async (
        from: string,
        to: string,
        opts: { json?: boolean; stats?: boolean },
        command: Command,
      ) => {
        await withService(command, async (service) => {
          const { formatBytes, table } = await import('../format');
          const { modelChangeLines } = await import('../model-changes');
          const bar = await reportProgressBar('diff');
          const d = await service
            .diff(from, to, { onProgress: (p) => bar?.update(p) })
            .finally(() => bar?.stop());
          if (opts.stats)
            for (const f of d.files) {
              if (!f.tensors?.some((t) => t.status === 'modified')) continue;
              const { tensors } = await service.tensorStats(from, to, { path: f.path });
              const computed = new Map(tensors.map((t) => [t.name, t.stats]));
              for (const t of f.tensors) {
                const stats = computed.get(t.name);
                if (stats) t.stats = stats;
              }
            }
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
      },
    );
}
