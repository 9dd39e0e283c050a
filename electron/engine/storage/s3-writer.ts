import { createHash, type Hash } from 'node:crypto';
import type { BlobWriter } from './store';

/** What an S3 writer asks of its store: one PUT, or the three steps of a multipart upload. */
export interface S3Uploads {
  putWhole(data: Buffer, sha256: string): Promise<void>;
  startMultipart(): Promise<string>;
  uploadPart(uploadId: string, part: number, data: Buffer, sha256: string): Promise<string>;
  completeMultipart(
    uploadId: string,
    parts: { part: number; etag: string; sha256: string }[],
  ): Promise<void>;
  abortMultipart(uploadId: string): Promise<void>;
  /** A buffer of this many bytes, recycled from an earlier writer where one is free. */
  takeBuffer(bytes: number): Buffer;
  giveBack(buffer: Buffer): void;
}

/**
 * A blob written to S3 piece by piece. Up to `partBytes`, the pieces are copied into one buffer
 * and the blob goes up in one PUT at finish, its sha256 sent as the S3 checksum (a pack is one
 * request). A blob that outgrows the buffer becomes a multipart upload: each full part goes up as
 * it fills (with its own sha256), so a big blob holds a part or two in memory, never all of it.
 * The sha256 is taken as the bytes come (one pass, no copy of the buffer to hash it later), so
 * the upload starts as soon as the blob is finished.
 */
export class S3BlobWriter implements BlobWriter {
  size = 0;
  private buffer: Buffer;
  /** Bytes in `buffer`; it holds the blob's bytes from `bufferStart` on. */
  private filled = 0;
  private bufferStart = 0;
  /** The sha256 of the bytes in `buffer` so far (the blob's, or the part's being filled). */
  private hash: Hash = createHash('sha256');
  private uploadId: Promise<string> | undefined;
  private readonly parts: Promise<{ part: number; etag: string; sha256: string }>[] = [];
  /** Parts being uploaded, still readable: their first byte and bytes. */
  private readonly sending = new Map<number, Buffer>();
  private done = false;

  /** `initialBytes`: the buffer to start with (the size the blob is expected to reach). */
  constructor(
    private readonly uploads: S3Uploads,
    initialBytes: number,
    private readonly partBytes: number,
  ) {
    this.buffer = uploads.takeBuffer(Math.min(initialBytes, partBytes));
  }

  async append(data: Uint8Array): Promise<void> {
    if (this.done) throw new Error('append after finish');
    let at = 0;
    while (at < data.length) {
      if (this.filled === this.buffer.length) this.makeRoom();
      const n = Math.min(data.length - at, this.buffer.length - this.filled);
      const piece = data.subarray(at, at + n);
      this.buffer.set(piece, this.filled);
      this.hash.update(piece);
      this.filled += n;
      this.size += n;
      at += n;
    }
  }

  /** A full buffer grows up to a part's size; a full part goes up. */
  private makeRoom(): void {
    if (this.buffer.length >= this.partBytes) return this.sendPart();
    const grown = this.uploads.takeBuffer(Math.min(this.partBytes, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.filled);
    this.uploads.giveBack(this.buffer);
    this.buffer = grown;
  }

  /** Starts uploading the full buffer as the next part; a fresh buffer takes the next bytes. */
  private sendPart(): void {
    this.uploadId ??= this.uploads.startMultipart();
    const part = this.parts.length + 1;
    const bytes = this.buffer.subarray(0, this.filled);
    const full = this.buffer;
    const start = this.bufferStart;
    const sha256 = this.hash.digest('hex');
    this.hash = createHash('sha256');
    this.sending.set(start, bytes);
    const upload = this.uploadId.then(async (id) => {
      const etag = await this.uploads.uploadPart(id, part, bytes, sha256);
      return { part, etag, sha256 };
    });
    upload.then(
      () => {
        this.sending.delete(start);
        this.uploads.giveBack(full);
      },
      () => {},
    );
    this.parts.push(upload);
    this.bufferStart += this.filled;
    this.buffer = this.uploads.takeBuffer(this.partBytes);
    this.filled = 0;
  }

  /** Bytes still in memory: the part being filled and parts being uploaded (not those sent). */
  async read(offset: number, length: number): Promise<Buffer> {
    if (offset + length > this.size) throw new RangeError(`bytes past the end of the blob`);
    if (offset >= this.bufferStart) {
      const from = offset - this.bufferStart;
      return Buffer.from(this.buffer.subarray(from, from + length));
    }
    for (const [start, bytes] of this.sending)
      if (offset >= start && offset + length <= start + bytes.length)
        return Buffer.from(bytes.subarray(offset - start, offset - start + length));
    throw Object.assign(new Error(`bytes ${offset}-${offset + length} of this blob were sent`), {
      code: 'NOT_BUFFERED',
    });
  }

  async finish(): Promise<void> {
    this.done = true;
    try {
      if (!this.uploadId) {
        const bytes = this.buffer.subarray(0, this.filled);
        await this.uploads.putWhole(bytes, this.hash.digest('hex'));
        return;
      }
      if (this.filled > 0) this.sendPart();
      const parts = await Promise.all(this.parts);
      await this.uploads.completeMultipart(await this.uploadId, parts);
    } catch (err) {
      await this.abort();
      throw err;
    } finally {
      this.release();
    }
  }

  async abort(): Promise<void> {
    this.done = true;
    await Promise.allSettled(this.parts);
    const id = await this.uploadId?.catch(() => undefined);
    // A multipart upload left open is billed for its parts until aborted.
    if (id) await this.uploads.abortMultipart(id).catch(() => {});
    this.release();
  }

  private release(): void {
    if (this.filled >= 0) this.uploads.giveBack(this.buffer);
    this.filled = -1;
  }
}
