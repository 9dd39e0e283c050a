import type { Command } from 'commander';
import type { PushProgress } from '../../../shared/types';
import { emit, progressBar, withService } from '../run';

export function register(program: Command): void {
  program
    .command('push')
    .description('make a new version of MODEL from files and folders')
    .argument('<model>', 'model name')
    .argument('<paths...>', "files and folders (a folder's files are stored relative to it)")
    .option('-m, --message <message>', 'what changed in this version', '')
    .option(
      '--allow-same',
      "write a version even when the files are identical to the latest version's",
    )
    .option('--json', 'print one JSON object')
    .action(
      async (
        model: string,
        paths: string[],
        opts: { message: string; allowSame?: boolean; json?: boolean },
        command: Command,
      ) => {
        await withService(command, async (service) => {
          const { dedupPhrase, formatBytes, formatRequests, formatSeconds, formatUsd, plural } =
            await import('../format');
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
            emit(opts.json, result, () =>
              result.identicalTo
                ? `${result.model}: identical to ${result.identicalTo.version} (${result.identicalTo.shortId}): no new version written (--allow-same writes one)`
                : [
                    `${result.model} ${result.version} (${result.shortId}): ${plural(result.files, 'file')}, ${formatBytes(result.logicalBytes)}`,
                    `  new ${formatBytes(result.newBytes)} in ${result.newChunks} of ${plural(result.chunks, 'chunk')}, reused ${formatBytes(result.reusedBytes)} (${formatBytes(result.reusedFromParentBytes)} from the previous version); manifests ${formatBytes(result.metadataBytes)}`,
                    `  ${dedupPhrase(result.dedupRatio)}, ${formatSeconds(result.seconds)}`,
                    `  ${formatRequests(result.requests)}, ${formatBytes(result.uploadedBytes)} sent${result.estimatedRequestCostUsd === null ? '' : ` (estimated request cost $${formatUsd(result.estimatedRequestCostUsd)} at S3 Standard list prices)`}`,
                  ].join('\n'),
            );
          } finally {
            bar?.stop();
            process.off('SIGINT', onSigint);
          }
        });
      },
    );
}
