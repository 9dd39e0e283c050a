import { useEffect } from 'react';
import { fromDrop } from './drop';
import { useApp } from './store';
import { CacheHealth, CacheLight } from './views/CacheHealth';
import { DiffView } from './views/DiffView';
import { ModelView } from './views/ModelView';
import { ReportView } from './views/ReportView';
import { SettingsView } from './views/SettingsView';
import { Sidebar } from './views/Sidebar';

export function App() {
  const { info, error, load, view, show, cache, notices, dismiss, model, pick } = useApp();
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <div
      className="app"
      onDragOver={(e) => e.preventDefault()}
      onDrop={(e) => {
        // Files dropped anywhere on the window go to the current model's push form.
        e.preventDefault();
        if (!model) return;
        void fromDrop(e.dataTransfer).then((files) => {
          pick(files);
          show({ kind: 'model' });
        });
      }}
    >
      <header className="titlebar">
        <h1>TensorVault</h1>
        {info && (
          <span className="muted" data-testid="app-version">
            v{info.version} · {info.mode}
          </span>
        )}
        {info && (
          <span className="muted repo" data-testid="repository" title={info.repository}>
            {info.repository}
          </span>
        )}
        <button type="button" className="plain" onClick={() => show({ kind: 'cache' })}>
          <CacheLight status={cache} />
        </button>
      </header>
      <div className="body">
        <Sidebar />
        <main className="content">
          {error && (
            <p role="alert" className="error">
              {error}
            </p>
          )}
          {!info && !error && <p className="muted">Connecting…</p>}
          {info && view.kind !== 'model' && (
            <button type="button" className="link back" onClick={() => show({ kind: 'model' })}>
              ← back to the model
            </button>
          )}
          {info && view.kind === 'model' && <ModelView />}
          {info && view.kind === 'report' && <ReportView selector={view.selector} />}
          {info && view.kind === 'diff' && <DiffView from={view.from} to={view.to} />}
          {info && view.kind === 'cache' && <CacheHealth />}
          {info && view.kind === 'settings' && <SettingsView />}
        </main>
      </div>
      <div className="notices" aria-live="polite">
        {notices.map((n) => (
          <div
            key={n.id}
            className={`notice ${n.kind}`}
            role={n.kind === 'error' ? 'alert' : 'status'}
          >
            {n.text}
            <button
              type="button"
              className="plain"
              aria-label="Dismiss"
              onClick={() => dismiss(n.id)}
            >
              ×
            </button>
          </div>
        ))}
      </div>
    </div>
  );
}
