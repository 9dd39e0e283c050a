/**
 * The one API contract between the engine's service and every front end (Electron IPC, the
 * browser-mode WebSocket, tests). Each entry names its arguments (validated at the boundary with
 * zod) and its result type. The preload bridge, the main-process IPC wiring and the browser
 * transport are all derived from this object: a new call is one entry here plus one method on
 * the service.
 */
import { z } from 'zod';

export interface AppInfo {
  product: string;
  version: string;
  /** Where the repository lives, for display (never a credential). */
  repository: string;
  /** Where this UI runs: the desktop app or a browser connected to `tv serve`. */
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

export const contract = {
  appInfo: entry<AppInfo>()(z.tuple([])),
} as const;

export type Contract = typeof contract;
export type Method = keyof Contract;
export type ArgsOf<M extends Method> = z.infer<Contract[M]['args']>;
export type ResultOf<M extends Method> = NonNullable<Contract[M]['result']>;

/** The API object as a front end sees it: every contract entry as an async function. */
export type Api = { [M in Method]: (...args: ArgsOf<M>) => Promise<ResultOf<M>> };

export const methods = Object.keys(contract) as Method[];

/** The IPC channel of a contract entry. */
export const channelOf = (method: Method): string => `tv:${method}`;

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
