import type { Command } from 'commander';
import type { RestoreProgress, RestoreResult } from '../../../shared/types';
import { emit, progressBar, withService } from '../run';

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  program
    .command('pull')
    .description(
      "write a version's files into DEST: a new folder, or one holding some of them already (only what differs is written; other files are left as they are)",
    )
    .argument('<selector>', 'MODEL, MODEL@vN, MODEL@latest, MODEL@<tag> or MODEL@<id prefix>')
    .argument('<dest>', 'destination folder')
    .option(
      '--include <glob>',
      "only files matching (repeatable): 'tokenizer*', '*.json', 'shards/**'",
      collect,
      [],
    )
    .option('--exclude <glob>', "leave out files matching (repeatable): '*.bin'", collect, [])
    .option('--json', 'print one JSON object')
    .addHelpText(
      'after',
      `
A glob without a "/" also matches a file's or a folder's name anywhere ('tokenizer*' picks
tokenizer.json and everything in a folder tokenizer/); one matching a folder picks what is in it.
A pull stopped part way (Ctrl-C, a lost connection) resumes when run again: files in place are
checked, not written again.`,
    )
    .action(
      async (
        selector: string,
        dest: string,
        opts: { include: string[]; exclude: string[]; json?: boolean },
        command: Command,
      ) => {
        await withService(command, async (service) => {
          const bar = await progressBar('pulling');
          const controller = new AbortController();
          const onSigint = () => controller.abort(new Error('pull cancelled'));
          process.once('SIGINT', onSigint);
          try {
            const result = await service.pull(selector, dest, {
              ...(opts.include.length > 0 ? { include: opts.include } : {}),
              ...(opts.exclude.length > 0 ? { exclude: opts.exclude } : {}),
              signal: controller.signal,
              onProgress: (p: RestoreProgress) =>
                bar?.update(
                  p.bytesWritten + p.bytesChecked,
                  p.totalBytes,
                  p.mbps,
                  p.etaSeconds,
                  p.phase === 'checking' ? ' | checking what is there' : '',
                ),
            });
            bar?.stop();
            const text = await resultText(result);
            emit(opts.json, result, () => text);
          } finally {
            bar?.stop();
            process.off('SIGINT', onSigint);
          }
        });
      },
    );
  program
    .command('ls')
    .description("a version's files and their sizes")
    .argument('<selector>', 'MODEL, MODEL@vN, MODEL@<tag>...')
    .option('--json', 'print one JSON object')
    .action(async (selector: string, opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const { formatBytes, table } = await import('../format');
        const v = await service.files(selector);
        emit(opts.json, v, () =>
          table(
            ['path', 'size'],
            v.files.map((f) => [f.path, formatBytes(f.size)]),
            [1],
          ),
        );
      });
    });
}

async function resultText(r: RestoreResult): Promise<string> {
  const { formatSeconds, restoreSummary } = await import('../format');
  return restoreSummary(r, formatSeconds(r.seconds));
}
