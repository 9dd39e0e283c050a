import { bytes } from '../format';
import { useApp } from '../store';
import { FormatBadge, MetadataTable, TensorTable } from './ModelTables';

export function DiffView({ from, to }: { from: string; to: string }) {
  const { diff, versions, model, show } = useApp();
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
  return (
    <div className="diff" data-testid="diff">
      <h2>
        Compare {picker(from, (v) => show({ kind: 'diff', from: v, to }), 'From version')} with{' '}
        {picker(to, (v) => show({ kind: 'diff', from, to: v }), 'To version')}
      </h2>
      {!d?.data && !d?.error && <p className="muted">Comparing…</p>}
      {d?.error && (
        <p role="alert" className="error">
          {d.error}
        </p>
      )}
      {d?.data && (
        <>
          <p>{bytes(d.data.bytesChanged)} changed</p>
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
              {d.data.files.map((f) => (
                <tr key={f.path} className={f.status}>
                  <td>
                    {f.path} <FormatBadge format={f.format} />
                  </td>
                  <td>{f.status}</td>
                  <td className="num">{bytes(f.bytesChanged)}</td>
                  <td className="num">{bytes(f.sizeAfter ?? f.sizeBefore ?? 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {d.data.files
            .filter((f) => f.tensors || f.note || f.metadata)
            .map((f) => (
              <section key={f.path} className="panel" data-testid="diff-file">
                <h3>
                  {f.path} <FormatBadge format={f.format} />
                </h3>
                {f.note && <p className="muted">{f.note}</p>}
                {f.tensors && <TensorTable tensors={f.tensors} />}
                {f.metadata && <MetadataTable metadata={f.metadata} />}
              </section>
            ))}
        </>
      )}
    </div>
  );
}
