import { useMemo, useState } from 'react';
import { formatName, tensorChange } from '../../../shared/format';
import type { MetadataChange, ModelFormatName, TensorChange } from '../../../shared/types';
import { bytes } from '../format';

/** The format a file was read as, beside its name. */
export function FormatBadge({ format }: { format?: ModelFormatName }) {
  if (!format) return null;
  return (
    <span className="badge" data-testid="file-format">
      {formatName(format)}
    </span>
  );
}

type Filter = 'changed' | 'all' | TensorChange['status'];

function StatusFilter({
  label,
  items,
  filter,
  onChange,
}: {
  label: string;
  items: { status: TensorChange['status'] }[];
  filter: Filter;
  onChange: (f: Filter) => void;
}) {
  const counts = items.reduce<Record<string, number>>(
    (acc, t) => ((acc[t.status] = (acc[t.status] ?? 0) + 1), acc),
    {},
  );
  return (
    <select aria-label={label} value={filter} onChange={(e) => onChange(e.target.value as Filter)}>
      <option value="changed">changed ({items.length - (counts['unchanged'] ?? 0)})</option>
      <option value="all">all ({items.length})</option>
      {(['modified', 'added', 'removed', 'unchanged'] as const).map((s) => (
        <option key={s} value={s}>
          {s} ({counts[s] ?? 0})
        </option>
      ))}
    </select>
  );
}

const passes = (filter: Filter, status: TensorChange['status']) =>
  filter === 'all' ? true : filter === 'changed' ? status !== 'unchanged' : status === filter;

/**
 * Tensors compared with the older file: how each changed (retyped, reshaped, new bytes), and in a
 * report the bytes of it that new chunks carry. Clicking a row marks the tensor on the chunk map.
 */
export function TensorTable({
  tensors,
  selected,
  onSelect,
}: {
  tensors: TensorChange[];
  selected?: string;
  onSelect?: (t: TensorChange) => void;
}) {
  const [filter, setFilter] = useState<Filter>('changed');
  const [query, setQuery] = useState('');
  const showNew = tensors.some((t) => t.newBytes !== undefined);
  const shown = useMemo(
    () =>
      tensors
        .filter((t) => passes(filter, t.status))
        .filter((t) => t.name.toLowerCase().includes(query.toLowerCase())),
    [tensors, filter, query],
  );
  return (
    <div className="tensors">
      <div className="tensor-filter">
        <h4>Tensors</h4>
        <StatusFilter label="Show tensors" items={tensors} filter={filter} onChange={setFilter} />
        <input
          aria-label="Filter tensors"
          placeholder="tensor name"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
      </div>
      <table data-testid="tensor-table">
        <thead>
          <tr>
            <th>tensor</th>
            <th>status</th>
            <th>dtype</th>
            <th>shape</th>
            <th className="num">bytes</th>
            {showNew && <th className="num">new</th>}
          </tr>
        </thead>
        <tbody>
          {shown.map((t) => (
            <tr
              key={t.name}
              className={`${t.status}${t.name === selected ? ' selected' : ''}`}
              onClick={() => onSelect?.(t)}
            >
              <td>
                {t.name}
                {t.storage !== undefined && <span className="muted"> · storage {t.storage}</span>}
                {t.file !== undefined && <span className="muted"> · in {t.file}</span>}
              </td>
              <td>{tensorChange(t)}</td>
              <td>{t.dtype}</td>
              <td>[{t.shape.join(', ')}]</td>
              <td className="num">{bytes(t.bytes)}</td>
              {showNew && <td className="num">{bytes(t.newBytes ?? 0)}</td>}
            </tr>
          ))}
          {shown.length === 0 && (
            <tr>
              <td colSpan={showNew ? 6 : 5} className="muted">
                No tensors match.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** Metadata keys compared with the older file: the old and new value, and what differs inside. */
export function MetadataTable({ metadata }: { metadata: MetadataChange[] }) {
  const [filter, setFilter] = useState<Filter>('changed');
  const shown = metadata.filter((m) => passes(filter, m.status));
  return (
    <div className="metadata">
      <div className="tensor-filter">
        <h4>Metadata</h4>
        <StatusFilter label="Show metadata" items={metadata} filter={filter} onChange={setFilter} />
      </div>
      <table data-testid="metadata-table">
        <thead>
          <tr>
            <th>metadata key</th>
            <th>status</th>
            <th>value</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((m) => (
            <tr key={m.key} className={m.status}>
              <td>{m.key}</td>
              <td>{m.status}</td>
              <td className="value">
                {m.status === 'modified' ? (
                  <>
                    <del>{m.before}</del> → <ins>{m.value}</ins>
                  </>
                ) : (
                  (m.value ?? m.before)
                )}
                {m.detail && <div className="muted">{m.detail}</div>}
              </td>
            </tr>
          ))}
          {shown.length === 0 && (
            <tr>
              <td colSpan={3} className="muted">
                No metadata key {filter === 'changed' ? 'changed' : 'matches'}.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
