import { open, type FileHandle } from 'node:fs/promises';

interface Reader {
  handle: Promise<FileHandle>;
  users: number;
  dropped: boolean;
}

/**
 * Read handles kept open for ranged reads of a folder store's files: a restore reads thousands of
 * chunks from each pack, and an open and a close per chunk cost more than the read. At most
 * `limit` stay open (the least recently used idle ones close first); a file that is removed, or
 * that a read finds gone, has its handle closed once its reads end.
 */
export class ReadHandles {
  private readonly readers = new Map<string, Reader>();

  constructor(private readonly limit = 16) {}

  async with<T>(path: string, read: (handle: FileHandle) => Promise<T>): Promise<T> {
    let reader = this.readers.get(path);
    if (reader)
      this.readers.delete(path); // re-inserted below: the map's order is recency
    else {
      reader = { handle: open(path, 'r'), users: 0, dropped: false };
      reader.handle.catch(() => {}); // awaited below; a failed open is not kept
    }
    this.readers.set(path, reader);
    reader.users++;
    try {
      return await read(await reader.handle);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.drop(path);
      throw err;
    } finally {
      reader.users--;
      if (reader.dropped && reader.users === 0) close(reader);
      this.trim();
    }
  }

  /** Forgets a file's handle (the file was removed); it closes as soon as no read uses it. */
  drop(path: string): void {
    const reader = this.readers.get(path);
    if (!reader) return;
    this.readers.delete(path);
    reader.dropped = true;
    if (reader.users === 0) close(reader);
  }

  dropAll(): void {
    for (const path of [...this.readers.keys()]) this.drop(path);
  }

  private trim(): void {
    for (const [path, reader] of this.readers) {
      if (this.readers.size <= this.limit) return;
      if (reader.users === 0) this.drop(path);
    }
  }
}

function close(reader: Reader): void {
  void reader.handle.then((h) => h.close()).catch(() => {});
}
