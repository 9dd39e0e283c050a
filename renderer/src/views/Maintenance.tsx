import { useEffect, useState } from 'react';
import type {
  PackRepairResult,
  RestoreProgress,
  RestoreResult,
  RestoreTarget,
  VerifyResult,
  VersionFiles,
  VersionSummary,
} from '../../../shared/types';
import { api, bridge } from '../api';
import { bytes, count, percent, restored } from '../format';
import { useApp } from '../store';

/** Restore a version to a folder, and verify the model, from its page. */
/** What a restore does with the destination folder, as the engine found it. */
const TARGET_STATES: Record<NonNullable<RestoreTarget['state']>, string> = {
  new: 'a new folder',
  empty: 'an empty folder',
  files:
    "a folder holding files: the version's files already there are checked and kept where they match, replaced where they differ; other files are left alone",
};

export function Maintenance({ model, versions }: { model: string; versions: VersionSummary[] }) {
  const notify = useApp((s) => s.notify);
  const latest = versions.at(-1)?.label ?? '';
  // The version picked to restore; until one is picked, the latest (as new versions land).
  const [which, setWhich] = useState('');
  const [folder, setFolder] = useState('');
  const [restoring, setRestoring] = useState<{
    progress?: RestoreProgress;
    result?: RestoreResult;
    error?: string;
    running: boolean;
  }>();
  const [verify, setVerify] = useState<VerifyResult | 'running'>();
  const [full, setFull] = useState(false);
  const [repair, setRepair] = useState<PackRepairResult | 'running'>();
  const [target, setTarget] = useState<RestoreTarget>();
  const selector = `${model}@${which || latest}`;
  // The version's files, all ticked at first: untick to restore only some.
  const [files, setFiles] = useState<VersionFiles>();
  const [unticked, setUnticked] = useState<Set<string>>(new Set());
  useEffect(() => {
    let current = true;
    setFiles(undefined);
    setUnticked(new Set());
    api.files(selector).then(
      (f) => current && setFiles(f),
      () => {},
    );
    return () => {
      current = false;
    };
  }, [selector]);
  const ticked = files?.files.filter((f) => !unticked.has(f.path)) ?? [];
  const toggle = (path: string) => {
    const next = new Set(unticked);
    if (next.has(path)) next.delete(path);
    else next.add(path);
    setUnticked(next);
  };

  // A restore's result line stands until the next restore is changed (another version, folder or
  // files): then the preview says what that one will do.
  useEffect(() => setRestoring((r) => (r?.running ? r : undefined)), [selector, unticked, folder]);

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
      const some = files && ticked.length < files.files.length;
      const result = await api.pull(
        selector,
        folder,
        some ? { paths: ticked.map((f) => f.path) } : {},
      );
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
    <>
      <section className="panel maintenance" aria-label="Restore">
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
            placeholder="a full path, e.g. ~/restored/llama-v2 (files already there that match are kept)"
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
              restoring?.running ||
              (files !== undefined && ticked.length === 0)
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
              `Writes ${selector}${files && ticked.length < files.files.length ? ` (${ticked.length} of ${count(files.files.length, 'file')})` : ''} into ${target.path} (${TARGET_STATES[target.state ?? 'new']}).`}
          </p>
        )}
        {files && (
          <details data-testid="restore-files">
            <summary>
              {ticked.length === files.files.length
                ? `All ${count(files.files.length, 'file')}`
                : `${ticked.length} of ${count(files.files.length, 'file')}`}{' '}
              ({bytes(ticked.reduce((n, f) => n + f.size, 0))})
            </summary>
            <p>
              <button type="button" className="link" onClick={() => setUnticked(new Set())}>
                all
              </button>{' '}
              ·{' '}
              <button
                type="button"
                className="link"
                onClick={() => setUnticked(new Set(files.files.map((f) => f.path)))}
              >
                none
              </button>
            </p>
            <ul className="file-picks">
              {files.files.map((f) => (
                <li key={f.path}>
                  <label>
                    <input
                      type="checkbox"
                      checked={!unticked.has(f.path)}
                      onChange={() => toggle(f.path)}
                    />{' '}
                    {f.path}
                  </label>
                  <span className="muted">{bytes(f.size)}</span>
                </li>
              ))}
            </ul>
          </details>
        )}
        {restoring?.running && (
          <div className="progress">
            <div className="bar">
              <div
                style={{
                  width: restoring.progress
                    ? percent(
                        restoring.progress.bytesWritten + restoring.progress.bytesChecked,
                        restoring.progress.totalBytes,
                      )
                    : '0%',
                }}
              />
            </div>
            {restoring.progress && (
              <p>
                {restoring.progress.phase === 'checking' ? 'Checking what is there · ' : ''}
                {bytes(restoring.progress.bytesWritten + restoring.progress.bytesChecked)} of{' '}
                {bytes(restoring.progress.totalBytes)} · {restoring.progress.mbps} MB/s
              </p>
            )}
          </div>
        )}
        {restoring?.result && <p data-testid="restore-done">{restored(restoring.result)}</p>}
        {restoring?.error && <p className="error">{restoring.error}</p>}
      </section>
      <section className="panel maintenance" aria-label="Verify">
        <h3>Verify</h3>
        <p>
          <button
            type="button"
            disabled={verify === 'running' || repair === 'running'}
            onClick={() => {
              setVerify('running');
              setRepair(undefined);
              api.verify({ selector: model, full }).then(setVerify, (err: unknown) => {
                setVerify(undefined);
                notify('error', err instanceof Error ? err.message : String(err));
              });
            }}
          >
            Verify {model}
          </button>{' '}
          <label>
            <input type="checkbox" checked={full} onChange={(e) => setFull(e.target.checked)} />{' '}
            read every byte back and check its hash
          </label>{' '}
          <span className="muted">
            {full
              ? '(reads back all the data its versions need, as tv verify --full does)'
              : '(unticked: checks that every object its versions need is in the storage backend)'}
          </span>
        </p>
        {verify === 'running' && <p className="muted">Verifying…</p>}
        {verify && verify !== 'running' && (
          <VerifyReport
            verify={verify}
            repair={repair}
            onRepair={(packs) => {
              setRepair('running');
              api.repairPacks(packs).then(setRepair, (err: unknown) => {
                setRepair(undefined);
                notify('error', err instanceof Error ? err.message : String(err));
              });
            }}
          />
        )}
      </section>
    </>
  );
}

