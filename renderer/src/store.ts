import { create } from 'zustand';
import type { AppInfo } from '../../shared/contract';
import type {
  CacheStatus,
  ModelSummary,
  PushProgress,
  PushResult,
  PushStatus,
  ReportProgress,
  TensorStats,
  VersionDiff,
  VersionFiles,
  VersionReport,
  VersionSummary,
} from '../../shared/types';
import { api, bridge, isDesktop, sendFiles } from './api';
import { count, dedup } from './format';
import { updateTargets, type Pick, type Picked } from './drop';

export type View =
  | { kind: 'model' }
  | { kind: 'report'; selector: string }
  | { kind: 'diff'; from: string; to: string }
  | { kind: 'cache' }
  | { kind: 'settings' };

export interface PushState {
  id: string;
  model: string;
  progress: PushProgress | null;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  result?: PushResult;
  error?: string;
}

/** What a push of the picked files would do, as the engine answered (or is working out). */
export interface StatusState {
  /** The pick and choice it answers (a newer pick makes it stale). */
  key: string;
  id: string;
  running: boolean;
  data?: PushStatus;
  error?: string;
}

/** Files dropped onto a model with versions: an update of the latest one, or a version of their own. */
export type PushMode = 'update' | 'full';

export interface Notice {
  id: number;
  kind: 'ok' | 'info' | 'error';
  text: string;
}

