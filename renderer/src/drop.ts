import { isDesktop } from './api';

/** A file chosen by the user, with the path it gets in the version. */
export interface Picked {
  file: File;
  path: string;
}

/** What was chosen: single files, or a folder's files (a whole version). */
export interface Pick {
  files: Picked[];
  kind: 'files' | 'folder';
}

/** Files from a file input: a folder's files relative to the folder, like `tv push` records them. */
export function fromInput(list: FileList | null): Pick {
  const files = Array.from(list ?? []).map((file) => ({
    file,
    path: file.webkitRelativePath
      ? file.webkitRelativePath.split('/').slice(1).join('/')
      : file.name,
  }));
  return { files, kind: files.some((f) => f.file.webkitRelativePath) ? 'folder' : 'files' };
}

/**
 * Files from a drop. In the desktop app the dropped files and folders go to the engine by path
 * (it walks folders itself); in a browser, dropped folders are walked here.
 */
export async function fromDrop(data: DataTransfer): Promise<Pick> {
  const entries = Array.from(data.items)
    .map((item) => item.webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => !!e);
  const kind = entries.some((e) => e.isDirectory) ? 'folder' : 'files';
  if (isDesktop || entries.length === 0)
    return { files: Array.from(data.files).map((file) => ({ file, path: file.name })), kind };
  const picked: Picked[] = [];
  for (const entry of entries) await walk(entry, entry.isDirectory ? entry.fullPath : '', picked);
  return { files: picked, kind };
}

async function walk(entry: FileSystemEntry, root: string, out: Picked[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) =>
      (entry as FileSystemFileEntry).file(resolve, reject),
    );
    const path = root ? entry.fullPath.slice(root.length + 1) : entry.name;
    out.push({ file, path });
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
      reader.readEntries(resolve, reject),
    );
    if (batch.length === 0) break;
    for (const child of batch) await walk(child, root, out);
  }
}

/**
 * Where single files dropped onto a model go when they update its latest version: the file of
 * that path, else the only file of that name in a folder (vocab.json replaces tok/vocab.json),
 * else a new file at the top. `replaces` says which.
 */
export function updateTargets(
  picked: Picked[],
  versionFiles: { path: string }[],
): { path: string; replaces: boolean }[] {
  const paths = new Set(versionFiles.map((f) => f.path));
  return picked.map(({ path }) => {
    if (paths.has(path)) return { path, replaces: true };
    const named = versionFiles.filter((f) => f.path.split('/').at(-1) === path);
    return named.length === 1
      ? { path: (named[0] as { path: string }).path, replaces: true }
      : { path, replaces: false };
  });
}
