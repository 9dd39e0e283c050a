import type { TextDiff } from '../../../shared/types';
import { count } from '../format';

/** A small text file's changes: JSON keys with their old and new values, or a unified line diff. */
export function TextDiffView({ text }: { text: TextDiff }) {
  const more = text.truncated ? (
    <p className="muted">{count(text.truncated, 'more change')} not shown.</p>
  ) : null;
  if (text.kind === 'json') {
    const keys = text.keys ?? [];
    return (
      <div className="text-diff" data-testid="text-diff">
        <h4>{count(keys.length + (text.truncated ?? 0), 'key')} changed</h4>
        {keys.length === 0 ? (
          <p className="muted">Same keys and values: only formatting or key order changed.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>key</th>
                <th>status</th>
                <th>value</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.key} className={k.status}>
                  <td>
                    <code>{k.key}</code>
                  </td>
                  <td>{k.status}</td>
                  <td className="value">
                    {k.status === 'modified' ? (
                      <>
                        <del>{k.before}</del> → <ins>{k.value}</ins>
                      </>
                    ) : k.status === 'removed' ? (
                      <del>{k.before}</del>
                    ) : (
                      <ins>{k.value}</ins>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {more}
      </div>
    );
  }
  return (
    <div className="text-diff" data-testid="text-diff">
      <pre className="unified">
        {(text.hunks ?? []).map((h) => (
          <span key={`${h.oldStart}-${h.newStart}`}>
            <span className="hunk">{`@@ line ${h.oldStart} → ${h.newStart} @@\n`}</span>
            {h.lines.map((line, i) => (
              <span
                key={i}
                className={line[0] === '+' ? 'add' : line[0] === '-' ? 'del' : undefined}
              >
                {line}
                {'\n'}
              </span>
            ))}
          </span>
        ))}
      </pre>
      {more}
    </div>
  );
}
