import { useEffect, useMemo, useRef, useState } from 'react';
import type {
  ChunkRun,
  ChunkSource,
  FileReport,
  TensorChange,
  VersionParent,
} from '../../../shared/types';
import { bytes, count, ratio, utc } from '../format';
import { useApp } from '../store';

export const SOURCE_COLOR: Record<ChunkSource, string> = {
  new: '#f2b34b',
  parent: '#8aa4f8',
  elsewhere: '#7cc8a4',
};
const SOURCE_LABEL: Record<ChunkSource, string> = {
  new: 'new',
  parent: 'from previous version',
  elsewhere: 'from elsewhere',
};

/** One file as a strip: each run drawn at its place, coloured by where its chunks came from. */
function ChunkMap({ runs, size }: { runs: ChunkRun[]; size: number }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const el = canvas.current;
    const ctx = el?.getContext('2d');
    if (!el || !ctx) return;
    const width = (el.width = el.clientWidth * devicePixelRatio);
    const height = (el.height = 18 * devicePixelRatio);
    ctx.clearRect(0, 0, width, height);
    for (const run of runs) {
      ctx.fillStyle = SOURCE_COLOR[run.source];
      ctx.fillRect(
        Math.floor((run.offset / Math.max(size, 1)) * width),
        0,
        Math.max(1, Math.ceil((run.length / Math.max(size, 1)) * width)),
        height,
      );
    }
  }, [runs, size]);
  return (
    <canvas
      ref={canvas}
      className="chunkmap"
      data-testid="chunk-map"
      role="img"
      aria-label={`chunk map: ${runs.length} runs`}
    />
  );
}

function StackedBar({ file }: { file: FileReport }) {
  const parts: [ChunkSource, number][] = [
    ['new', file.newBytes],
    ['parent', file.reusedFromParentBytes],
    ['elsewhere', file.reusedElsewhereBytes],
  ];
  return (
    <div
      className="stacked"
      data-testid="file-bar"
      title={parts.map(([s, n]) => `${SOURCE_LABEL[s]}: ${bytes(n)}`).join(', ')}
    >
      {parts.map(
        ([s, n]) =>
          n > 0 && (
            <div
              key={s}
              style={{
                width: `${(100 * n) / Math.max(file.size, 1)}%`,
                background: SOURCE_COLOR[s],
              }}
            />
          ),
      )}
    </div>
  );
}

type Filter = 'changed' | 'all' | TensorChange['status'];

export function TensorTable({ tensors }: { tensors: TensorChange[] }) {
  const [filter, setFilter] = useState<Filter>('changed');
  const [query, setQuery] = useState('');
  const shown = useMemo(
    () =>
      tensors
        .filter((t) =>
          filter === 'all'
            ? true
            : filter === 'changed'
              ? t.status !== 'unchanged'
              : t.status === filter,
        )
        .filter((t) => t.name.toLowerCase().includes(query.toLowerCase())),
    [tensors, filter, query],
  );
  const counts = tensors.reduce<Record<string, number>>(
    (acc, t) => ((acc[t.status] = (acc[t.status] ?? 0) + 1), acc),
    {},
  );
  return (
    <div className="tensors">
      <div className="tensor-filter">
        <select
          aria-label="Show tensors"
          value={filter}
          onChange={(e) => setFilter(e.target.value as Filter)}
        >
          <option value="changed">changed ({tensors.length - (counts['unchanged'] ?? 0)})</option>
          <option value="all">all ({tensors.length})</option>
          {(['modified', 'added', 'removed', 'unchanged'] as const).map((s) => (
            <option key={s} value={s}>
              {s} ({counts[s] ?? 0})
            </option>
          ))}
        </select>
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
          </tr>
        </thead>
        <tbody>
          {shown.map((t) => (
            <tr key={t.name} className={t.status}>
              <td>{t.name}</td>
              <td>{t.status}</td>
              <td>{t.dtype}</td>
              <td>[{t.shape.join(', ')}]</td>
              <td className="num">{bytes(t.bytes)}</td>
            </tr>
          ))}
          {shown.length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                No tensors match.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** What the version is compared with: its parent, even once removed, or why there is none. */
function ParentLine({ parent }: { parent: VersionParent }) {
  const name = parent.label ?? 'the version it was pushed on';
  if (parent.state === 'collected')
    return (
      <p className="muted" data-testid="report-parent">
        {name} ({parent.shortId}), the version it was pushed on, was removed and gc has reclaimed
        it: no comparison with it is possible.
      </p>
    );
  return (
    <p className="muted" data-testid="report-parent">
      Compared with {name} <code>{parent.shortId}</code>
      {parent.state === 'removed' &&
        (parent.removedAt && parent.removedBy
          ? `, removed on ${utc(parent.removedAt)} by ${parent.removedBy}`
          : ', removed (when and by whom were not recorded)')}
      .
    </p>
  );
}

export function ReportView({ selector }: { selector: string }) {
  const report = useApp((s) => s.report);
  if (!report || report.selector !== selector || (!report.data && !report.error))
    return <p className="muted pad">Computing the report…</p>;
  if (report.error)
    return (
      <p role="alert" className="error pad">
        {report.error}
      </p>
    );
  const r = report.data!;
  return (
    <div className="report" data-testid="report">
      <h2>
        {r.version.model} {r.version.label} <code>{r.version.shortId}</code>
      </h2>
      <div className="headline">
        <div>
          <span className="big" data-testid="dedup-ratio">
            {ratio(r.dedupRatio)}
          </span>
          <span className="muted">
            dedup ratio{r.dedupRatio === null && ': every chunk was stored already'}
          </span>
        </div>
        <div>
          <span className="big">{bytes(r.reusedBytes)}</span>
          <span className="muted">saved of {bytes(r.logicalBytes)}</span>
        </div>
        <div>
          <span className="big">{bytes(r.newBytes)}</span>
          <span className="muted">
            new, in {r.newChunks} of {count(r.chunks, 'chunk')}, and {bytes(r.metadataBytes)} of
            manifests
          </span>
        </div>
      </div>
      {r.parent && <ParentLine parent={r.parent} />}
      {r.note && <p className="muted">Note: {r.note}.</p>}
      <p className="legend">
        {(Object.keys(SOURCE_COLOR) as ChunkSource[]).map((s) => (
          <span key={s}>
            <i style={{ background: SOURCE_COLOR[s] }} /> {SOURCE_LABEL[s]}
          </span>
        ))}
      </p>
      {r.files.map((f) => (
        <section key={f.path} className="panel file">
          <h3>
            {f.path}{' '}
            <span className="muted">
              {bytes(f.size)} · new {bytes(f.newBytes)}
            </span>
          </h3>
          <StackedBar file={f} />
          <ChunkMap runs={f.runs} size={f.size} />
          {f.note && <p className="muted">{f.note}</p>}
          {f.tensors && <TensorTable tensors={f.tensors} />}
        </section>
      ))}
    </div>
  );
}
