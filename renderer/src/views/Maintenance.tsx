import { useEffect, useState } from 'react';
import type {
  RestoreProgress,
  RestoreResult,
  RestoreTarget,
  VerifyResult,
  VersionSummary,
} from '../../../shared/types';
import { api, bridge } from '../api';
import { bytes, count, percent } from '../format';
import { useApp } from '../store';

/** Restore a version to a folder, and verify the model, from its page. */
export function Maintenance({ model, versions }: { model: string; versions: VersionSummary[] }) {
  const notify = useApp((s) => s.notify);
  const latest = versions.at(-1)?.label ?? '';
  const [which, setWhich] = useState(latest);
  const [folder, setFolder] = useState('');
  const [restoring, setRestoring] = useState<{
    progress?: RestoreProgress;
    result?: RestoreResult;
    error?: string;
    running: boolean;
  }>();
  const [verify, setVerify] = useState<VerifyResult | 'running'>();
  const [target, setTarget] = useState<RestoreTarget>();
  const selector = `${model}@${which || latest}`;

  // The absolute folder the restore will write, checked by the engine as the path is typed.
  useEffect(() => {
    if (!folder) return setTarget(undefined);
    let current = true;
    const timer = setTimeout(
      () =>
        void api.restoreTarget(folder).then(
          (t) => current && setTarget(t),
          () => {},
        ),
      150,
    );
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [folder, restoring?.result]);

  useEffect(
    () =>
      bridge.on(
        'restoreProgress',
        (e) =>
          e.selector === selector &&
          setRestoring((r) => (r?.running ? { ...r, progress: e.progress } : r)),
      ),
    [selector],
  );

  const restore = async () => {
    setRestoring({ running: true });
    try {
      const result = await api.pull(selector, folder);
      setRestoring({ running: false, result });
      notify(
        'ok',
        `${selector} restored: ${count(result.files, 'file')}, ${bytes(result.bytes)} in ${result.destination}`,
      );
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      setRestoring({ running: false, error });
      notify('error', `Restore failed: ${error}`);
    }
  };

  return (
    <section className="panel maintenance" aria-label="Restore and verify">
      <h3>Restore a version</h3>
      <form
        className="push-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (folder && target?.path && !target.problem && !restoring?.running) void restore();
        }}
      >
        <select
          aria-label="Version to restore"
          value={which || latest}
          onChange={(e) => setWhich(e.target.value)}
        >
          {[...versions].reverse().map((v) => (
            <option key={v.id} value={v.label}>
              {v.label}
            </option>
          ))}
        </select>
        <input
          aria-label="Destination folder"
          placeholder="a full path to an empty or new folder, e.g. ~/restored/llama-v2"
          value={folder}
          onChange={(e) => setFolder(e.target.value)}
        />
        {bridge.chooseFolder && (
          <button
            type="button"
            onClick={() =>
              void bridge.chooseFolder!().then((chosen) => chosen && setFolder(chosen))
            }
          >
            Choose folder…
          </button>
        )}
        <button
          type="submit"
          disabled={
            !folder ||
            !target?.path ||
            target.input !== folder ||
            target.problem !== null ||
            restoring?.running
          }
        >
          Restore
        </button>
      </form>
      {folder && target?.input === folder && restoring?.result?.destination !== target.path && (
        <p
          className={target.problem ? 'error' : 'muted'}
          data-testid="restore-target"
          aria-live="polite"
        >
          {target.problem ??
            `Writes ${selector} into ${target.path} (${target.state === 'new' ? 'a new folder' : 'an empty folder'}).`}
        </p>
      )}
      {restoring?.running && (
        <div className="progress">
          <div className="bar">
            <div
              style={{
                width: restoring.progress
                  ? percent(restoring.progress.bytesWritten, restoring.progress.totalBytes)
                  : '0%',
              }}
            />
          </div>
          {restoring.progress && (
            <p>
              {bytes(restoring.progress.bytesWritten)} of {bytes(restoring.progress.totalBytes)} ·{' '}
              {restoring.progress.mbps} MB/s
            </p>
          )}
        </div>
      )}
      {restoring?.result && (
        <p data-testid="restore-done">
          {count(restoring.result.files, 'file')}, {bytes(restoring.result.bytes)} written to{' '}
          {restoring.result.destination}
        </p>
      )}
      {restoring?.error && <p className="error">{restoring.error}</p>}

      <h3>Verify</h3>
      <p>
        <button
          type="button"
          disabled={verify === 'running'}
          onClick={() => {
            setVerify('running');
            api.verify({ selector: model }).then(setVerify, (err: unknown) => {
              setVerify(undefined);
              notify('error', err instanceof Error ? err.message : String(err));
            });
          }}
        >
          Verify {model}
        </button>{' '}
        <span className="muted">
          checks that every object its versions need is in the storage backend
        </span>
      </p>
      {verify === 'running' && <p className="muted">Verifying…</p>}
      {verify && verify !== 'running' && (
        <div data-testid="verify-result">
          {verify.ok ? (
            <p className="ok">
              ✓ {count(verify.versionsChecked, 'version')}, {count(verify.objectsChecked, 'object')}{' '}
              present
            </p>
          ) : (
            <>
              <p className="error">
                ✗ {count(verify.damaged.length, 'object')} missing or corrupt in{' '}
                {count(verify.damagedVersions.length, 'version')}
              </p>
              <ul>
                {verify.damagedVersions.map((v) => (
                  <li key={v.id}>
                    {v.version}: {v.files.join(', ') || 'version record'}
                  </li>
                ))}
              </ul>
            </>
          )}
          {verify.staleCacheKeysRemoved > 0 && (
            <p className="muted">
              Removed {count(verify.staleCacheKeysRemoved, 'stale cache key')}.
            </p>
          )}
        </div>
      )}
    </section>
  );
}
