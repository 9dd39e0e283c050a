import { useEffect, useMemo, useRef, useState } from 'react';
import type {
  ChunkRun,
  ChunkSource,
  FileReport,
  ReportProgress,
  TensorChange,
  VersionParent,
} from '../../../shared/types';
import { bytes, count, ratio, utc } from '../format';
import { useApp } from '../store';
import { LayerMap } from './LayerMap';
import { FormatBadge, MetadataTable, TensorTable, useMeasured } from './ModelTables';
import { TextDiffView } from './TextDiff';

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

/** The run and the tensors whose bytes lie at `offset` of this file. */
function at(offset: number, runs: ChunkRun[], tensors: TensorChange[]) {
  const run = runs.find((r) => offset >= r.offset && offset < r.offset + r.length);
  const inside = tensors.filter(
    (t) =>
      t.status !== 'removed' &&
      t.offset !== undefined &&
      offset >= t.offset &&
      offset < t.offset + t.bytes,
  );
  return { run, inside };
}

/**
 * One file as a strip: each run drawn at its place, coloured by where its chunks came from; the
 * selected tensor outlined. Pointing at the strip names the tensors there and where their chunks
 * came from.
 */
function ChunkMap({
  file,
  tensors,
  selected,
}: {
  file: FileReport;
  /** The tensors whose bytes this file holds (its own, or another file's external data). */
  tensors: TensorChange[];
  selected?: TensorChange;
}) {
  const { runs, size } = file;
  const canvas = useRef<HTMLCanvasElement>(null);
  const [pointed, setPointed] = useState<string | null>(null);
  useEffect(() => {
    const el = canvas.current;
    const ctx = el?.getContext('2d');
    if (!el || !ctx) return;
    const width = (el.width = el.clientWidth * devicePixelRatio);
    const height = (el.height = 18 * devicePixelRatio);
    const x = (offset: number) => (offset / Math.max(size, 1)) * width;
    ctx.clearRect(0, 0, width, height);
    for (const run of runs) {
      ctx.fillStyle = SOURCE_COLOR[run.source];
      ctx.fillRect(Math.floor(x(run.offset)), 0, Math.max(1, Math.ceil(x(run.length))), height);
    }
    if (selected?.offset !== undefined && tensors.includes(selected)) {
      ctx.strokeStyle = '#1d1d1f';
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.strokeRect(
        Math.floor(x(selected.offset)),
        1,
        Math.max(2, Math.ceil(x(selected.bytes))),
        height - 2,
      );
    }
  }, [runs, size, selected]);
  const point = (e: React.MouseEvent<HTMLCanvasElement>) => {
    const box = e.currentTarget.getBoundingClientRect();
    const offset = Math.floor(((e.clientX - box.left) / Math.max(box.width, 1)) * size);
    const { run, inside } = at(offset, runs, tensors);
    if (!run) return setPointed(null);
    const names = inside.map((t) => t.name);
    const where =
      tensors.length === 0
        ? ''
        : names.length === 0
          ? 'no tensor (header or padding) · '
          : `${names.slice(0, 3).join(', ')}${names.length > 3 ? ` and ${names.length - 3} more` : ''} · `;
    setPointed(`at ${bytes(offset)}: ${where}${SOURCE_LABEL[run.source]}`);
  };
  const idle = selected
    ? `${selected.name}: ${bytes(selected.newBytes ?? 0)} of ${bytes(selected.bytes)} in new chunks`
    : tensors.length > 0
      ? 'Point at the map to see which tensors its chunks carry; pick a tensor to mark it.'
      : 'Point at the map to see where its chunks came from.';
  return (
    <div className="bar-row">
      <span className="bar-label">
        This version&apos;s layout
        <span className="muted">start → end of the file</span>
      </span>
      <div className="bar-and-figures">
        <canvas
          ref={canvas}
          className="chunkmap"
          data-testid="chunk-map"
          role="img"
          aria-label={`chunk map: ${runs.length} runs`}
          onMouseMove={point}
          onMouseLeave={() => setPointed(null)}
        />
        <p className="muted chunkmap-caption" data-testid="chunk-map-caption">
          {pointed ?? idle}
        </p>
      </div>
    </div>
  );
}

function StackedBar({ file }: { file: FileReport }) {
  const parts: [ChunkSource, number][] = [
    ['new', file.newBytes],
    ['parent', file.reusedFromParentBytes],
    ['elsewhere', file.reusedElsewhereBytes],
  ];
  return (
    <div className="bar-row">
      <span className="bar-label">Where its bytes came from</span>
      <div className="bar-and-figures">
        <Shares file={file} parts={parts} />
        <span className="muted bar-figures" data-testid="file-bar-figures">
          {parts
            .filter(([, n]) => n > 0)
            .map(([s, n]) => `${SOURCE_LABEL[s]} ${bytes(n)}`)
            .join(' · ')}
        </span>
      </div>
    </div>
  );
}

