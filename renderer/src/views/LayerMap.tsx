import { useMemo, useState } from 'react';
import { AFTER_LAYERS, BEFORE_LAYERS, buildLayerMap, type LayerCell } from '../../../shared/layers';
import type { TensorChange } from '../../../shared/types';
import { bytes } from '../format';

/** How much of a tensor changed, for the map: its new-chunk bytes in a report, else its status. */
function changedBytes(t: TensorChange, kind: 'report' | 'diff'): number {
  if (t.status === 'unchanged') return 0;
  if (t.stats) return Math.round(t.stats.changedFraction * t.bytes);
  if (kind === 'report' && t.status === 'modified' && t.newBytes !== undefined) return t.newBytes;
  return t.bytes;
}

/** White to orange: the share of a cell's bytes that changed (0 to 1). */
const shareColor = (share: number) =>
  share <= 0 ? '#f4f5f7' : `color-mix(in srgb, #e8590c ${Math.round(15 + 85 * share)}%, #fff4e6)`;
/** White to purple: a cell's relative L2 change, against the largest in the map. */
const moveColor = (value: number, max: number) =>
  value <= 0
    ? '#f4f5f7'
    : `color-mix(in srgb, #6741d9 ${Math.round(15 + 85 * Math.min(1, value / max))}%, #f3f0ff)`;

const rowLabel = (row: string) =>
  row === BEFORE_LAYERS ? 'embeddings' : row === AFTER_LAYERS ? 'head, final norm' : `layer ${row}`;

/**
 * The version's tensors as a grid: layers down, kinds across (attention q/k/v/o, MLP, norms,
 * embeddings, head), each cell coloured by the share of its bytes that changed, or by how far
 * its values moved once delta statistics are computed. A fine-tune of the last layers shows as
 * their rows; a LoRA merge as a band down the attention columns.
 */
export function LayerMap({
  tensors,
  kind,
  onPick,
}: {
  tensors: TensorChange[];
  kind: 'report' | 'diff';
  /** Pointing a cell's tensors out in the table. */
  onPick?: (names: string[]) => void;
}) {
  const map = useMemo(
    () =>
      buildLayerMap(
        tensors
          .filter((t) => t.status !== 'removed')
          .map((t) => ({
            name: t.name,
            bytes: t.bytes,
            changedBytes: changedBytes(t, kind),
            relativeL2: t.stats?.relativeL2 ?? null,
          })),
      ),
    [tensors, kind],
  );
  const maxL2 = useMemo(() => {
    let max = 0;
    for (const row of map.cells.values())
      for (const cell of row.values()) max = Math.max(max, cell.relativeL2 ?? 0);
    return max;
  }, [map]);
  const [by, setBy] = useState<'bytes' | 'moved'>('moved');
  const [pointed, setPointed] = useState<string>();
  if (!map.layered) return null;
  const moved = maxL2 > 0 && by === 'moved';
  const describe = (row: string, k: string, cell: LayerCell) =>
    `${rowLabel(row)} · ${k}: ${bytes(cell.changedBytes)} of ${bytes(cell.bytes)} changed` +
    (cell.relativeL2 !== null ? ` · moved ${cell.relativeL2.toPrecision(3)} (relative L2)` : '') +
    ` · ${cell.tensors.length === 1 ? cell.tensors[0] : `${cell.tensors.length} tensors`}`;
  return (
    <section className="panel layer-map" data-testid="layer-map" aria-label="Layer map">
      <div className="layer-map-head">
        <h3>Where the model changed</h3>
        {maxL2 > 0 && (
          <select
            aria-label="Colour the layer map by"
            value={by}
            onChange={(e) => setBy(e.target.value as 'bytes' | 'moved')}
          >
            <option value="moved">how far values moved (relative L2)</option>
            <option value="bytes">share of bytes changed</option>
          </select>
        )}
        <span className="legend-scale">
          <span>0</span>
          <i
            style={{
              background: moved
                ? 'linear-gradient(to right, #f3f0ff, #6741d9)'
                : 'linear-gradient(to right, #fff4e6, #e8590c)',
            }}
          />
          <span>{moved ? maxL2.toPrecision(3) : '100%'}</span>
          <span className="muted">
            {moved ? 'relative L2 change' : 'of the bytes changed'}; grey: no change
          </span>
        </span>
      </div>
      <div className="layer-grid-scroll">
        <table className="layer-grid">
          <thead>
            <tr>
              <th />
              {map.kinds.map((k) => (
                <th key={k} scope="col">
                  {k}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {map.rows.map((row) => (
              <tr key={row}>
                <th scope="row">{rowLabel(row)}</th>
                {map.kinds.map((k) => {
                  const cell = map.cells.get(row)?.get(k);
                  if (!cell) return <td key={k} className="empty" />;
                  const share = cell.bytes > 0 ? cell.changedBytes / cell.bytes : 0;
                  return (
                    <td
                      key={k}
                      data-row={row}
                      data-kind={k}
                      data-changed={share.toFixed(2)}
                      title={describe(row, k, cell)}
                      style={{
                        background: moved
                          ? moveColor(cell.relativeL2 ?? 0, maxL2)
                          : shareColor(share),
                      }}
                      onMouseEnter={() => setPointed(describe(row, k, cell))}
                      onMouseLeave={() => setPointed(undefined)}
                      onClick={() => onPick?.(cell.tensors)}
                    />
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="muted" data-testid="layer-map-caption">
        {pointed ?? 'Point at a cell to see its tensors; click it to find them in the table.'}
      </p>
    </section>
  );
}
