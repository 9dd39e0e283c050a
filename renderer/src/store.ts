import { create } from 'zustand';
import type { AppInfo } from '../../shared/contract';
import type {
  CacheStatus,
  ModelSummary,
  PushProgress,
  PushResult,
  ReportProgress,
  TensorStats,
  VersionDiff,
  VersionReport,
  VersionSummary,
} from '../../shared/types';
import { api, bridge, isDesktop, sendFiles } from './api';
import { count, dedup } from './format';
import type { Picked } from './drop';

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
  selectModel(name: string): Promise<void>;
  show(view: View): void;
  loadReport(selector: string): Promise<void>;
  loadDiff(from: string, to: string): Promise<void>;
  /** Files chosen for the next push (from a picker, or dropped anywhere on the window). */
  picked: Picked[];
  pick(files: Picked[]): void;
  startPush(model: string, files: Picked[], message: string): Promise<void>;
  cancelPush(): Promise<void>;
  removeVersion(selector: string): Promise<void>;
  notify(kind: Notice['kind'], text: string): void;
  dismiss(id: number): void;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
let noticeId = 0;

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

  pick(files) {
    set({ picked: files });
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
  },

  async refreshModels() {
    try {
      const models = await api.models();
      set({ models });
      if (!get().model && models[0]) await get().selectModel(models[0].name);
    } catch (err) {
      // A new installation has no repository until the first push creates it.
      set({
        models: /no TensorVault repository/.test(message(err)) ? [] : (get().models ?? []),
        error: /no TensorVault repository/.test(message(err)) ? undefined : message(err),
      });
    }
  },

  async selectModel(name) {
    set({ model: name, versions: undefined, view: { kind: 'model' } });
    try {
      const versions = await api.log(name);
      if (get().model === name) set({ versions });
    } catch (err) {
      set({ versions: [] });
      if (!/has no versions|no TensorVault repository/.test(message(err)))
        get().notify('error', message(err));
    }
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

  async startPush(model, files, text) {
    if (get().push?.status === 'running') return;
    const id = `push-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    set({ push: { id, model, progress: null, status: 'running' } });
    try {
      let result: PushResult;
      const paths =
        isDesktop && bridge.pathForFile
          ? files.map((f) => bridge.pathForFile!(f.file)).filter(Boolean)
          : [];
      if (isDesktop && paths.length === files.length) {
        result = await api.pushPaths(id, model, paths, text);
      } else {
        const entries = files.map((f) => ({ path: f.path, size: f.file.size }));
        const pushing = api.uploadPush(id, model, text, entries);
        await Promise.all([
          pushing,
          sendFiles(
            id,
            files.map((f) => f.file),
          ),
        ]);
        result = await pushing;
      }
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
