import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { useState } from 'react';
import { tagNameProblem } from '../../../shared/names';
import type { VersionSummary } from '../../../shared/types';
import { byteTicks, bytes, dedup, tickBytes, when } from '../format';
import { useApp } from '../store';
import { Maintenance } from './Maintenance';
import { PushPanel } from './PushPanel';

/** The bytes chart's bars, in order. */
const SERIES = [
  { dataKey: 'logical', name: 'logical', fill: '#8aa4f8' },
  { dataKey: 'stored', name: 'stored (new chunks)', fill: '#f2b34b' },
  { dataKey: 'compressed', name: 'stored (compressed)', fill: '#4bb38a' },
  { dataKey: 'manifests', name: 'manifests', fill: '#9aa0a6' },
] as const;

export function ModelView() {
  const { model, versions, show, removeVersion, fresh } = useApp();
  if (!model) return <p className="muted pad">Choose a model on the left, or create one.</p>;
  const chart = (versions ?? []).map((v) => ({
    name: v.label,
    logical: v.stats.logicalBytes,
    stored: v.stats.newBytes,
    // Versions pushed before compression existed stored their new chunks as they are.
    compressed: v.stats.storedBytes ?? v.stats.newBytes,
    manifests: v.stats.metadataBytes,
  }));
  const ticks = byteTicks(Math.max(0, ...chart.map((c) => c.logical)));
  // A compressed bar only where some version stored its new chunks in fewer bytes.
  const compressed = chart.some((c) => c.compressed < c.stored);
  const bars = SERIES.filter((b) => b.dataKey !== 'compressed' || compressed);
  return (
    <div className="model-view">
      <h2>{model}</h2>
      <PushPanel model={model} />
      {versions === undefined && <p className="muted">Loading versions…</p>}
      {versions?.length === 0 && (
        <p className="muted">No versions yet: drop a model folder above to make v1.</p>
      )}
      {versions && versions.length > 0 && (
        <>
          <section className="panel" aria-label="Logical and stored bytes">
            <h3>Logical vs stored bytes</h3>
            <div style={{ height: 180 }}>
              <ResponsiveContainer>
                <BarChart data={chart}>
                  <CartesianGrid strokeDasharray="3 3" vertical={false} />
                  <XAxis dataKey="name" />
                  <YAxis
                    ticks={ticks}
                    domain={[0, ticks.at(-1)!]}
                    interval={0}
                    tickFormatter={tickBytes}
                    width={72}
                  />
                  <Tooltip formatter={(v) => bytes(Number(v))} />
                  {/* In the bars' order (recharts sorts a legend by name otherwise). */}
                  <Legend
                    itemSorter={(item) => bars.findIndex((b) => b.dataKey === item.dataKey)}
                  />
                  {bars.map((b) => (
                    <Bar key={b.dataKey} {...b} isAnimationActive={false} />
                  ))}
                </BarChart>
              </ResponsiveContainer>
            </div>
          </section>
          <section className="panel" aria-label="Versions">
            <h3>Versions</h3>
            <ol className="timeline" data-testid="timeline">
              {[...versions].reverse().map((v, i, all) => (
                <li key={v.id}>
                  <div>
                    <strong>{v.label}</strong> <code>{v.shortId}</code>{' '}
                    {fresh[v.id] && (
                      <span className="pill fresh" data-testid="fresh-version">
                        new from {v.author}
                      </span>
                    )}{' '}
                    <span className="muted">
                      {when(v.createdAt)} · {v.author}
                    </span>
                    <Tags model={model} version={v} />
                    {v.message && <p>{v.message}</p>}
                  </div>
                  <div className="figures">
                    <span>{bytes(v.stats.logicalBytes)}</span>
                    <span>new {bytes(v.stats.newBytes)}</span>
                    {v.stats.storedBytes !== undefined &&
                      v.stats.storedBytes < v.stats.newBytes && (
                        <span data-testid="stored-compressed">
                          stored {bytes(v.stats.storedBytes)} compressed
                        </span>
                      )}
                    <span>{dedup(v.dedupRatio)}</span>
                  </div>
                  <div className="actions">
                    <button
                      type="button"
                      onClick={() => show({ kind: 'report', selector: `${model}@${v.label}` })}
                    >
                      Report
                    </button>
                    <button type="button" onClick={() => void removeVersion(`${model}@${v.label}`)}>
                      Remove
                    </button>
                    {all[i + 1] && (
                      <button
                        type="button"
                        onClick={() =>
                          show({
                            kind: 'diff',
                            from: `${model}@${all[i + 1]!.label}`,
                            to: `${model}@${v.label}`,
                          })
                        }
                      >
                        Diff with {all[i + 1]!.label}
                      </button>
                    )}
                  </div>
                </li>
              ))}
            </ol>
          </section>
          <Maintenance model={model} versions={versions} />
        </>
      )}
    </div>
  );
}

/** A version's tags, each removable, and a field to point a tag (new or moved) at it. */
function Tags({ model, version }: { model: string; version: VersionSummary }) {
  const { setTag, deleteTag } = useApp();
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState('');
  const problem = name ? tagNameProblem(name) : null;
  return (
    <span className="tags" data-testid={`tags-${version.label}`}>
      {version.tags.map((tag) => (
        <span key={tag} className="pill tag">
          {tag}
          <button
            type="button"
            className="plain"
            aria-label={`Delete tag ${tag}`}
            onClick={() => void deleteTag(model, tag)}
          >
            ×
          </button>
        </span>
      ))}
      {editing ? (
        <form
          className="tag-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!name || problem) return;
            setEditing(false);
            setName('');
            void setTag(`${model}@${version.label}`, name);
          }}
        >
          <input
            aria-label={`Tag name for ${version.label}`}
            placeholder="prod, candidate…"
            autoFocus
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
          <button type="submit" disabled={!name || problem !== null}>
            Set tag
          </button>
          <button type="button" className="link" onClick={() => setEditing(false)}>
            cancel
          </button>
          {problem && (
            <span className="hint error" data-testid="tag-problem">
              {problem}
            </span>
          )}
        </form>
      ) : (
        <button
          type="button"
          className="link"
          aria-label={`Tag ${version.label}`}
          onClick={() => setEditing(true)}
        >
          + tag
        </button>
      )}
    </span>
  );
}
