import { formatName, tensorChange } from '../../shared/format';
import type { FileDiff } from '../../shared/types';
import { formatBytes, plural, table } from './format';

/** A model file of a diff: its changed tensors and its changed metadata keys, as tables. */
export function modelChangeLines(f: FileDiff): string[] {
  const lines: string[] = [];
  const label = f.format ? ` (${formatName(f.format)})` : '';
  if (f.note) lines.push('', `${f.path}${label}: ${f.note}`);
  if (f.tensors) {
    const changed = f.tensors
      .filter((t) => t.status !== 'unchanged')
      .sort((a, b) => b.bytes - a.bytes);
    lines.push(
      '',
      `${f.path}${label}: ${changed.length} of ${plural(f.tensors.length, 'tensor')} changed`,
    );
    if (changed.length > 0)
      lines.push(
        table(
          ['tensor', 'change', 'dtype', 'shape', 'bytes'],
          changed.map((t) => [
            t.name,
            tensorChange(t),
            t.dtype,
            `[${t.shape.join(', ')}]`,
            formatBytes(t.bytes),
          ]),
          [4],
        ),
      );
  }
  const keys = (f.metadata ?? []).filter((m) => m.status !== 'unchanged');
  if (keys.length > 0) {
    lines.push(
      '',
      `${f.path}${label}: ${keys.length} of ${f.metadata!.length} metadata keys changed`,
    );
    lines.push(
      table(
        ['key', 'status', 'before', 'after'],
        keys.map((m) => [
          m.key,
          m.status,
          m.before ?? '',
          m.detail && m.value === m.before
            ? m.detail
            : [m.value ?? '', m.detail ? `(${m.detail})` : ''].filter(Boolean).join(' '),
        ]),
      ),
    );
  }
  return lines;
}
