import { isDesktop } from './api';

/** A file chosen by the user, with the path it gets in the version. */
export interface Picked {
  file: File;
  path: string;
}

/** Files from a file input: a folder's files relative to the folder, like `tv push` records them. */
export function fromInput(list: FileList | null): Picked[] {
  return Array.from(list ?? []).map((file) => ({
    file,
    path: file.webkitRelativePath
      ? file.webkitRelativePath.split('/').slice(1).join('/')
      : file.name,
  }));
}

/**
 * Files from a drop. In the desktop app the dropped files and folders go to the engine by path
 * (it walks folders itself); in a browser, dropped folders are walked here.
 */
export async function fromDrop(data: DataTransfer): Promise<Picked[]> {
  if (isDesktop) return Array.from(data.files).map((file) => ({ file, path: file.name }));
  const entries = Array.from(data.items)
    .map((item) => item.webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0)
    return Array.from(data.files).map((file) => ({ file, path: file.name }));
  const picked: Picked[] = [];
  for (const entry of entries) await walk(entry, entry.isDirectory ? entry.fullPath : '', picked);
  return picked;
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