/** A verify's findings, and for corrupt copies in packs, the repair that drops them. */
function VerifyReport({
  verify,
  repair,
  onRepair,
}: {
  verify: VerifyResult;
  repair: PackRepairResult | 'running' | undefined;
  onRepair: (packs: string[]) => void;
}) {
  const packs = [...new Set(verify.damaged.flatMap((d) => d.corruptIn ?? []))].sort();
  return (
    <div data-testid="verify-result">
      {verify.ok ? (
        <p className="ok">
          ✓ {count(verify.versionsChecked, 'version')}, {count(verify.objectsChecked, 'object')}{' '}
          {verify.full ? 'read back and checked' : 'present'}
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
        <p className="muted">Removed {count(verify.staleCacheKeysRemoved, 'stale cache key')}.</p>
      )}
      {packs.length > 0 && repair === undefined && (
        <p>
          <button type="button" onClick={() => onRepair(packs)}>
            Drop the corrupt copies
          </button>{' '}
          <span className="muted">
            in {count(packs.length, 'pack')} ({packs.join(', ')}) from the index (tv repair packs)
          </span>
        </p>
      )}
      {repair === 'running' && <p className="muted">Checking the packs…</p>}
      {repair && repair !== 'running' && <RepairReport repair={repair} />}
    </div>
  );
}

function RepairReport({ repair }: { repair: PackRepairResult }) {
  const intact = repair.dropped.filter((d) => d.intactCopy).length;
  const files = [
    ...new Set(
      repair.toPushAgain.flatMap((o) =>
        o.neededBy.map((n) => `${n.version}: ${n.file ?? 'version record'}`),
      ),
    ),
  ];
  return (
    <div data-testid="repair-result">
      <p className={repair.problems.length > 0 ? 'error' : 'ok'}>
        Dropped {count(repair.dropped.length, 'corrupt copy', 'corrupt copies')} in{' '}
        {count(repair.packsChecked, 'pack')} checked
        {intact > 0 ? ` (${intact} with an intact copy elsewhere)` : ''}
        {repair.packsDeleted > 0 ? `; ${count(repair.packsDeleted, 'pack')} deleted` : ''}.
      </p>
      {files.length > 0 && (
        <p>
          Push these files again with “Check every chunk” ticked to store what was lost:{' '}
          {files.join(', ')}
        </p>
      )}
      {repair.problems.map((p) => (
        <p key={p} className="error">
          {p}
        </p>
      ))}
    </div>
  );
}
