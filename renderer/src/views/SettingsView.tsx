import { useEffect, useState } from 'react';
import type { ConnectionTest, Settings, SettingsInput } from '../../../shared/types';
import { api } from '../api';
import { useApp } from '../store';

const toInput = (s: Settings): SettingsInput => ({
  repository: s.repository,
  s3Endpoint: s.s3Endpoint,
  s3Region: s.s3Region,
  s3AccessKeyId: s.s3AccessKeyId,
  redisUrl: s.redisUrl,
  uploadConcurrency: s.uploadConcurrency,
  filesCache: s.filesCache,
  retryForSeconds: s.retryForSeconds,
});

/** Where each setting comes from where settings are read from the environment (browser mode). */
const SOURCE: Record<keyof SettingsInput, string> = {
  repository: 'from TV_REPO or tv --repo',
  s3Endpoint: 'from AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL)',
  s3Region: 'from AWS_REGION (or AWS_DEFAULT_REGION)',
  s3AccessKeyId: 'from AWS_ACCESS_KEY_ID (or the AWS credential chain)',
  s3SecretAccessKey: 'from AWS_SECRET_ACCESS_KEY (or the AWS credential chain)',
  redisUrl: 'from TV_REDIS_URL or tv --redis',
  redisPassword: 'from the password in TV_REDIS_URL',
  uploadConcurrency: 'fixed in browser mode; the desktop app can change it',
  retryForSeconds: 'from tv --retry-for (default 10 minutes)',
  filesCache: 'on in browser mode; tv push --no-cache reads every file',
};

/** A setting shown, not edited: its value and the environment variable it comes from. */
function ReadOnly({ label, value, from }: { label: string; value: string; from: string }) {
  return (
    <div className="readonly-field" data-testid="readonly-setting">
      <span className="label">{label}</span>
      <code>{value === '' ? '(not set)' : value}</code>
      <span className="muted">{from}</span>
    </div>
  );
}

