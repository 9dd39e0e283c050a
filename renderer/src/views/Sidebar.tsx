import { useState } from 'react';
import { useApp } from '../store';
import { modelNameProblem } from '../../../shared/names';
import { count } from '../format';

export function Sidebar() {
  const { models, model, selectModel, show, view } = useApp();
  const [query, setQuery] = useState('');
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState('');
  const valid = modelNameProblem(name) === null;
  const existing = models?.find((m) => m.name === name);
  const shown = (models ?? []).filter((m) => m.name.toLowerCase().includes(query.toLowerCase()));

  return (
    <nav className="sidebar" aria-label="Models">
      <div className="sidebar-head">
        <input
          aria-label="Search models"
          placeholder="Search"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <button type="button" onClick={() => setCreating(!creating)}>
          New model
        </button>
      </div>
      {creating && (
        <form
          className="new-model"
          onSubmit={(e) => {
            e.preventDefault();
            if (!valid || existing) return;
            setCreating(false);
            setName('');
            void selectModel(name);
          }}
        >
          <input
            aria-label="Model name"
            autoFocus
            placeholder="model-name"
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
          <button type="submit" disabled={!valid || existing !== undefined}>
            Create
          </button>
          {name && !valid && (
            <p className="hint error">
              Letters, digits, ".", "_" or "-"; starting with a letter or digit.
            </p>
          )}
          {existing && (
            <p className="hint" data-testid="model-exists">
              A model named {existing.name} exists already ({count(existing.versions, 'version')}
              ).{' '}
              <button
                type="button"
                className="link"
                onClick={() => {
                  setCreating(false);
                  setName('');
                  void selectModel(existing.name);
                }}
              >
                Open {existing.name}
              </button>
            </p>
          )}
        </form>
      )}
      {models === undefined && <p className="muted pad">Loading…</p>}
      {models?.length === 0 && !creating && (
        <p className="muted pad">No models yet. Create one and drop a model folder on it.</p>
      )}
      <ul>
        {shown.map((m) => (
          <li key={m.name}>
            <button
              type="button"
              className={m.name === model && view.kind !== 'cache' ? 'active' : ''}
              onClick={() => void selectModel(m.name)}
            >
              <span>{m.name}</span>
              <span className="muted">{count(m.versions, 'version')}</span>
            </button>
          </li>
        ))}
        {model && !models?.some((m) => m.name === model) && (
          <li>
            <button type="button" className="active">
              <span>{model}</span>
              <span className="muted">new</span>
            </button>
          </li>
        )}
      </ul>
      <div className="sidebar-foot">
        <button
          type="button"
          className={view.kind === 'cache' ? 'active' : ''}
          onClick={() => show({ kind: 'cache' })}
        >
          Cache health
        </button>
        <button
          type="button"
          className={view.kind === 'settings' ? 'active' : ''}
          onClick={() => show({ kind: 'settings' })}
        >
          Settings
        </button>
      </div>
    </nav>
  );
}
