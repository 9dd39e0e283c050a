import { useMemo, useState } from 'react';
import { formatName, plural, tensorChange } from '../../../shared/format';
import { AFTER_LAYERS, BEFORE_LAYERS, placeTensor, type TensorPlace } from '../../../shared/layers';
import type { MetadataChange, ModelFormatName, TensorChange } from '../../../shared/types';
import { bytes } from '../format';
import { useApp } from '../store';

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

/** What a table's measure button does: delta statistics of named tensors (all changed: none). */
export interface Measure {
  run(names?: string[]): void;
  busy: boolean;
  error?: string;
}

/** New bytes at the same dtype and shape: what "measure all changed" takes. */
const changedContent = (t: TensorChange) =>
  t.status === 'modified' && (t.changes ?? []).every((c) => c === 'content');
/** Rows with a measure button: changed ones, and unchanged ones (which measure 0). */
const measurable = (t: TensorChange) => changedContent(t) || t.status === 'unchanged';

/** Rows beyond this many start with the groups that hold no change folded. */
const FOLD_ABOVE = 60;

function statCells(t: TensorChange, measure: Measure | undefined) {
  if (t.stats)
    return (
      <>
        <td className="num">
          {t.stats.relativeL2 === null ? 'n/a' : t.stats.relativeL2.toPrecision(3)}
        </td>
        <td className="num">{t.stats.maxAbsChange.toPrecision(3)}</td>
        <td className="num">{(100 * t.stats.changedFraction).toFixed(1)}%</td>
      </>
    );
  return (
    <td colSpan={3} className="num">
      {measure && measurable(t) && (
        <button
          type="button"
          className="small"
          disabled={measure.busy}
          onClick={(e) => {
            e.stopPropagation();
            measure.run([t.name]);
          }}
        >
          measure
        </button>
      )}
    </td>
  );
}

/**
 * Tensors compared with the older file: how each changed (retyped, reshaped, new bytes), in a
 * report the bytes of it that new chunks carry, and once measured how far its values moved.
 * Grouped by layer (a group folds; long tables start with unchanged groups folded). Clicking a
 * row marks the tensor on the chunk map.
 */