export function SettingsView() {
  const notify = useApp((s) => s.notify);
  const [settings, setSettings] = useState<Settings>();
  const [form, setForm] = useState<SettingsInput>();
  const [error, setError] = useState<string>();
  const [tests, setTests] = useState<Partial<Record<'s3' | 'redis', ConnectionTest | 'running'>>>(
    {},
  );

  useEffect(() => {
    api.getSettings().then(
      (s) => {
        setSettings(s);
        setForm(toInput(s));
      },
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
    );
  }, []);

  if (error)
    return (
      <p role="alert" className="error pad">
        {error}
      </p>
    );
  if (!settings || !form) return <p className="muted pad">Loading settings…</p>;
  const field = (key: keyof SettingsInput, label: string, props: Record<string, unknown> = {}) =>
    !settings.editable ? (
      <ReadOnly label={label} value={String(form[key] ?? '')} from={SOURCE[key]} />
    ) : (
      <label>
        <span>{label}</span>
        <input
          value={String(form[key] ?? '')}
          disabled={!settings.editable}
          onChange={(e) =>
            setForm({
              ...form,
              [key]:
                key === 'uploadConcurrency' || key === 'retryForSeconds'
                  ? Number(e.target.value)
                  : e.target.value,
            })
          }
          {...props}
        />
      </label>
    );
  const test = async (target: 's3' | 'redis') => {
    setTests({ ...tests, [target]: 'running' });
    const result = await api.testConnection(target, form).catch((e: unknown): ConnectionTest => ({
      target,
      ok: false,
      message: String(e),
      latencyMs: null,
    }));
    setTests((t) => ({ ...t, [target]: result }));
  };
  const shown = (target: 's3' | 'redis') => {
    const t = tests[target];
    if (!t) return null;
    if (t === 'running') return <span className="muted">testing…</span>;
    return (
      <span className={t.ok ? 'ok' : 'error'} data-testid={`test-${target}`}>
        {t.ok ? `✓ ${t.message} (${t.latencyMs} ms)` : `✗ ${t.message}`}
      </span>
    );
  };
  return (
    <form
      className="settings"
      onSubmit={(e) => {
        e.preventDefault();
        api.saveSettings(form).then(
          (s) => {
            setSettings(s);
            notify('ok', 'Settings saved: the repository reopens with them');
          },
          (err: unknown) => notify('error', err instanceof Error ? err.message : String(err)),
        );
      }}
    >
      <h2>Settings</h2>
      {!settings.editable && (
        <p className="muted" data-testid="settings-readonly">
          Read only: in browser mode, settings come from the environment of `tv serve` (each below
          names its variable). Change them there and restart `tv serve`; the connection tests still
          work.
        </p>
      )}
      <section className="panel">
        <h3>Repository</h3>
        {field('repository', 'Location (a folder or s3://bucket/prefix; empty: your data folder)')}
        {field('s3Endpoint', 'S3 endpoint (empty: AWS)')}
        {field('s3Region', 'S3 region')}
        {field('s3AccessKeyId', 'Access key id')}
        {settings.editable ? (
          <label>
            <span>
              Secret access key {settings.s3SecretAccessKeySet ? '(set; leave empty to keep)' : ''}
            </span>
            <input
              type="password"
              autoComplete="off"
              onChange={(e) => setForm({ ...form, s3SecretAccessKey: e.target.value || undefined })}
            />
          </label>
        ) : (
          <ReadOnly
            label="Secret access key"
            value={settings.s3SecretAccessKeySet ? 'set (not shown)' : ''}
            from={SOURCE.s3SecretAccessKey}
          />
        )}
        <p>
          {form.repository?.startsWith('s3://') ? (
            <>
              <button type="button" onClick={() => void test('s3')}>
                Test S3 connection
              </button>{' '}
              {shown('s3')}
            </>
          ) : (
            <span className="muted" data-testid="s3-test-na">
              The S3 settings apply to an s3://bucket/prefix location; this repository is{' '}
              {form.repository ? 'a folder' : 'your data folder'}.
            </span>
          )}
        </p>
      </section>
      <section className="panel">
        <h3>Redis cache</h3>
        {field(
          'redisUrl',
          'Redis URL (redis://host:port, or redis+cluster://host:port,host:port for a Redis Cluster; rediss:// for TLS; empty: no cache)',
        )}
        {settings.editable ? (
          <label>
            <span>Password {settings.redisPasswordSet ? '(set; leave empty to keep)' : ''}</span>
            <input
              type="password"
              autoComplete="off"
              onChange={(e) => setForm({ ...form, redisPassword: e.target.value || undefined })}
            />
          </label>
        ) : (
          <ReadOnly
            label="Password"
            value={settings.redisPasswordSet ? 'set (not shown)' : ''}
            from={SOURCE.redisPassword}
          />
        )}
        <p>
          <button type="button" onClick={() => void test('redis')}>
            Test Redis connection
          </button>{' '}
          {shown('redis')}
        </p>
      </section>
      <section className="panel">
        <h3>Performance</h3>
        {field('uploadConcurrency', 'Uploads in flight', { type: 'number', min: 1, max: 1024 })}
        {settings.editable ? (
          <label className="check">
            <input
              type="checkbox"
              data-testid="files-cache"
              checked={form.filesCache ?? true}
              onChange={(e) => setForm({ ...form, filesCache: e.target.checked })}
            />{' '}
            <span>
              Files cache: a push does not read files unchanged since the last push from this
              machine (their size, times and inode say so). Off: every file is read.
            </span>
          </label>
        ) : (
          <ReadOnly
            label="Files cache"
            value={settings.filesCache ? 'on' : 'off'}
            from={SOURCE.filesCache}
          />
        )}
        {field(
          'retryForSeconds',
          'Retry a request S3 throttles for up to (seconds; tv --retry-for)',
          { type: 'number', min: 1, max: 86400 },
        )}
      </section>
      {settings.editable && <button type="submit">Save settings</button>}
    </form>
  );
}
