import type { Command } from 'commander';
import type { PushProgress, PushResult } from '../../../shared/types';
import { emit, progressBar, withService } from '../run';

interface PushFlags {
  message: string;
  allowSame?: boolean;
  update?: boolean;
  remove: string[];
  dryRun?: boolean;
  at?: string;
  cache: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  program
    .command('push')
    .description('make a new version of MODEL from files and folders')
    .argument('<model>', 'model name')
    .argument(
      '[paths...]',
      "files and folders (a folder's files are stored relative to it, a file by its name)",
    )
    .option('-m, --message <message>', 'what changed in this version', '')
    .option(
      '--update',
      "the latest version's files with these added or replaced (instead of these files only)",
    )
    .option(
      '--remove <path>',
      'leave out this file or folder of the latest version (repeatable; implies --update)',
      collect,
      [],
    )
    .option(
      '--at <folder>',
      'put the given files under this folder of the version (with --update: to replace files there)',
    )
    .option('--dry-run', 'show what the push would do (as tv status) and write nothing')
    .option(
      '--no-cache',
      "read every file, even those unchanged since the last push from here, and check the previous version's chunks against the index",
    )
    .option(
      '--allow-same',
      "write a version even when the files are identical to the latest version's",
    )
    .option('--json', 'print one JSON object')
    .addHelpText(
      'after',
      `
Examples:
  tv push llama ./checkpoint -m "step 1000"      a new version: the folder's files
  tv push llama tokenizer.json --update          the latest version with tokenizer.json replaced
  tv push llama vocab.json --update --at tok     ... with tok/vocab.json replaced
  tv push llama --remove old/ --update           the latest version without the folder old/
  tv push llama ./checkpoint --dry-run           what would change, and what would be uploaded`,
    )
    .action(async (model: string, paths: string[], opts: PushFlags, command: Command) => {
      const update = opts.update || opts.remove.length > 0;
      if (paths.length === 0 && !(update && opts.remove.length > 0))
        return command.error(
          'tv: give the files or folders to push (or --remove PATH to only remove files)',
        );
      await withService(command, async (service) => {
        if (opts.dryRun) {
          const { statusText } = await import('../status-text');
          const status = await service.status({
            model,
            paths,
            noCache: !opts.cache,
            ...(update ? { update: { remove: opts.remove } } : {}),
            ...(opts.at !== undefined ? { at: opts.at } : {}),
          });
          return emit(opts.json, status, () =>
            statusText(status, paths.join(', ') || '(removals only)'),
          );
        }
        const bar = await progressBar('pushing');
        const controller = new AbortController();
        const onSigint = () => controller.abort();
        process.once('SIGINT', onSigint);
        try {
          const result = await service.push({
            model,
            paths,
            message: opts.message,
            allowSame: opts.allowSame ?? false,
            noCache: !opts.cache,
            ...(update ? { update: { remove: opts.remove } } : {}),
            ...(opts.at !== undefined ? { at: opts.at } : {}),
            signal: controller.signal,
            onProgress: (p: PushProgress) => {
              const dedup =
                p.bytesHashed > 0 ? Math.round((p.bytesDeduplicated / p.bytesHashed) * 100) : 0;
              bar?.update(
                p.bytesHashed,
                p.totalBytes,
                p.mbps,
                p.etaSeconds,
                ` | ${dedup}% deduplicated${p.throttled ? ' | S3 is throttling, retrying' : ''}`,
              );
            },
          });
          bar?.stop();
          if (result.createdRepository && !opts.json)
            process.stderr.write(
              `tv: created a new repository at ${(await service.repositoryInfo()).location}\n`,
            );
          for (const s of result.skipped)
            process.stderr.write(`tv: skipped ${s.path}: ${s.reason}\n`);
          const text = await resultText(result);
          emit(opts.json, result, () => text);
        } finally {
          bar?.stop();
          process.off('SIGINT', onSigint);
        }
      });
    });
}

async function resultText(result: PushResult): Promise<string> {
  const { dedupPhrase, formatBytes, formatRequests, formatSeconds, formatUsd, plural } =
    await import('../format');
  if (result.identicalTo) {
    const same = `${result.model}: identical to ${result.identicalTo.version} (${result.identicalTo.shortId}): no new version written (--allow-same writes one)`;
    // Chunks the repository lacked (lost, and stored again by --no-cache) are kept all the same.
    return result.newChunks > 0
      ? `${same}; stored ${plural(result.newChunks, 'chunk')} (${formatBytes(result.newBytes)}) it lacked`
      : same;
  }
  const lines = [
    `${result.model} ${result.version} (${result.shortId}): ${plural(result.files, 'file')}, ${formatBytes(result.logicalBytes)}`,
  ];
  const u = result.update;
  if (u) {
    const named = (paths: string[]) =>
      paths.length <= 3
        ? paths.join(', ')
        : `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more`;
    const parts = [
      u.replaced.length > 0 ? `replaced ${named(u.replaced)}` : '',
      u.added.length > 0 ? `added ${named(u.added)}` : '',
      u.unchanged.length > 0 ? `unchanged ${named(u.unchanged)}` : '',
      u.removed.length > 0 ? `removed ${named(u.removed)}` : '',
      `kept ${plural(u.kept, 'file')} of the previous version`,
    ];
    lines.push(`  ${parts.filter(Boolean).join('; ')}`);
  }
  lines.push(
    `  new ${formatBytes(result.newBytes)} in ${result.newChunks} of ${plural(result.chunks, 'chunk')}${storedNote(result, formatBytes)}, reused ${formatBytes(result.reusedBytes)} (${formatBytes(result.reusedFromParentBytes)} from the previous version); manifests ${formatBytes(result.metadataBytes)}`,
  );
  if (result.filesFromCache > 0)
    lines.push(
      `  ${plural(result.filesFromCache, 'file')} (${formatBytes(result.bytesFromCache)}) unchanged since the last push from here, not read (--no-cache reads them)`,
    );
  lines.push(
    `  ${dedupPhrase(result.dedupRatio)}, ${formatSeconds(result.seconds)}`,
    `  ${formatRequests(result.requests)}, ${formatBytes(result.uploadedBytes)} sent${result.estimatedRequestCostUsd === null ? '' : ` (estimated request cost $${formatUsd(result.estimatedRequestCostUsd)} at S3 Standard list prices)`}`,
  );
  return lines.join('\n');
}

/** " (stored 9.1 MiB compressed)" when compression saved bytes; nothing otherwise. */
function storedNote(result: PushResult, formatBytes: (n: number) => string): string {
  const stored = result.storedBytes;
  return stored !== undefined && stored < result.newBytes
    ? ` (stored ${formatBytes(stored)} compressed)`
    : '';
}
