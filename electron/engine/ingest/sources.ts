import { constants } from 'node:fs';
import { access, lstat, opendir, realpath, stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { ByteSource } from '../chunking/stream';
import { inPathOrder } from './versions';

/** One file of a version: where its bytes come from and the path it gets in the version. */
export interface FileSource {
  /** Path inside the version, "/"-separated, relative. */
  path: string;
  size: number;
  /** A file on disk (read in a worker)... */
  file?: string;
  /** ...or a stream of its bytes (an upload in browser mode). */
  stream?: () => ByteSource;
}

export interface CollectedFiles {
  files: FileSource[];
  skipped: { path: string; reason: string }[];
}

export class SourceError extends Error {
  override name = 'SourceError';
}

/**
 * Walks the given files and folders. A folder's files are recorded relative to the folder; a
 * file given directly by its name. Symbolic links are followed only when they stay inside the
 * folder being walked (and only to files); others are skipped and reported.
 */
export async function collectFiles(paths: readonly string[]): Promise<CollectedFiles> {
  if (paths.length === 0)
    throw new SourceError('nothing to push: give at least one file or folder');
  const files: FileSource[] = [];
  const skipped: CollectedFiles['skipped'] = [];
  for (const given of paths) {
    const absolute = resolve(given);
    const info = await lstat(absolute).catch((err: NodeJS.ErrnoException) => {
      throw new SourceError(
        err.code === 'ENOENT'
          ? `no such file or folder: ${given}`
          : `cannot read ${given}: ${describe(err)}`,
      );
    });
    if (info.isDirectory()) {
      await walk(absolute, await realpath(absolute), absolute, files, skipped);
    } else if (info.isFile()) {
      await checkReadable(absolute, given);
      files.push({ path: basename(absolute), size: info.size, file: absolute });
    } else if (info.isSymbolicLink()) {
      const target = await stat(absolute).catch(() => undefined);
      if (!target?.isFile())
        throw new SourceError(
          `${given} is a symbolic link to no file: give the file or folder itself`,
        );
      await checkReadable(absolute, given);
      files.push({ path: basename(absolute), size: target.size, file: absolute });
    } else {
      throw new SourceError(`${given} is not a regular file or folder`);
    }
  }
  const seen = new Map<string, string>();
  for (const f of files) {
    const previous = seen.get(f.path);
    if (previous)
      throw new SourceError(
        `two sources would both be stored as "${f.path}" (${previous} and ${f.file}): push them from one folder`,
      );
    seen.set(f.path, f.file ?? f.path);
  }
  files.sort(inPathOrder);
  if (files.length === 0)
    throw new SourceError(`nothing to push: ${paths.join(', ')} holds no files`);
  return { files, skipped };
}

async function walk(
  dir: string,
  realRoot: string,
  root: string,
  files: FileSource[],
  skipped: CollectedFiles['skipped'],
): Promise<void> {
  let entries;
  try {
    entries = await opendir(dir);
  } catch (err) {
    throw new SourceError(
      `cannot read the folder ${dir}: ${describe(err as NodeJS.ErrnoException)}`,
    );
  }
  for await (const entry of entries) {
    const full = join(dir, entry.name);
    const rel = relative(root, full).split(sep).join('/');
    if (entry.isDirectory()) {
      await walk(full, realRoot, root, files, skipped);
    } else if (entry.isFile()) {
      await checkReadable(full, full);
      files.push({ path: rel, size: (await stat(full)).size, file: full });
    } else if (entry.isSymbolicLink()) {
      const target = await realpath(full).catch(() => undefined);
      if (!target) {
        skipped.push({ path: rel, reason: 'broken symbolic link' });
      } else if (target !== realRoot && !target.startsWith(realRoot + sep)) {
        skipped.push({ path: rel, reason: 'symbolic link out of the folder' });
      } else {
        const info = await stat(target);
        if (info.isFile()) files.push({ path: rel, size: info.size, file: target });
        else skipped.push({ path: rel, reason: 'symbolic link to a folder' });
      }
    } else {
      skipped.push({ path: rel, reason: 'not a regular file' });
    }
  }
}

async function checkReadable(path: string, shown: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (err) {
    throw new SourceError(`cannot read ${shown}: ${describe(err as NodeJS.ErrnoException)}`);
  }
}

function describe(err: NodeJS.ErrnoException): string {
  return err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.message;
}