export function TensorTable({
  tensors,
  selected,
  onSelect,
  measure,
  picked,
  onClearPicked,
}: {
  tensors: TensorChange[];
  selected?: string;
  onSelect?: (t: TensorChange) => void;
  measure?: Measure;
  /** Tensors picked on the layer map: the table shows only those. */
  picked?: string[];
  onClearPicked?: () => void;
}) {
  const [filter, setFilter] = useState<Filter>('changed');
  const [query, setQuery] = useState('');
  const [toggled, setToggled] = useState<Set<string>>(new Set());
  const showNew = tensors.some((t) => t.newBytes !== undefined);
  const showStats = measure !== undefined || tensors.some((t) => t.stats);
  const shown = useMemo(() => {
    const only = picked && new Set(picked);
    return tensors
      .filter((t) => (only ? only.has(t.name) : passes(filter, t.status)))
      .filter((t) => t.name.toLowerCase().includes(query.toLowerCase()));
  }, [tensors, filter, query, picked]);
  const groups = useMemo(() => {
    const byRow = new Map<string, { place: TensorPlace; rows: TensorChange[] }>();
    for (const t of shown) {
      const place = placeTensor(t.name);
      const group = byRow.get(place.row) ?? { place, rows: [] };
      group.rows.push(t);
      byRow.set(place.row, group);
    }
    return [...byRow.values()].sort(
      (a, b) =>
        (a.place.stack < b.place.stack ? -1 : a.place.stack > b.place.stack ? 1 : 0) ||
        a.place.layer - b.place.layer,
    );
  }, [shown]);
  const grouped = groups.length > 1;
  const foldByDefault = (rows: TensorChange[]) =>
    shown.length > FOLD_ABOVE &&
    query === '' &&
    !rows.some((t) => t.status !== 'unchanged' || t.name === selected);
  const folded = (row: string, rows: TensorChange[]) => foldByDefault(rows) !== toggled.has(row);
  const toggle = (row: string) => {
    const next = new Set(toggled);
    if (!next.delete(row)) next.add(row);
    setToggled(next);
  };
  const columns = 5 + (showNew ? 1 : 0) + (showStats ? 3 : 0);
  const pending = tensors.filter((t) => changedContent(t) && !t.stats).length;
  return (
    <div className="tensors">
      <div className="tensor-filter">
        <h4>Tensors</h4>
        {picked ? (
          <span className="picked" data-testid="picked-tensors">
            {plural(picked.length, 'tensor')} picked on the layer map{' '}
            <button type="button" className="link" onClick={onClearPicked}>
              show all
            </button>
          </span>
        ) : (
          <StatusFilter label="Show tensors" items={tensors} filter={filter} onChange={setFilter} />
        )}
        <input
          aria-label="Filter tensors"
          placeholder="tensor name"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        {measure && pending > 0 && (
          <button type="button" disabled={measure.busy} onClick={() => measure.run()}>
            {measure.busy ? 'Measuring…' : `Measure all ${plural(pending, 'changed tensor')}`}
          </button>
        )}
        {measure?.error && <span className="error">{measure.error}</span>}
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
            {showStats && (
              <>
                <th className="num" title="||b − a|| / ||a||">
                  moved (rel. L2)
                </th>
                <th className="num">max |Δ|</th>
                <th className="num">elements changed</th>
              </>
            )}
          </tr>
        </thead>
        {groups.map(({ place, rows }) => {
          const closed = grouped && folded(place.row, rows);
          const changed = rows.filter((t) => t.status !== 'unchanged').length;
          return (
            <tbody key={place.row}>
              {grouped && (
                <tr className="group" onClick={() => toggle(place.row)}>
                  <th colSpan={columns} aria-expanded={!closed}>
                    {closed ? '▸' : '▾'} {groupLabel(place.row)}{' '}
                    <span className="muted">
                      · {plural(rows.length, 'tensor')}
                      {changed > 0 ? `, ${changed} changed` : ''}
                    </span>
                  </th>
                </tr>
              )}
              {!closed &&
                rows.map((t) => (
                  <tr
                    key={t.name}
                    className={`${t.status}${t.name === selected ? ' selected' : ''}`}
                    onClick={() => onSelect?.(t)}
                  >
                    <td>
                      {t.name}
                      {t.storage !== undefined && (
                        <span className="muted"> · storage {t.storage}</span>
                      )}
                      {t.file !== undefined && <span className="muted"> · in {t.file}</span>}
                    </td>
                    <td>{tensorChange(t)}</td>
                    <td>{t.dtype}</td>
                    <td>[{t.shape.join(', ')}]</td>
                    <td className="num">{bytes(t.bytes)}</td>
                    {showNew && <td className="num">{bytes(t.newBytes ?? 0)}</td>}
                    {showStats && statCells(t, measure)}
                  </tr>
                ))}
            </tbody>
          );
        })}
        {shown.length === 0 && (
          <tbody>
            <tr>
              <td colSpan={columns} className="muted">
                No tensors match.
              </td>
            </tr>
          </tbody>
        )}
      </table>
    </div>
  );
}

const groupLabel = (row: string) =>
  row === BEFORE_LAYERS
    ? 'embeddings'
    : row === AFTER_LAYERS
      ? 'head, final norm, other'
      : `layer ${row}`;

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

/**
 * Files with the delta statistics measured so far merged into their tensors, and a measure
 * action per file; none without a version to compare with (`from`).
 */
export function useMeasured<F extends { path: string; tensors?: TensorChange[] }>(
  from: string | undefined,
  to: string,
  files: F[],
) {
  const { stats, measuring, measure } = useApp();
  const merged = useMemo(
    () =>
      files.map((f) => {
        const found = from ? stats[`${from}..${to}::${f.path}`] : undefined;
        if (!found || !f.tensors) return f;
        return {
          ...f,
          tensors: f.tensors.map((t) => (found[t.name] ? { ...t, stats: found[t.name] } : t)),
        };
      }),
    [files, stats, from, to],
  );
  return {
    files: merged,
    measure: (path: string): Measure | undefined => {
      if (!from) return undefined;
      const state = measuring[`${from}..${to}::${path}`];
      return {
        run: (names) => void measure(from, to, path, names),
        busy: state?.busy ?? false,
        ...(state?.error ? { error: state.error } : {}),
      };
    },
  };
}
