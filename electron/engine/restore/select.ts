import picomatch from 'picomatch';
import type { VersionRecord } from '../repository/format';

/** A selection that names no file of the version: the message says which and how to list them. */
export class SelectionError extends Error {
  override name = 'SelectionError';
}

/** Which of a version's files a pull restores (all, when nothing is given). */
export interface FileSelection {
  /** Globs: a file is restored when one matches it (or a folder it is in). */
  include?: string[];
  /** Globs: a file is left out when one matches it (or a folder it is in). */
  exclude?: string[];
  /** Exact paths (the app's ticked files): only these. */
  paths?: string[];
}

/**
 * A glob test for a version's paths, the way .gitignore and rsync read patterns: `*` stays within
 * a folder and `**` crosses them; a pattern without a "/" also matches a file's name or any
 * folder's name; a pattern matching a folder matches everything in it. Dot files are matched.
 */
function matcher(patterns: readonly string[]): (path: string) => boolean {
  const tests = patterns.map((pattern) => {
    const clean = pattern.replace(/^\.\/+/, '').replace(/\/+$/, '');
    return picomatch(clean, { dot: true, basename: !clean.includes('/') });
  });
  return (path) => {
    const parts = path.split('/');
    // The path itself, then each folder it is in: "a/b/c.json", "a/b", "a".
    for (let n = parts.length; n > 0; n--) {
      const candidate = parts.slice(0, n).join('/');
      if (tests.some((test) => test(candidate))) return true;
    }
    return false;
  };
}

/** The files of a version a selection names; an error when it names none (or a missing path). */
export function selectFiles(
  files: VersionRecord['files'],
  selection: FileSelection,
  label: string,
): VersionRecord['files'] {
  let chosen = files;
  if (selection.paths) {
    const wanted = new Set(selection.paths);
    const missing = selection.paths.filter((p) => !files.some((f) => f.path === p));
    if (missing.length > 0)
      throw new SelectionError(
        `${label} has no file ${missing
          .slice(0, 3)
          .map((p) => `"${p}"`)
          .join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}`,
      );
    chosen = chosen.filter((f) => wanted.has(f.path));
  }
  if (selection.include?.length) {
    const included = matcher(selection.include);
    chosen = chosen.filter((f) => included(f.path));
  }
  if (selection.exclude?.length) {
    const excluded = matcher(selection.exclude);
    chosen = chosen.filter((f) => !excluded(f.path));
  }
  if (chosen.length === 0) {
    const given = [
      ...(selection.include ?? []).map((g) => `--include '${g}'`),
      ...(selection.exclude ?? []).map((g) => `--exclude '${g}'`),
    ].join(' ');
    throw new SelectionError(
      `no file of ${label} matches ${given || 'the selection'} (its ${files.length === 1 ? 'file is' : `${files.length} files are`} listed by \`tv ls ${label}\`)`,
    );
  }
  return chosen;
}
