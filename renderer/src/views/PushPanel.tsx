import { useRef, useState } from 'react';
import { fromDrop, fromInput, updateTargets } from '../drop';
import { bytes, count, percent, requests, usd } from '../format';
import { useApp } from '../store';

export function PushPanel({ model }: { model: string }) {
  const { push, startPush, cancelPush, picked: files, pick, versions } = useApp();
  const [message, setMessage] = useState('');
  const [checkEveryChunk, setCheckEveryChunk] = useState(false);
  const [over, setOver] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  const running = push?.status === 'running';
  const p = push?.model === model ? push.progress : null;

  const total = files.reduce((n, f) => n + f.file.size, 0);

  return (
    <section className="panel push" aria-label="Add a version">
      <div
        className={`dropzone${over ? ' over' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          e.stopPropagation();
          setOver(false);
          void fromDrop(e.dataTransfer).then(pick);
        }}
      >
        <p>
          Drop a model folder or files here, or{' '}
          <button type="button" className="link" onClick={() => fileInput.current?.click()}>
            choose files
          </button>{' '}
          /{' '}
          <button type="button" className="link" onClick={() => folderInput.current?.click()}>
            a folder
          </button>
        </p>
        <input
          ref={fileInput}
          data-testid="file-input"
          type="file"
          multiple
          hidden
          onChange={(e) => {
            pick(fromInput(e.target.files));
            // Emptied, so that choosing the same files again (after a push) is a change too.
            e.target.value = '';
          }}
        />
        <input
          ref={folderInput}
          data-testid="folder-input"
          type="file"
          hidden
          {...{ webkitdirectory: '' }}
          onChange={(e) => {
            pick(fromInput(e.target.files));
            // Emptied, so that choosing the same files again (after a push) is a change too.
            e.target.value = '';
          }}
        />
        {files.length > 0 && versions !== undefined && (
          <p data-testid="push-preview">
            <PushPreview model={model} />
          </p>
        )}
        {files.length > 0 && (
          <p className="muted" data-testid="selected-files">
            {count(files.length, 'file')}, {bytes(total)}:{' '}
            {files
              .slice(0, 4)
              .map((f) => f.path)
              .join(', ')}
            {files.length > 4 ? ', …' : ''}
          </p>
        )}
      </div>
      <UpdateChoice />
      <StatusSummary />
      <form
        className="push-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (files.length === 0 || running) return;
          void startPush(model, files, message, { checkEveryChunk }).then(() => {
            setMessage('');
            setCheckEveryChunk(false);
          });
        }}
      >
        <input
          aria-label="Message"
          placeholder="What changed in this version?"
          value={message}
          onChange={(e) => setMessage(e.target.value)}
        />
        <button type="submit" disabled={files.length === 0 || running}>
          Push {model}
        </button>
        <label className="muted" title="tv push --no-cache">
          <input
            type="checkbox"
            checked={checkEveryChunk}
            onChange={(e) => setCheckEveryChunk(e.target.checked)}
          />{' '}
          Check every chunk (reads every file; stores again what a repair dropped)
        </label>
      </form>
      {push?.model === model && (push.status === 'running' || push.status === 'failed' || p) && (
        <div className="progress" data-testid="push-progress" aria-live="polite">
          <div className="bar">
            <div style={{ width: p ? percent(p.bytesHashed, p.totalBytes) : '0%' }} />
          </div>
          <p>
            {push.status === 'running'
              ? p?.phase === 'finishing'
                ? 'Writing the version…'
                : 'Pushing…'
              : `Push ${push.status}`}{' '}
            {p && push.status === 'done' && (
              // The live figures are of the bytes read; what the version reused is on the line
              // below (an update reads only its files, and would show 0% deduplicated here).
              <>
                · {bytes(p.bytesHashed)} read · {count(p.chunks, 'chunk')}
              </>
            )}
            {p && push.status !== 'done' && (
              <>
                {bytes(p.bytesHashed)} of {bytes(p.totalBytes)} · {count(p.chunks, 'chunk')} ·{' '}
                {percent(p.bytesDeduplicated, p.bytesHashed)} deduplicated · {p.mbps} MB/s
                {p.etaSeconds !== null && push.status === 'running'
                  ? ` · ${p.etaSeconds}s left`
                  : ''}
              </>
            )}
          </p>
          {push.status === 'running' && p?.throttled && (
            <p className="muted" data-testid="push-throttled">
              S3 is throttling, retrying ({p.throttledRetries} retries so far)
            </p>
          )}
          {running && (
            <button type="button" onClick={() => void cancelPush()}>
              Cancel
            </button>
          )}
          {push.status === 'done' && push.result && (
            <p data-testid="push-done">
              {push.result.identicalTo
                ? `Identical to ${push.result.identicalTo.version}: no new version written (nothing changed since it)`
                : `${push.result.version} written: new ${bytes(push.result.newBytes)}, reused ${bytes(push.result.reusedBytes)}`}{' '}
              · {requests(push.result.requests)}, {bytes(push.result.uploadedBytes)} sent
              {push.result.estimatedRequestCostUsd !== null && (
                <span className="muted" data-testid="push-cost">
                  {' '}
                  · about ${usd(push.result.estimatedRequestCostUsd)} in requests (estimate, S3
                  Standard list prices)
                </span>
              )}
            </p>
          )}
          {push.status === 'failed' && <p className="error">{push.error}</p>}
        </div>
      )}
    </section>
  );
}

/**
 * What a push of the picked files makes: a first version, a version of only these files, or (when
 * single files are to update the latest version) that version with them added or replaced.
 */
function PushPreview({ model }: { model: string }) {
  const { picked, pickKind, pushMode, versions, latestFiles } = useApp();
  const latest = versions?.at(-1);
  if (!latest)
    return (
      <>
        Pushing makes a new model, {model}: its v1, with {count(picked.length, 'file')}.
      </>
    );
  if (pickKind === 'files' && pushMode === 'update') {
    const targets = updateTargets(picked, latestFiles?.files ?? []);
    const replaced = targets.filter((t) => t.replaces).length;
    const added = targets.length - replaced;
    const changes = [
      replaced > 0 ? `${count(replaced, 'file')} replaced` : '',
      added > 0 ? `${count(added, 'file')} added` : '',
    ].filter(Boolean);
    return (
      <>
        Pushing makes a new version of {model}: {latest.label}&apos;s {count(latest.files, 'file')}{' '}
        with {changes.join(' and ')}; its other files stay as they are.
      </>
    );
  }
  const only =
    pickKind === 'files'
      ? `only ${picked.length === 1 ? 'this file' : `these ${picked.length} files`}`
      : count(picked.length, 'file');
  return (
    <>
      Pushing makes a new version of {model} with {only} (its latest, {latest.label}, has{' '}
      {count(latest.files, 'file')}).
    </>
  );
}

/**
 * Single files dropped onto a model that has versions: update them in its latest version (the
 * default), or make a version of only these files. Says where each file would go.
 */
function UpdateChoice() {
  const { picked, pickKind, pushMode, setPushMode, versions, latestFiles } = useApp();
  const latest = versions?.at(-1);
  if (pickKind !== 'files' || picked.length === 0 || !latest) return null;
  const targets = updateTargets(picked, latestFiles?.files ?? []);
  return (
    <fieldset className="choice" data-testid="push-choice">
      <label>
        <input
          type="radio"
          name="push-mode"
          checked={pushMode === 'update'}
          onChange={() => setPushMode('update')}
        />{' '}
        Update {picked.length === 1 ? 'this file' : 'these files'} in {latest.label}
      </label>
      <label>
        <input
          type="radio"
          name="push-mode"
          checked={pushMode === 'full'}
          onChange={() => setPushMode('full')}
        />{' '}
        New version of only {picked.length === 1 ? 'this file' : 'these files'}
      </label>
      {pushMode === 'update' && (
        <ul className="muted" data-testid="update-targets">
          {picked.map((f, i) => (
            <li key={f.path}>
              {f.path} → {targets[i]?.replaces ? 'replaces' : 'added as'}{' '}
              <code>{targets[i]?.path}</code>
            </li>
          ))}
        </ul>
      )}
    </fieldset>
  );
}

/** What a push of the picked files would change against the latest version, and upload. */
function StatusSummary() {
  const { status, refreshStatus, versions, picked } = useApp();
  if (!status || picked.length === 0) return null;
  const against = versions?.at(-1)?.label;
  const s = status.data;
  return (
    <div className="status" data-testid="push-status" aria-live="polite">
      {status.running && <p className="muted">Comparing with {against ?? 'the model'}…</p>}
      {!status.running && !s && !status.error && (
        <p>
          <button type="button" onClick={() => void refreshStatus(true)}>
            Compare with {against} (sends {bytes(picked.reduce((n, f) => n + f.file.size, 0))})
          </button>
        </p>
      )}
      {status.error && <p className="error">{status.error}</p>}
      {s && s.identical && <p>Identical to {s.against?.version}: a push would write no version.</p>}
      {s && !s.identical && (
        <>
          <p>
            {s.against ? `Against ${s.against.version}: ` : 'A first version: '}
            {s.modified} modified · {s.added} added · {s.removed} removed · {s.unchanged} unchanged
            — a push would upload <strong>{bytes(s.newBytes)}</strong>
          </p>
          <ul className="changes">
            {s.files
              .filter((f) => f.status !== 'unchanged')
              .slice(0, 8)
              .map((f) => (
                <li key={f.path} className={f.status}>
                  <span className="tag">{f.status}</span> {f.path}{' '}
                  <span className="muted">
                    {f.status === 'removed' ? bytes(f.sizeBefore ?? 0) : `new ${bytes(f.newBytes)}`}
                  </span>
                </li>
              ))}
          </ul>
        </>
      )}
      {s && s.filesFromCache > 0 && (
        <p className="muted">
          {count(s.filesFromCache, 'file')} ({bytes(s.bytesFromCache)}) unchanged since the last
          push from here: not read
        </p>
      )}
    </div>
  );
}
