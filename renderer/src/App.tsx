import { useEffect } from 'react';
import { useAppStore } from './store';

export function App() {
  const { info, error, load } = useAppStore();
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <div className="app">
      <header className="titlebar">
        <h1>TensorVault</h1>
        {info && (
          <span className="muted" data-testid="app-version">
            v{info.version} · {info.mode}
          </span>
        )}
      </header>
      <main className="content">
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        {!info && !error && <p className="muted">Connecting…</p>}
        {info && (
          <p data-testid="repository">
            Repository: <code>{info.repository}</code>
          </p>
        )}
      </main>
    </div>
  );
}