interface AppState {
  info: AppInfo | undefined;
  error: string | undefined;
  models: ModelSummary[] | undefined;
  model: string | undefined;
  versions: VersionSummary[] | undefined;
  view: View;
  report:
    | { selector: string; data?: VersionReport; error?: string; progress?: ReportProgress }
    | undefined;
  diff: { key: string; data?: VersionDiff; error?: string; progress?: ReportProgress } | undefined;
  push: PushState | undefined;
  cache: CacheStatus | undefined;
  cacheHistory: CacheStatus[];
  notices: Notice[];
  /** Delta statistics measured, by `FROM..TO` and file path, then tensor name. */
  stats: Record<string, Record<string, TensorStats>>;
  /** Measurements under way or failed, by `FROM..TO` and file path. */
  measuring: Record<string, { busy: boolean; error?: string }>;
  measure(from: string, to: string, path: string, names?: string[]): Promise<void>;
  load(): Promise<void>;
  refreshModels(): Promise<void>;
  /** Opens a model's page; `keepView` picks the model without leaving the view the user is on. */
  selectModel(name: string, options?: { keepView?: boolean }): Promise<void>;
  show(view: View): void;
  loadReport(selector: string): Promise<void>;
  loadDiff(from: string, to: string): Promise<void>;
  /** Files chosen for the next push (from a picker, or dropped anywhere on the window). */
  picked: Picked[];
  pickKind: Pick['kind'];
  pushMode: PushMode;
  /** The model's latest version's files (where dropped single files would go). */
  latestFiles: VersionFiles | undefined;
  status: StatusState | undefined;
  pick(pick: Pick): void;
  setPushMode(mode: PushMode): void;
  /** Works out what a push of the picked files would do; `force` runs a big browser one too. */
  refreshStatus(force?: boolean): Promise<void>;
  /**
   * Pushes the picked files. `checkEveryChunk`: read every file and check even the chunks the
   * latest version names against the repository (tv push --no-cache): stores again what a repair
   * dropped.
   */
  startPush(
    model: string,
    files: Picked[],
    message: string,
    options?: { checkEveryChunk?: boolean },
  ): Promise<void>;
  /** Versions teammates pushed since the page opened (id -> true), shown as new. */
  fresh: Record<string, true>;
  setTag(selector: string, name: string): Promise<void>;
  deleteTag(model: string, name: string): Promise<void>;
  cancelPush(): Promise<void>;
  removeVersion(selector: string): Promise<void>;
  notify(kind: Notice['kind'], text: string): void;
  dismiss(id: number): void;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
let noticeId = 0;
const newId = (kind: string) =>
  `${kind}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
/** Versions this page pushed itself: never announced as a teammate's. */
const ownPushes = new Set<string>();
/** How often the page looks for teammates' pushes while it is visible. */
const WATCH_MS = 15_000;
/** In a browser, a status reads the files' bytes through the tunnel: automatic up to this. */
const STATUS_UPLOAD_LIMIT = 256 * 1024 * 1024;

export const useApp = create<AppState>((set, get) => ({
  info: undefined,
  error: undefined,
  models: undefined,
  model: undefined,
  versions: undefined,
  view: { kind: 'model' },
  report: undefined,
  diff: undefined,
  push: undefined,
  cache: undefined,
  cacheHistory: [],
  notices: [],
  picked: [],
  pickKind: 'folder',
  pushMode: 'update',
  latestFiles: undefined,
  status: undefined,
  fresh: {},
  stats: {},
  measuring: {},

  async measure(from, to, path, names) {
    const key = `${from}..${to}::${path}`;
    set({ measuring: { ...get().measuring, [key]: { busy: true } } });
    try {
      const result = await api.tensorStats(from, to, names ? { path, tensors: names } : { path });
      const found = { ...get().stats[key] };
      const skipped: string[] = [];
      for (const t of result.tensors) {
        if (t.stats) found[t.name] = t.stats;
        else if (t.skipped) skipped.push(`${t.name}: ${t.skipped}`);
      }
      set({
        stats: { ...get().stats, [key]: found },
        measuring: {
          ...get().measuring,
          [key]: skipped.length ? { busy: false, error: skipped.join('; ') } : { busy: false },
        },
      });
    } catch (err) {
      set({ measuring: { ...get().measuring, [key]: { busy: false, error: message(err) } } });
    }
  },

  pick({ files, kind }) {
    set({ picked: files, pickKind: kind, pushMode: 'update' });
    void get().refreshStatus();
  },

  setPushMode(mode) {
    set({ pushMode: mode });
    void get().refreshStatus();
  },

  async refreshStatus(force = false) {
    const { model, picked, status: previous } = get();
    if (previous?.running) void api.cancelPush(previous.id).catch(() => {});
    if (!model || picked.length === 0) return set({ status: undefined });
    const plan = pushPlan(get());
    const key = `${model}|${get().pushMode}|${plan.paths.join('|')}|${picked.length}`;
    const id = newId('status');
    const total = picked.reduce((n, f) => n + f.file.size, 0);
    // In a browser a status sends the bytes: past the limit it is offered, not run (PushPanel).
    if (!isDesktop && total > STATUS_UPLOAD_LIMIT && !force)
      return set({ status: { key, id, running: false } });
    set({ status: { key, id, running: true } });
    try {
      const data = await statusOf(id, model, picked, plan);
      if (get().status?.id === id) set({ status: { key, id, running: false, data } });
    } catch (err) {
      if (get().status?.id === id)
        set({ status: { key, id, running: false, error: message(err) } });
    }
  },

  async load() {
    try {
      set({ info: await api.appInfo(), error: undefined });
    } catch (err) {
      set({ error: message(err) });
      return;
    }
    bridge.on('pushProgress', ({ pushId, progress }) => {
      const push = get().push;
      if (push && push.id === pushId) set({ push: { ...push, progress } });
    });
    // A report or diff computed for the first time says how far it has got.
    bridge.on('reportProgress', ({ key, progress }) => {
      const { report, diff } = get();
      if (report && report.selector === key && !report.data)
        set({ report: { ...report, progress } });
      if (diff && diff.key === key && !diff.data) set({ diff: { ...diff, progress } });
    });
    bridge.on('cacheStatus', (cache) =>
      set({ cache, cacheHistory: [...get().cacheHistory.slice(-59), cache] }),
    );
    await get().refreshModels();
    api.cacheStatus().then(
      (cache) => set({ cache }),
      () => {},
    );
    void watchTeammates(get, set);
  },

  async refreshModels() {
    try {
      const models = await api.models();
      set({ models });
      // The first model is picked for the user, but a view they opened meanwhile stays open.
      if (!get().model && models[0]) await get().selectModel(models[0].name, { keepView: true });
    } catch (err) {
      // A new installation has no repository until the first push creates it.
      set({
        models: /no TensorVault repository/.test(message(err)) ? [] : (get().models ?? []),
        error: /no TensorVault repository/.test(message(err)) ? undefined : message(err),
      });
    }
  },

  async selectModel(name, options) {
    const same = get().model === name;
    set({
      model: name,
      ...(options?.keepView ? {} : { view: { kind: 'model' as const } }),
      ...(same ? {} : { versions: undefined, latestFiles: undefined }),
    });
    await loadVersions(get, set, name, same);
  },

  show(view) {
    set({ view });
    if (view.kind === 'report') void get().loadReport(view.selector);
    if (view.kind === 'diff') void get().loadDiff(view.from, view.to);
  },

  async loadReport(selector) {
    set({ report: { selector } });
    try {
      const data = await api.report(selector);
      if (get().report?.selector === selector) set({ report: { selector, data } });
    } catch (err) {
      set({ report: { selector, error: message(err) } });
    }
  },

  async loadDiff(from, to) {
    const key = `${from}..${to}`;
    set({ diff: { key } });
    try {
      const data = await api.diff(from, to);
      if (get().diff?.key === key) set({ diff: { key, data } });
    } catch (err) {
      set({ diff: { key, error: message(err) } });
    }
  },

  async startPush(model, files, text, choice) {
    if (get().push?.status === 'running') return;
    const running = get().status;
    if (running?.running) void api.cancelPush(running.id).catch(() => {});
    const id = newId('push');
    set({ push: { id, model, progress: null, status: 'running' }, status: undefined });
    const planned = pushPlan(get());
    const plan = choice?.checkEveryChunk
      ? { ...planned, options: { ...planned.options, noCache: true } }
      : planned;
    try {
      let result: PushResult;
      const paths =
        isDesktop && bridge.pathForFile
          ? files.map((f) => bridge.pathForFile!(f.file)).filter(Boolean)
          : [];
      if (isDesktop && paths.length === files.length) {
        result = await api.pushPaths(id, model, paths, text, plan.options);
      } else {
        const entries = files.map((f, i) => ({ path: plan.paths[i] ?? f.path, size: f.file.size }));
        const pushing = api.uploadPush(id, model, text, entries, plan.options);
        await Promise.all([
          pushing,
          sendFiles(
            id,
            files.map((f) => f.file),
          ),
        ]);
        result = await pushing;
      }
      ownPushes.add(result.id);
      set({ push: { ...get().push!, status: 'done', result }, picked: [] });
      if (result.identicalTo)
        get().notify(
          'info',
          `${model}: identical to ${result.identicalTo.version}, so no new version was written`,
        );
      else
        get().notify(
          'ok',
          `${model} ${result.version}: ${count(result.files, 'file')}, ${dedup(result.dedupRatio)}`,
        );
      await get().refreshModels();
      await get().selectModel(model);
    } catch (err) {
      const cancelled = /cancelled/.test(message(err));
      set({
        push: { ...get().push!, status: cancelled ? 'cancelled' : 'failed', error: message(err) },
      });
      get().notify(
        'error',
        cancelled ? 'Push cancelled: no version was written' : `Push failed: ${message(err)}`,
      );
    }
  },

  async setTag(selector, name) {
    try {
      const r = await api.tag(selector, name);
      get().notify(
        r.changed ? 'ok' : 'info',
        !r.changed
          ? `${r.model}: ${r.name} already points at ${r.version}`
          : r.previous
            ? `${r.model}: ${r.name} moved from ${r.previous.version ?? 'a removed version'} to ${r.version}`
            : `${r.model}: tagged ${r.version} ${r.name}`,
      );
      await get().selectModel(r.model);
    } catch (err) {
      get().notify('error', message(err));
    }
  },

  async deleteTag(model, name) {
    if (
      !window.confirm(
        `Delete the tag ${name} of ${model}? No version is removed, and its moves stay on record (tv tags ${model} --history).`,
      )
    )
      return;
    try {
      await api.untag(model, name);
      get().notify('ok', `${model}: deleted tag ${name}`);
      await get().selectModel(model);
    } catch (err) {
      get().notify('error', message(err));
    }
  },

  async cancelPush() {
    const push = get().push;
    if (push?.status === 'running') await api.cancelPush(push.id);
  },

  async removeVersion(selector) {
    if (
      !window.confirm(
        `Remove ${selector}? Its files stay in the repository until gc reclaims them.`,
      )
    )
      return;
    try {
      await api.remove(selector);
      get().notify('ok', `Removed ${selector}`);
      const model = get().model;
      await get().refreshModels();
      if (model) await get().selectModel(model);
    } catch (err) {
      get().notify('error', message(err));
    }
  },

  notify(kind, text) {
    const id = ++noticeId;
    set({ notices: [...get().notices, { id, kind, text }] });
    setTimeout(() => get().dismiss(id), 6000);
  },

  dismiss(id) {
    set({ notices: get().notices.filter((n) => n.id !== id) });
  },
}));

type Get = () => AppState;
type Set = (partial: Partial<AppState>) => void;

/** The paths the picked files get, and the options of their push or status (the update choice). */
function pushPlan(state: AppState): {
  paths: string[];
  options: { update?: { remove: string[] }; versionPaths?: string[]; noCache?: boolean };
} {
  const { picked, pickKind, pushMode, versions, latestFiles, model } = state;
  const updating = pickKind === 'files' && pushMode === 'update' && (versions?.length ?? 0) > 0;
  if (!updating) return { paths: picked.map((f) => f.path), options: {} };
  const paths =
    latestFiles && latestFiles.model === model
      ? updateTargets(picked, latestFiles.files).map((t) => t.path)
      : picked.map((f) => f.path);
  return { paths, options: { update: { remove: [] }, versionPaths: paths } };
}

/** What a push of the picked files would do: by path on the desktop, from their bytes in a browser. */
async function statusOf(
  id: string,
  model: string,
  files: Picked[],
  plan: ReturnType<typeof pushPlan>,
): Promise<PushStatus> {
  const paths =
    isDesktop && bridge.pathForFile ? files.map((f) => bridge.pathForFile!(f.file)) : [];
  if (isDesktop && paths.length === files.length && paths.every(Boolean))
    return api.statusPaths(id, model, paths, plan.options);
  const entries = files.map((f, i) => ({ path: plan.paths[i] ?? f.path, size: f.file.size }));
  const status = api.uploadStatus(id, model, entries, {
    ...(plan.options.update ? { update: plan.options.update } : {}),
  });
  await Promise.all([
    status,
    sendFiles(
      id,
      files.map((f) => f.file),
    ),
  ]);
  return status;
}

/**
 * Teammates' pushes: while the page is visible, one cheap listing every WATCH_MS (none while it
 * is hidden; one at once when it shows again). New versions are marked in the list, and said in a
 * quiet notice with who pushed them from where.
 */
async function watchTeammates(get: Get, set: Set): Promise<void> {
  let since: number;
  const seen = new Set<string>();
  try {
    // What is there already (the listing reaches back a few minutes): seen, not announced.
    since = (await api.changes()).now;
    const present = await api.changes(since).catch(() => undefined);
    for (const v of present?.versions ?? []) seen.add(v.id);
  } catch {
    return; // the page says why elsewhere (no repository yet is fine: the first push makes one)
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const look = async () => {
    timer = undefined;
    if (document.visibilityState !== 'visible') return;
    try {
      const changes = await api.changes(since);
      since = changes.now;
      const news = changes.versions.filter((v) => !seen.has(v.id) && !ownPushes.has(v.id));
      for (const v of changes.versions) seen.add(v.id);
      if (news.length > 0) await announce(get, set, news);
    } catch {
      // A failed look is retried at the next tick (the cache light and errors say the rest).
    } finally {
      if (document.visibilityState === 'visible') timer = setTimeout(() => void look(), WATCH_MS);
    }
  };
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && !timer) void look();
    else if (document.visibilityState !== 'visible' && timer) {
      clearTimeout(timer);
      timer = undefined;
    }
  });
  timer = setTimeout(() => void look(), WATCH_MS);
}

/**
 * The model's versions (and its latest version's files), loaded into the store; the view stays as
 * it is (a teammate's push must not move the user off the page they are on).
 */
async function loadVersions(get: Get, set: Set, name: string, same: boolean): Promise<void> {
  try {
    const versions = await api.log(name);
    if (get().model !== name) return;
    set({ versions });
    const latest = versions.at(-1);
    if (latest && get().latestFiles?.id !== latest.id) {
      const latestFiles = await api.files(`${name}@${latest.label}`);
      if (get().model === name) set({ latestFiles });
    }
    // Files picked before the model (or its latest version) was known: compare them now.
    if (get().picked.length > 0 && !same) void get().refreshStatus();
  } catch (err) {
    set({ versions: [], latestFiles: undefined });
    if (!/has no versions|no TensorVault repository/.test(message(err)))
      get().notify('error', message(err));
  }
}

async function announce(get: Get, set: Set, news: VersionSummary[]): Promise<void> {
  set({ fresh: { ...get().fresh, ...Object.fromEntries(news.map((v) => [v.id, true as const])) } });
  const text =
    news.length === 1
      ? `${news[0]!.author} pushed ${news[0]!.model} ${news[0]!.label}`
      : `${count(news.length, 'new version')}: ${news.map((v) => `${v.model} ${v.label} by ${v.author}`).join(', ')}`;
  get().notify('info', text);
  await get().refreshModels();
  const model = get().model;
  if (model && news.some((v) => v.model === model)) await loadVersions(get, set, model, true);
}
