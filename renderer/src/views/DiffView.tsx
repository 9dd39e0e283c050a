import { useState } from 'react';
import { bytes, utc } from '../format';
import { useApp } from '../store';
import { LayerMap } from './LayerMap';
import { FormatBadge, MetadataTable, TensorTable, useMeasured } from './ModelTables';
import { Computing } from './ReportView';
import { TextDiffView } from './TextDiff';

export function DiffView({ from, to }: { from: string; to: string }) {
  const { diff, versions, model, show } = useApp();
  const [picked, setPicked] = useState<string[]>();
  const labels = (versions ?? []).map((v) => `${model}@${v.label}`);
  const picker = (value: string, onChange: (v: string) => void, label: string) => (
    <select aria-label={label} value={value} onChange={(e) => onChange(e.target.value)}>
      {(labels.includes(value) ? labels : [value, ...labels]).map((l) => (
        <option key={l} value={l}>
          {l}
        </option>
      ))}
    </select>
  );
  const d = diff?.key === `${from}..${to}` ? diff : undefined;
  const measured = useMeasured(from, to, d?.data?.files ?? []);
  const files = measured.files;
  return (
    <div className="diff" data-testid="diff">
      <h2>
        Compare {picker(from, (v) => show({ kind: 'diff', from: v, to }), 'From version')} with{' '}
        {picker(to, (v) => show({ kind: 'diff', from, to: v }), 'To version')}
      </h2>
      {!d?.data && !d?.error && <Computing what="the diff" progress={d?.progress} />}
      {d?.error && (
        <p role="alert" className="error">
          {d.error}
        </p>
      )}
      {d?.data && (
        <>
          <p>
            {bytes(d.data.bytesChanged)} changed
            {d.data.cached && (
              <span className="muted" data-testid="diff-cached">
                {' '}
                · computed {utc(d.data.computedAt)}, kept on this machine
              </span>
            )}
          </p>
          <table data-testid="diff-files">
            <thead>
              <tr>
                <th>file</th>
                <th>status</th>
                <th className="num">changed</th>
                <th className="num">size</th>
              </tr>
            </thead>
            <tbody>
              {files.map((f) => (
                <tr key={f.path} className={f.status}>
                  <td>
                    {f.path} <FormatBadge format={f.format} />
                  </td>
                  <td>
                    {f.status}
                    {f.text && (
                      <span className="muted">
                        {' '}
                        ·{' '}
                        {f.text.kind === 'json'
                          ? `${(f.text.keys?.length ?? 0) + (f.text.truncated ?? 0)} keys`
                          : 'text, shown below'}
                      </span>
                    )}
                  </td>
                  <td className="num">{bytes(f.bytesChanged)}</td>
                  <td className="num">{bytes(f.sizeAfter ?? f.sizeBefore ?? 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <LayerMap
            tensors={files.flatMap((f) => f.tensors ?? [])}
            kind="diff"
            onPick={setPicked}
          />
          {files
            .filter((f) => f.tensors || f.note || f.metadata || f.text)
            .map((f) => {
              const names = new Set((f.tensors ?? []).map((t) => t.name));
              const mine = picked?.filter((n) => names.has(n));
              const measure = measured.measure(f.path);
              return (
                <section key={f.path} className="panel" data-testid="diff-file">
                  <h3>
                    {f.path} <FormatBadge format={f.format} />
                  </h3>
                  {f.note && <p className="muted">{f.note}</p>}
                  {f.text && <TextDiffView text={f.text} />}
                  {f.tensors && (!picked || (mine?.length ?? 0) > 0) && (
                    <TensorTable
                      tensors={f.tensors}
                      {...(measure ? { measure } : {})}
                      {...(mine ? { picked: mine, onClearPicked: () => setPicked(undefined) } : {})}
                    />
                  )}
                  {f.metadata && <MetadataTable metadata={f.metadata} />}
                </section>
              );
            })}
        </>
      )}
    </div>
  );
}