function Shares({ file, parts }: { file: FileReport; parts: [ChunkSource, number][] }) {
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

/** How far the first computation of a report or diff has got. */
export function Computing({ what, progress }: { what: string; progress?: ReportProgress }) {
  const share = progress && progress.files > 0 ? progress.filesDone / progress.files : 0;
  return (
    <div className="progress pad" data-testid="report-progress" aria-live="polite">
      <p className="muted">Computing {what}…</p>
      {progress && (
        <>
          <div className="bar">
            <div style={{ width: `${Math.round(100 * share)}%` }} />
          </div>
          <p className="muted">
            {progress.phase === 'manifests'
              ? `Reading the manifests of the versions it is compared with: ${progress.manifestsRead} read`
              : `${progress.filesDone} of ${count(progress.files, 'file')} · ${count(progress.headersRead, 'model header')} read · ${bytes(progress.bytesRead)} fetched`}
          </p>
        </>
      )}
    </div>
  );
}

export function ReportView({ selector }: { selector: string }) {
  const report = useApp((s) => s.report);
  const [picked, setPicked] = useState<string[]>();
  const data = report?.selector === selector ? report.data : undefined;
  const parent = data?.parent;
  // Delta statistics compare with the parent while it is live (a removed one cannot be read).
  const from =
    data && parent?.state === 'live' && parent.label
      ? `${data.version.model}@${parent.label}`
      : undefined;
  const measured = useMeasured(from, selector, data?.files ?? []);
  if (!report || report.selector !== selector || (!report.data && !report.error))
    return <Computing what="the report" progress={report?.progress} />;
  if (report.error)
    return (
      <p role="alert" className="error pad">
        {report.error}
      </p>
    );
  const r = { ...report.data!, files: measured.files };
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
            {r.storedBytes !== null &&
              r.storedBytes < r.newBytes &&
              `; stored in ${bytes(r.storedBytes)} compressed`}
          </span>
        </div>
      </div>
      {r.parent && <ParentLine parent={r.parent} />}
      {r.note && <p className="muted">Note: {r.note}.</p>}
      {r.cached && (
        <p className="muted" data-testid="report-cached">
          Computed {utc(r.computedAt)} and kept on this machine (a version never changes, so neither
          does its report).
        </p>
      )}
      <LayerMap
        tensors={r.files.flatMap((f) => f.tensors ?? [])}
        kind="report"
        onPick={setPicked}
      />
      <p className="legend" data-testid="chunk-legend">
        {(Object.keys(SOURCE_COLOR) as ChunkSource[]).map((s) => (
          <span key={s}>
            <i style={{ background: SOURCE_COLOR[s] }} /> {SOURCE_LABEL[s]}
          </span>
        ))}
        <span className="muted">
          Each file: where its bytes came from (shares), and this version&apos;s layout (chunks in
          file order).
        </span>
      </p>
      {r.files.map((f) => (
        <FileSection
          key={f.path}
          file={f}
          hosted={r.files.flatMap((o) => (o.tensors ?? []).filter((t) => t.file === f.path))}
          measure={measured.measure(f.path)}
          picked={picked}
          onClearPicked={() => setPicked(undefined)}
        />
      ))}
    </div>
  );
}

/** One file of a report: where its bytes came from, its tensors and its metadata. */
function FileSection({
  file: f,
  hosted,
  measure,
  picked,
  onClearPicked,
}: {
  file: FileReport;
  hosted: TensorChange[];
  measure: ReturnType<ReturnType<typeof useMeasured>['measure']>;
  picked: string[] | undefined;
  onClearPicked: () => void;
}) {
  const [selected, setSelected] = useState<TensorChange | undefined>();
  const own = (f.tensors ?? []).filter((t) => t.file === undefined);
  const names = useMemo(() => new Set((f.tensors ?? []).map((t) => t.name)), [f.tensors]);
  const mine = picked?.filter((n) => names.has(n));
  return (
    <section className="panel file" data-testid="report-file">
      <h3>
        {f.path} <FormatBadge format={f.format} />{' '}
        <span className="muted">
          {bytes(f.size)} · new {bytes(f.newBytes)}
        </span>
      </h3>
      <StackedBar file={f} />
      <ChunkMap file={f} tensors={[...own, ...hosted]} selected={selected} />
      {f.note && <p className="muted">{f.note}</p>}
      {f.text && <TextDiffView text={f.text} />}
      {f.tensors && (!picked || (mine?.length ?? 0) > 0) && (
        <TensorTable
          tensors={f.tensors}
          selected={selected?.name}
          onSelect={setSelected}
          {...(measure ? { measure } : {})}
          {...(mine ? { picked: mine, onClearPicked } : {})}
        />
      )}
      {f.metadata && <MetadataTable metadata={f.metadata} />}
    </section>
  );
}
