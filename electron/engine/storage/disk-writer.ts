import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BlobWriter } from './store';

/** Bytes written between background datasyncs. */
const SYNC_EVERY = 8 << 20;

/** Pieces per writev, and bytes. */
const WRITE_BATCH = 256;
const WRITE_BATCH_BYTES = 16 << 20;

export const TEMP_SUFFIX = '.tmp';

interface QueuedWrite {
  data: Uint8Array;
  offset: number;
  done: (err?: unknown) => void;
}

/**
 * A blob of a folder store written piece by piece: a temp file beside its final name, appended
 * with one writev in flight at a time (concurrent positional writes to one file contend for its
 * inode lock, and a system call per 64 KiB piece costs more than the copy), a background
 * fdatasync every 8 MiB so the disk writes while the caller goes on, and at finish an fdatasync,
 * the rename into place and an fsync of the folder: the blob is whole under its name, and durable.
 */
export class DiskBlobWriter implements BlobWriter {
  size = 0;
  private handle: Promise<FileHandle> | undefined;
  private readonly temp: string;
  private readonly queue: QueuedWrite[] = [];
  private writing: Promise<void> | undefined;
  private unsynced = 0;
  private syncing: Promise<void> | undefined;
  private failed: unknown;

  /** `describe` turns a file system error into the store's own (what failed, on which key). */
  constructor(
    private readonly path: string,
    private readonly onFinished: (path: string) => Promise<void>,
    private readonly describe: (err: unknown) => Error = (err) => err as Error,
  ) {
    this.temp = `${path}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
  }

  private opened(): Promise<FileHandle> {
    this.handle ??= (async () => {
      await mkdir(dirname(this.path), { recursive: true });
      return open(this.temp, 'wx+'); // read back too: a writer serves reads of its own blob
    })();
    return this.handle;
  }

  append(data: Uint8Array): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const offset = this.size;
    this.size += data.length;
    const written = new Promise<void>((resolve, reject) =>
      this.queue.push({ data, offset, done: (err) => (err ? reject(err) : resolve()) }),
    );
    this.writing ??= this.drain();
    return written;
  }

  /** Writes the queue in batches until it is empty. */
  private async drain(): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await this.opened();
    } catch (err) {
      this.failed ??= this.describe(err);
      for (const w of this.queue.splice(0)) w.done(this.failed);
      this.writing = undefined;
      return;
    }
    while (this.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && n < WRITE_BATCH && bytes < WRITE_BATCH_BYTES)
        bytes += (this.queue[n++] as QueuedWrite).data.length;
      const batch = this.queue.splice(0, n);
      try {
        await writeAll(
          handle,
          batch.map((w) => w.data),
          (batch[0] as QueuedWrite).offset,
        );
      } catch (err) {
        this.failed ??= this.describe(err);
        for (const w of batch) w.done(this.failed);
        continue;
      }
      for (const w of batch) w.done();
      // The kernel would hold the written pages until a writeback threshold; a datasync every
      // few MiB starts the disk writing, so the one at finish finds little left.
      this.unsynced += bytes;
      if (this.unsynced >= SYNC_EVERY && !this.syncing) {
        this.unsynced = 0;
        this.syncing = handle
          .datasync()
          .catch(() => {}) // the datasync at finish reports a failure
          .finally(() => (this.syncing = undefined));
      }
    }
    this.writing = undefined;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    // Bytes still queued are not in the file yet.
    await this.settled();
    const bytes = Buffer.allocUnsafe(length);
    try {
      await readExactly(await this.opened(), bytes, offset);
    } catch (err) {
      throw this.describe(err);
    }
    return bytes;
  }

  private async settled(): Promise<void> {
    while (this.writing) await this.writing;
    await this.syncing;
  }

  async finish(): Promise<void> {
    try {
      const handle = await this.opened();
      try {
        await this.settled();
        if (this.failed) throw this.failed;
        await handle.datasync();
      } catch (err) {
        await this.abort();
        throw err;
      }
      await handle.close();
      try {
        await rename(this.temp, this.path);
      } catch (err) {
        await unlink(this.temp).catch(() => {});
        throw err;
      }
      await this.onFinished(this.path);
    } catch (err) {
      throw err === this.failed ? err : this.describe(err);
    }
  }

  async abort(): Promise<void> {
    if (!this.handle) return;
    await this.settled().catch(() => {});
    const handle = await this.handle.catch(() => undefined);
    await handle?.close().catch(() => {});
    await unlink(this.temp).catch(() => {});
  }
}

/** Writes the buffers back to back from a position, however many calls it takes. */
async function writeAll(
  handle: FileHandle,
  buffers: Uint8Array[],
  position: number,
): Promise<void> {
  let at = position;
  let rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const left: Uint8Array[] = [];
    for (const b of rest) {
      if (skip >= b.length) skip -= b.length;
      else {
        left.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    if (bytesWritten === 0 && left.length > 0)
      throw Object.assign(new Error('the disk accepted no bytes of a write'), {
        code: 'SHORT_WRITE',
      });
    rest = left;
  }
}

/** Reads exactly `into.length` bytes from a position; an early end of file is an error. */
export async function readExactly(
  handle: FileHandle,
  into: Buffer,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0)
      throw Object.assign(new Error(`the file ends early, at byte ${position + done}`), {
        code: 'SHORT_READ',
      });
    done += bytesRead;
  }
}
