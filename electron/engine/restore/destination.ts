import { mkdir, readdir, rmdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { RestoreTarget } from '../../../shared/types';

/** The destination cannot be used: the message says why and what to choose instead. */
export class DestinationError extends Error {
  override name = 'DestinationError';
}

/**
 * The absolute folder a destination as typed names. `~` and `~/...` are the home folder of the
 * user running the engine (a shell expands them, a text field does not). A relative path is
 * resolved against `base` (the command line's current folder); where there is none (the app,
 * whose server runs in a folder the user never chose), it is refused with a line saying so.
 */
export function resolveDestination(
  input: string,
  base: string | undefined,
  home: string = homedir(),
): string {
  if (input.trim() === '') throw new DestinationError('no destination folder given');
  const tilde = /^~(?=$|[/\\])/.exec(input);
  if (tilde) return resolve(join(home, input.slice(1)));
  if (/^~[^/\\]/.test(input) && base === undefined)
    throw new DestinationError(
      `"${input}": only ~ (your home folder) is expanded, not ~user: give the full path`,
    );
  if (isAbsolute(input)) return resolve(input);
  if (base === undefined)
    throw new DestinationError(
      `"${input}" is a relative path, and the app has no current folder to resolve it against: give a full path (starting with / or ~)`,
    );
  return resolve(base, input);
}

/**
 * What a restore to `input` would write into, before it starts: the absolute folder, whether it
 * is new, empty or holds files, or why it cannot be used.
 */
export async function describeDestination(
  input: string,
  base: string | undefined,
): Promise<RestoreTarget> {
  let path: string;
  try {
    path = resolveDestination(input, base);
  } catch (err) {
    return { input, path: null, state: null, problem: (err as Error).message };
  }
  const found = await stat(path).catch((err: NodeJS.ErrnoException) =>
    err.code === 'ENOENT' || err.code === 'ENOTDIR' ? undefined : err,
  );
  if (found instanceof Error)
    return { input, path, state: null, problem: `cannot use ${path}: ${found.message}` };
  if (!found) return { input, path, state: 'new', problem: null };
  if (!found.isDirectory())
    return {
      input,
      path,
      state: null,
      problem: `${path} exists and is not a folder: choose a folder`,
    };
  const entries = await readdir(path).catch(() => ['?']);
  // A folder holding files is a place to pull into too: the restore writes only what differs.
  return { input, path, state: entries.length === 0 ? 'empty' : 'files', problem: null };
}

/** A restore's destination once checked: the folders this restore created, outermost first. */
export interface Destination {
  created: string[];
}

/**
 * Makes `dest` (the resolved `destination`) a folder to restore into: an existing folder (empty,
 * or holding files, which the restore compares with the version's), or a missing one created
 * with its missing parents, one level at a time. Node's
 * recursive mkdir retries forever where a folder refuses new entries with ENOENT (/proc), so each
 * level is created here and the first refusal ends it, with a message naming the folder that
 * refused.
 */
export async function prepareDestination(destination: string, dest: string): Promise<Destination> {
  const existing = await statOrMissing(dest, destination);
  if (existing) {
    if (!existing.isDirectory())
      throw new DestinationError(`${destination} exists and is not a folder: choose a folder`);
    return { created: [] };
  }
  // The folders to create: from the nearest one that exists down to dest.
  const missing = [dest];
  for (let parent = dirname(dest); ; parent = dirname(parent)) {
    const found = await statOrMissing(parent, destination);
    if (found) {
      if (!found.isDirectory())
        throw new DestinationError(
          `cannot create ${destination}: ${parent} is ${found.isFile() ? 'a file, ' : ''}not a folder`,
        );
      break;
    }
    if (dirname(parent) === parent) break;
    missing.unshift(parent);
  }
  const created: string[] = [];
  for (const dir of missing) {
    try {
      await mkdir(dir);
      created.push(dir);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EEXIST' && dir !== dest) continue; // made by someone else meanwhile
      await removeCreated({ created });
      throw new DestinationError(`cannot create ${destination}: ${refusal(e, dirname(dir))}`);
    }
  }
  return { created };
}

/** Removes the folders a restore created (when it failed), innermost first, if they are empty. */
export async function removeCreated(destination: Destination): Promise<void> {
  for (const dir of [...destination.created].reverse()) await rmdir(dir).catch(() => {});
}

/** A path's stat, or undefined when it (or a folder above it) does not exist. */
async function statOrMissing(path: string, destination: string) {
  try {
    return await stat(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // ENOTDIR: a file stands where a folder above would be; the walk up finds and names it.
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw new DestinationError(`cannot use ${destination} as the destination: ${e.message}`);
  }
}

/** Why a folder could not be made in `parent`, in words. */
function refusal(e: NodeJS.ErrnoException, parent: string): string {
  switch (e.code) {
    case 'EACCES':
      return `permission denied: you cannot write in ${parent}`;
    case 'ENOENT': // /proc answers a new name with "no such file"
    case 'EPERM':
      return `${parent} does not allow new folders in it`;
    case 'EROFS':
      return `${parent} is on a read-only file system`;
    case 'ENOSPC':
      return `no space left on the device of ${parent}`;
    default:
      return e.message;
  }
}
