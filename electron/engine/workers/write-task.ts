import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { createHasher, type HashAlgorithm, type HashFn } from '../hashing';
import { codecFor, decodeObject, EncodingError } from '../storage/packs/codec';
import type { WriteChunk, WriteResult, WriteTask } from './protocol';

/**
 * The worker's side of a restore: reads the chunks a local repository holds straight from their
 * packs (runs of chunks that lie one after another in a pack in one read), takes the others from
 * the bytes the main thread sent, hashes each, and writes the whole run into the destination in
 * one go. Synchronous, in a worker thread: a read or write from the page cache costs less here
 * than a trip through libuv's thread pool, and the main thread only hands out work.
 */
export class ChunkWriter {
  private readonly hashers = new Map<HashAlgorithm, HashFn>();
  /** One buffer, grown to the largest task so far and reused. */
  private scratch = new ArrayBuffer(0);

  async run(task: WriteTask): Promise<WriteResult> {
    const hash = await this.hasher(task.algorithm);
    const total = task.chunks.reduce((n, c) => n + c.length, 0);
    const fromRepository = task.chunks.some((c) => c.from);
    const encoded = task.chunks.some((c) => c.encoded);
    for (const c of task.chunks) if (c.encoded) await codecFor(c.encoded.encoding);
    let bytes: Uint8Array;
    if (!fromRepository && !encoded && task.data && task.data.length === total) bytes = task.data;
    else {
      if (this.scratch.byteLength < total) this.scratch = new ArrayBuffer(total);
      bytes = new Uint8Array(this.scratch, 0, total);
      const failed = this.gather(task, bytes);
      if (failed) return failed;
    }
    let at = 0;
    for (const [index, chunk] of task.chunks.entries()) {
      const actual = hash(bytes.subarray(at, at + chunk.length));
      if (actual !== chunk.hash) return { type: 'corrupt', index, actual };
      at += chunk.length;
    }
    try {
      for (let done = 0; done < total;)
        done += writeSync(task.fd, bytes, done, total - done, task.position + done);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { type: 'error', message: e.message, ...(e.code ? { code: e.code } : {}) };
    }
    return { type: 'written', bytes: total };
  }

  /** Fills `bytes` with the chunks in order; says which chunk could not be read, if one. */
  private gather(task: WriteTask, bytes: Uint8Array): WriteResult | undefined {
    const files = new Map<string, number>();
    let at = 0;
    let dataAt = 0;
    try {
      for (let i = 0; i < task.chunks.length;) {
        const chunk = task.chunks[i] as WriteTask['chunks'][number];
        const from = chunk.from;
        if (!from) {
          const data = task.data;
          if (!data || dataAt + chunk.length > data.length)
            return {
              type: 'unreadable',
              index: i,
              message: 'the bytes sent are shorter than the chunks without a source',
            };
          // An encoded chunk's stored bytes lie at the start of its place.
          const failed = chunk.encoded
            ? this.decodeInto(
                chunk,
                data.subarray(dataAt, dataAt + chunk.encoded.storedLength),
                bytes,
                at,
                i,
              )
            : void bytes.set(data.subarray(dataAt, dataAt + chunk.length), at);
          if (failed) return failed;
          dataAt += chunk.length;
          at += chunk.length;
          i++;
          continue;
        }
        if (chunk.encoded) {
          const stored = Buffer.allocUnsafe(chunk.encoded.storedLength);
          const failed = this.readAt(files, from.file, stored, 0, stored.length, from.offset, i);
          if (failed) return failed;
          const undecodable = this.decodeInto(chunk, stored, bytes, at, i);
          if (undecodable) return undecodable;
          at += chunk.length;
          i++;
          continue;
        }
        // The chunks after this one that follow it in the same pack come in the same read.
        let end = i + 1;
        let length = chunk.length;
        for (;;) {
          const next = task.chunks[end];
          if (
            next?.from?.file !== from.file ||
            next.encoded ||
            next.from.offset !== from.offset + length
          )
            break;
          length += next.length;
          end++;
        }
        const failed = this.readAt(files, from.file, bytes, at, length, from.offset, i);
        if (failed) return failed;
        at += length;
        i = end;
      }
    } finally {
      // Opened for this task only: a pack gc removes is not kept alive by a worker.
      for (const fd of files.values()) closeSync(fd);
    }
    return undefined;
  }

  /** Reads `length` bytes of a file at `position` into `into` at `at`; says why not, if it fails. */
  private readAt(
    files: Map<string, number>,
    file: string,
    into: Uint8Array,
    at: number,
    length: number,
    position: number,
    index: number,
  ): WriteResult | undefined {
    try {
      let fd = files.get(file);
      if (fd === undefined) {
        fd = openSync(file, 'r');
        files.set(file, fd);
      }
      for (let done = 0; done < length;) {
        const n = readSync(fd, into, at + done, length - done, position + done);
        if (n === 0) throw Object.assign(new Error('unexpected end of file'), { code: 'EOF' });
        done += n;
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return {
        type: 'unreadable',
        index,
        message: `${file}: ${e.message}`,
        ...(e.code ? { code: e.code } : {}),
      };
    }
    return undefined;
  }

  /** Decodes an encoded chunk's stored bytes into `bytes` at `at`; says why not, if it fails. */
  private decodeInto(
    chunk: WriteChunk,
    stored: Uint8Array,
    bytes: Uint8Array,
    at: number,
    index: number,
  ): WriteResult | undefined {
    const encoded = chunk.encoded as NonNullable<WriteChunk['encoded']>;
    try {
      decodeObject(encoded.encoding, stored, chunk.length, bytes.subarray(at, at + chunk.length));
    } catch (err) {
      if (!(err instanceof EncodingError)) throw err;
      return {
        type: 'unreadable',
        index,
        message: `its stored bytes in ${encoded.where} are damaged: ${err.message}`,
        code: 'BAD_OBJECT',
      };
    }
    return undefined;
  }

  private async hasher(algorithm: HashAlgorithm): Promise<HashFn> {
    let hash = this.hashers.get(algorithm);
    if (!hash) {
      hash = await createHasher(algorithm);
      this.hashers.set(algorithm, hash);
    }
    return hash;
  }
}
