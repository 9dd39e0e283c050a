import type { PushStatus } from '../../shared/types';
import { formatBytes, formatSeconds, plural, table } from './format';

/** `tv status` and `tv push --dry-run`: what changed, and what a push would upload. */
export function statusText(s: PushStatus, sources: string): string {
  const against = s.against
    ? `${s.against.version} (${s.against.shortId})`
    : 'nothing (no version yet)';
  const lines = [`${s.model}: ${sources} against ${against}`];
  if (s.identical) {
    lines.push(
      `  identical to ${s.against?.version}: a push would write no version (--allow-same writes one)`,
    );
  } else {
    const changed = s.files.filter((f) => f.status !== 'unchanged');
    lines.push(
      table(
        ['change', 'path', 'size', 'new bytes'],
        changed.map((f) => [
          f.status,
          f.path,
          f.status === 'modified'
            ? `${formatBytes(f.sizeBefore ?? 0)} -> ${formatBytes(f.size ?? 0)}`
            : formatBytes(f.size ?? f.sizeBefore ?? 0),
          f.status === 'removed' ? '' : formatBytes(f.newBytes),
        ]),
        [2, 3],
      )
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    lines.push(
      `  ${plural(s.modified, 'file')} modified, ${s.added} added, ${s.removed} removed, ${s.unchanged} unchanged`,
    );
    lines.push(
      `a push would upload ${formatBytes(s.newBytes)} of new chunks (${plural(s.newChunks, 'chunk')}) for a version of ${formatBytes(s.logicalBytes)}`,
    );
  }
  lines.push(
    `read ${plural(s.filesRead, 'file')} (${formatBytes(s.bytesRead)}); ${plural(s.filesFromCache, 'file')} (${formatBytes(s.bytesFromCache)}) unchanged since the last push from here, not read; ${formatSeconds(s.seconds)}`,
  );
  return lines.join('\n');
}
