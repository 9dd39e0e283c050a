/**
 * The one API contract between the engine's service and every front end (Electron IPC, the
 * browser-mode WebSocket, tests). Each entry names its arguments (validated at the boundary with
 * zod) and its result type. The preload bridge, the main-process IPC wiring and the browser
 * transport are all derived from this object: a new call is one entry here plus one method on
 * the service.
 */
// zod's tree-shakable build, as in the engine (the full one is ~750 KB that `tv` would load).
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import type {
  CacheStatus,
  ConnectionTest,
  GcResult,
  ModelSummary,
  PackRepairResult,
  RepairResult,
  PushProgress,
  PushResult,
  PushStatus,
  RecentChanges,
  RemoveResult,
  ReportProgress,
  RepositoryInfo,
  RestoreProgress,
  RestoreResult,
  RestoreTarget,
  Settings,
  TagMoveSummary,
  TagResult,
  TagSummary,
  TensorStatsResult,
  VerifyResult,
  VersionDiff,
  VersionFiles,
  VersionReport,
  VersionSummary,
} from './types';

export interface AppInfo {
  product: string;
  version: string;
  /** Where the repository lives, for display (never a credential). */
  repository: string;
  /** Where this UI runs: the desktop app, a browser connected to `tv serve`, or the CLI. */
  mode: 'desktop' | 'browser' | 'cli';
}

// Messages in English (zod/mini loads no locale by itself).
z.config(en());

/** A request: validated arguments in, a typed result out. */
export interface Entry<Args extends z.ZodMiniTuple, Result> {
  args: Args;
  /** Phantom field carrying the result type; never read at runtime. */
  result?: Result;
}

function entry<Result>() {
  return <Args extends z.ZodMiniTuple>(args: Args): Entry<Args, Result> => ({ args });
}

/** A string of `min` to `max` characters. */
const text = (min: number, max: number) => z.string().check(z.minLength(min), z.maxLength(max));
/** A whole number from `min` (to `max`). */
const whole = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.number().check(z.int(), z.gte(min), z.lte(max));
/** An array of `min` to `max` items. */
const list = <T extends z.ZodMiniType>(item: T, min: number, max: number) =>
  z.array(item).check(z.minLength(min), z.maxLength(max));

const modelName = text(1, 100);
const selector = text(1, 200);
const message = text(0, 10_000);
const localPaths = list(text(1, 4096), 1, 10_000);
const folder = text(1, 4096);
const settingsInput = z.strictObject({
  repository: text(0, 4096),
  s3Endpoint: text(0, 2048),
  s3Region: text(0, 64),
  s3AccessKeyId: text(0, 256),
  s3SecretAccessKey: z.optional(text(0, 1024)),
  redisUrl: text(0, 2048),
  redisPassword: z.optional(text(0, 1024)),
  uploadConcurrency: whole(1, 1024),
  filesCache: z.optional(z.boolean()),
  retryForSeconds: z.optional(whole(1, 86_400)),
});
/** A push started by the UI: an id to cancel it and to tell its progress events apart. */
const pushId = z.string().check(z.regex(/^[\w-]{1,64}$/));
/** The app's choice beside the files: an update of the latest version, and where files go. */
const pushOptions = z.optional(
  z.strictObject({
    update: z.optional(z.strictObject({ remove: list(text(1, 1024), 0, 10_000) })),
    versionPaths: z.optional(list(text(1, 1024), 1, 10_000)),
    noCache: z.optional(z.boolean()),
  }),
);
const uploadFiles = list(z.strictObject({ path: text(1, 1024), size: whole(0) }), 1, 10_000);

