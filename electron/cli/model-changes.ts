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
    const stats = changed.some((t) => t.stats);
    if (changed.length > 0)
      lines.push(
        table(
          [
            'tensor',
            'change',
            'dtype',
            'shape',
            'bytes',
            ...(stats ? ['rel. L2', 'max |Δ|', 'elements changed'] : []),
          ],
          changed.map((t) => [
            t.name,
            tensorChange(t),
            t.dtype,
            `[${t.shape.join(', ')}]`,
            formatBytes(t.bytes),
            ...(stats && t.stats
              ? [
                  t.stats.relativeL2 === null ? 'n/a' : t.stats.relativeL2.toPrecision(3),
                  t.stats.maxAbsChange.toPrecision(3),
                  `${(100 * t.stats.changedFraction).toFixed(1)}%`,
                ]
              : stats
                ? ['', '', '']
                : []),
          ]),
          stats ? [4, 5, 6, 7] : [4],
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
  lines.push(...textChangeLines(f));
  return lines;
}

/** A small text file of a diff: its changed JSON keys as a table, or its unified line diff. */
export function textChangeLines(f: FileDiff): string[] {
  const t = f.text;
  if (!t) return [];
  const more = t.truncated ? [`(${t.truncated} more changes not shown)`] : [];
  if (t.kind === 'json') {
    const keys = t.keys ?? [];
    return [
      '',
      `${f.path}: ${plural(keys.length + (t.truncated ?? 0), 'key')} changed`,
      ...(keys.length > 0
        ? [
            table(
              ['key', 'status', 'before', 'after'],
              keys.map((k) => [k.key, k.status, k.before ?? '', k.value ?? '']),
            ),
          ]
        : []),
      ...more,
    ];
  }
  return [
    '',
    `--- ${f.path} (before)`,
    `+++ ${f.path} (after)`,
    ...(t.hunks ?? []).flatMap((h) => [`@@ -${h.oldStart} +${h.newStart} @@`, ...h.lines]),
    ...more,
  ];
}
