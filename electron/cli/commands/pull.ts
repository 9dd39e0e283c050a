import type { Command } from 'commander';
import type { RestoreProgress } from '../../../shared/types';
import { emit, progressBar, withService } from '../run';

export function register(program: Command): void {
  program
    .command('pull')
    .description("write a version's files into DEST (an empty or new folder)")
    .argument('<selector>', 'MODEL, MODEL@vN, MODEL@latest or MODEL@<id prefix>')
    .argument('<dest>', 'destination folder')
    .option('--json', 'print one JSON object')
    .action(async (selector: string, dest: string, opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const { formatBytes, formatSeconds, plural } = await import('../format');
        const bar = await progressBar('pulling');
        try {
          const result = await service.pull(selector, dest, {
            onProgress: (p: RestoreProgress) =>
              bar?.update(p.bytesWritten, p.totalBytes, p.mbps, p.etaSeconds),
          });
          bar?.stop();
          emit(
            opts.json,
            result,
            () =>
              `${result.model} ${result.version}: ${plural(result.files, 'file')}, ${formatBytes(result.bytes)} written to ${result.destination} in ${formatSeconds(result.seconds)}`,
          );
        } finally {
          bar?.stop();
        }
      });
    });
}
