import type { Command } from 'commander';
import { emit, reportProgressBar, withService } from '../run';

export function register(program: Command): void {
  program
    .command('report')
    .description(
      'where the bytes of a version came from: new, from the previous version, from elsewhere',
    )
    .argument('<selector>', 'MODEL, MODEL@vN or MODEL@<id prefix>')
    .option('--json', 'print one JSON object')
    .action(async (selector: string, opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const { dedupPhrase, formatBytes, formatSeconds, formatUtc, plural, table } =
          await import('../format');
        const { formatName } = await import('../../../shared/format');
        const bar = await reportProgressBar('report');
        const r = await service
          .report(selector, { onProgress: (p) => bar?.update(p) })
          .finally(() => bar?.stop());
        emit(opts.json, r, () => {
          const v = r.version;
          const p = r.parent;
          const parent = !p
            ? []
            : p.state === 'collected'
              ? [
                  `  ${p.label ?? p.shortId}, the version it was pushed on, was removed and gc has reclaimed it: no comparison with it is possible`,
                ]
              : [
                  `  compared with ${p.label ?? 'the version it was pushed on'} (${p.shortId})${
                    p.state === 'live'
                      ? ''
                      : p.removedAt && p.removedBy
                        ? `, removed on ${formatUtc(p.removedAt)} by ${p.removedBy}`
                        : ', removed (when and by whom were not recorded)'
                  }`,
                ];
          const lines = [
            `${v.model} ${v.label} (${v.shortId}): ${formatBytes(r.logicalBytes)} in ${plural(r.files.length, 'file')}, ${dedupPhrase(r.dedupRatio)}`,
            `  new ${formatBytes(r.newBytes)} (${r.newChunks} of ${plural(r.chunks, 'chunk')}${r.storedBytes !== null && r.storedBytes < r.newBytes ? `; stored ${formatBytes(r.storedBytes)} compressed` : ''}), from the previous version ${formatBytes(r.reusedFromParentBytes)}, from elsewhere ${formatBytes(r.reusedElsewhereBytes)}; manifests ${formatBytes(r.metadataBytes)}`,
            ...parent,
            `  pushed in ${formatSeconds(r.seconds)} (${r.mbps} MB/s)`,
            ...(r.cached ? [`  report kept on this machine since ${formatUtc(r.computedAt)}`] : []),
            ...(r.note ? [`  note: ${r.note}`] : []),
            '',
            table(
              ['file', 'size', 'new', 'previous', 'elsewhere', 'tensors changed'],
              [...r.files]
                .sort((a, b) => b.newBytes - a.newBytes || b.size - a.size)
                .map((f) => [
                  f.path,
                  formatBytes(f.size),
                  formatBytes(f.newBytes),
                  formatBytes(f.reusedFromParentBytes),
                  formatBytes(f.reusedElsewhereBytes),
                  f.tensors
                    ? `${f.tensors.filter((t) => t.status !== 'unchanged').length} of ${f.tensors.length} (${formatName(f.format!)})`
                    : (f.note ?? ''),
                ]),
              [1, 2, 3, 4],
            ),
          ];
          return lines.join('\n');
        });
      });
    });
}
