/**
 * The one API contract between the engine's service and every front end (Electron IPC, the
 * browser-mode WebSocket, tests). Each entry names its arguments (validated at the boundary with
 * zod) and its result type. The preload bridge, the main-process IPC wiring and the browser
 * transport are all derived from this object: a new call is one entry here plus one method on
 * the service.
 */
import { z } from 'zod';
import type {
  CacheStatus,
  ConnectionTest,
  GcResult,
  ModelSummary,
  PushProgress,
  PushResult,
  RemoveResult,
  ReportProgress,
  RepositoryInfo,
  RestoreProgress,
  RestoreResult,
  RestoreTarget,
  Settings,
  TensorStatsResult,
  VerifyResult,
  VersionDiff,
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

/** A request: validated arguments in, a typed result out. */
export interface Entry<Args extends z.ZodTuple, Result> {
  args: Args;
  /** Phantom field carrying the result type; never read at runtime. */
  result?: Result;
}

function entry<Result>() {
  return <Args extends z.ZodTuple>(args: Args): Entry<Args, Result> => ({ args });
}

const modelName = z.string().min(1).max(100);
const selector = z.string().min(1).max(200);
const message = z.string().max(10_000);
const localPaths = z.array(z.string().min(1).max(4096)).min(1).max(10_000);
const folder = z.string().min(1).max(4096);
const settingsInput = z
  .object({
    repository: z.string().max(4096),
    s3Endpoint: z.string().max(2048),
    s3Region: z.string().max(64),
    s3AccessKeyId: z.string().max(256),
    s3SecretAccessKey: z.string().max(1024).optional(),
    redisUrl: z.string().max(2048),
    redisPassword: z.string().max(1024).optional(),
    uploadConcurrency: z.number().int().min(1).max(1024),
    retryForSeconds: z.number().int().min(1).max(86_400).optional(),
  })
  .strict();
/** A push started by the UI: an id to cancel it and to tell its progress events apart. */
const pushId = z.string().regex(/^[\w-]{1,64}$/);

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
      z
        .object({
          path: z.string().min(1).max(1024),
          tensors: z.array(z.string().min(1).max(1024)).max(100_000).optional(),
        })
        .strict(),
    ]),
  ),
  /** Push files and folders on this machine (the desktop app: paths from a drop or a picker). */
  pushPaths: entry<PushResult>()(z.tuple([pushId, modelName, localPaths, message])),
  /**
   * Browser mode: push files whose bytes the page then sends, in order, as
   * `PUT /api/upload/<pushId>/<index>`; resolves when the version is written.
   */
  uploadPush: entry<PushResult>()(
    z.tuple([
      pushId,
      modelName,
      message,
      z
        .array(
          z.object({ path: z.string().min(1).max(1024), size: z.number().int().min(0) }).strict(),
        )
        .min(1)
        .max(10_000),
    ]),
  ),
  cancelPush: entry<boolean>()(z.tuple([pushId])),
  /**
   * Restores a version into a folder: absolute, or `~/...` (the engine user's home); relative
   * paths are resolved against the current folder by the command line and refused by the app.
   */
  pull: entry<RestoreResult>()(z.tuple([selector, folder])),
  /** The absolute folder a restore to this path would write, and whether it can, before it starts. */
  restoreTarget: entry<RestoreTarget>()(z.tuple([folder])),
  verify: entry<VerifyResult>()(
    z.tuple([z.object({ selector: selector.optional(), full: z.boolean().optional() }).strict()]),
  ),
  remove: entry<RemoveResult>()(z.tuple([selector])),
  gc: entry<GcResult>()(
    z.tuple([
      z
        .object({
          dryRun: z.boolean().optional(),
          graceSeconds: z.number().int().min(0).optional(),
        })
        .strict(),
    ]),
  ),
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