export const contract = {
  appInfo: entry<AppInfo>()(z.tuple([])),
  repositoryInfo: entry<RepositoryInfo>()(z.tuple([])),
  models: entry<ModelSummary[]>()(z.tuple([])),
  log: entry<VersionSummary[]>()(z.tuple([modelName])),
  report: entry<VersionReport>()(z.tuple([selector])),
  diff: entry<VersionDiff>()(z.tuple([selector, selector])),
  /** How much tensors of a file moved between two versions; `tensors` absent: every changed one. */
  tensorStats: entry<TensorStatsResult>()(
    z.tuple([
      selector,
      selector,
      z.strictObject({
        path: text(1, 1024),
        tensors: z.optional(list(text(1, 1024), 0, 100_000)),
      }),
    ]),
  ),
  /** Push files and folders on this machine (the desktop app: paths from a drop or a picker). */
  pushPaths: entry<PushResult>()(z.tuple([pushId, modelName, localPaths, message, pushOptions])),
  /** What pushPaths would do: files added, removed, modified, and the new bytes; writes nothing. */
  statusPaths: entry<PushStatus>()(z.tuple([pushId, modelName, localPaths, pushOptions])),
  /**
   * Browser mode: push files whose bytes the page then sends, in order, as
   * `PUT /api/upload/<pushId>/<index>`; resolves when the version is written.
   */
  uploadPush: entry<PushResult>()(z.tuple([pushId, modelName, message, uploadFiles, pushOptions])),
  /** Browser mode: what uploadPush would do (the page sends the bytes as for a push). */
  uploadStatus: entry<PushStatus>()(z.tuple([pushId, modelName, uploadFiles, pushOptions])),
  cancelPush: entry<boolean>()(z.tuple([pushId])),
  /**
   * Restores a version (or the files selected) into a folder, writing only what differs from what
   * it holds: absolute, or `~/...` (the engine user's home); relative paths are resolved against
   * the current folder by the command line and refused by the app.
   */
  pull: entry<RestoreResult>()(
    z.tuple([
      selector,
      folder,
      z.optional(
        z.strictObject({
          include: z.optional(list(text(1, 1024), 0, 1000)),
          exclude: z.optional(list(text(1, 1024), 0, 1000)),
          paths: z.optional(list(text(1, 1024), 1, 100_000)),
        }),
      ),
    ]),
  ),
  /** A version's files (paths and sizes). */
  files: entry<VersionFiles>()(z.tuple([selector])),
  /** The absolute folder a restore to this path would write, and whether it can, before it starts. */
  restoreTarget: entry<RestoreTarget>()(z.tuple([folder])),
  verify: entry<VerifyResult>()(
    z.tuple([z.strictObject({ selector: z.optional(selector), full: z.optional(z.boolean()) })]),
  ),
  remove: entry<RemoveResult>()(z.tuple([selector])),
  gc: entry<GcResult>()(
    z.tuple([
      z.strictObject({
        dryRun: z.optional(z.boolean()),
        graceSeconds: z.optional(whole(0)),
        repackBelowPercent: z.optional(z.number().check(z.gte(0), z.lte(100))),
      }),
    ]),
  ),
  repairIndex: entry<RepairResult>()(z.tuple([])),
  /** Drops corrupt copies in these packs (names; every pack when none) from the index. */
  repairPacks: entry<PackRepairResult>()(z.tuple([z.optional(list(text(1, 200), 0, 10_000))])),
  /**
   * Versions pushed since `since` (ms, the `now` of the previous answer): one listing of the
   * refs. Without `since`: only `now`, to start from.
   */
  changes: entry<RecentChanges>()(z.tuple([z.optional(whole(0))])),
  /** A model's tags, and the versions they point at. */
  tags: entry<TagSummary[]>()(z.tuple([modelName])),
  tagHistory: entry<TagMoveSummary[]>()(z.tuple([modelName])),
  /** Points a tag at a version (MODEL@VERSION), setting or moving it. */
  tag: entry<TagResult>()(z.tuple([selector, modelName])),
  untag: entry<TagResult>()(z.tuple([modelName, modelName])),
  cacheStatus: entry<CacheStatus>()(z.tuple([])),
  getSettings: entry<Settings>()(z.tuple([])),
  saveSettings: entry<Settings>()(z.tuple([settingsInput])),
  testConnection: entry<ConnectionTest>()(z.tuple([z.enum(['s3', 'redis']), settingsInput])),
} as const;

/** Events the service sends to every connected front end. */
export interface Events {
  pushProgress: { pushId: string; progress: PushProgress };
  restoreProgress: { selector: string; progress: RestoreProgress };
  /** A report (`key` the selector asked) or a diff (`key` "FROM..TO") being computed. */
  reportProgress: { key: string; progress: ReportProgress };
  cacheStatus: CacheStatus;
}
export type EventName = keyof Events;
export const eventNames: EventName[] = [
  'pushProgress',
  'restoreProgress',
  'reportProgress',
  'cacheStatus',
];

export type Contract = typeof contract;
export type Method = keyof Contract;
export type ArgsOf<M extends Method> = z.infer<Contract[M]['args']>;
export type ResultOf<M extends Method> = NonNullable<Contract[M]['result']>;

/** The API object as a front end sees it: every contract entry as an async function. */
export type Api = { [M in Method]: (...args: ArgsOf<M>) => Promise<ResultOf<M>> };

export const methods = Object.keys(contract) as Method[];

/** The IPC channel of a contract entry, and of an event. */
export const channelOf = (method: Method): string => `tv:${method}`;
export const eventChannelOf = (event: EventName): string => `tv:event:${event}`;

/**
 * Validates raw arguments from outside the process against the contract. Throws an error whose
 * message says which call and which argument was wrong.
 */
export function parseArgs<M extends Method>(method: M, raw: unknown): ArgsOf<M> {
  const def = contract[method];
  if (!def) throw new Error(`unknown API call "${String(method)}"`);
  const parsed = def.args.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `argument ${issue.path.join('.')}` : 'arguments';
    throw new Error(`${method}: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data as ArgsOf<M>;
}

export function isMethod(name: unknown): name is Method {
  return typeof name === 'string' && Object.hasOwn(contract, name);
}
