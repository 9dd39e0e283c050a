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
import { byteTicks, bytes, dedup, tickBytes, when } from '../format';
import { useApp } from '../store';
import { Maintenance } from './Maintenance';
import { PushPanel } from './PushPanel';

export function ModelView() {
  const { model, versions, show, removeVersion } = useApp();
  if (!model) return <p className="muted pad">Choose a model on the left, or create one.</p>;
  const chart = (versions ?? []).map((v) => ({
    name: v.label,
    logical: v.stats.logicalBytes,
    stored: v.stats.newBytes,
    manifests: v.stats.metadataBytes,
  }));
  const ticks = byteTicks(Math.max(0, ...chart.map((c) => c.logical)));
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
                  <Legend />
                  <Bar dataKey="logical" name="logical" fill="#8aa4f8" isAnimationActive={false} />
                  <Bar
                    dataKey="stored"
                    name="stored (new chunks)"
                    fill="#f2b34b"
                    isAnimationActive={false}
                  />
                  <Bar
                    dataKey="manifests"
                    name="manifests"
                    fill="#9aa0a6"
                    isAnimationActive={false}
                  />
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
                    <span className="muted">
                      {when(v.createdAt)} · {v.author}
                    </span>
                    {v.message && <p>{v.message}</p>}
                  </div>
                  <div className="figures">
                    <span>{bytes(v.stats.logicalBytes)}</span>
                    <span>new {bytes(v.stats.newBytes)}</span>
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
