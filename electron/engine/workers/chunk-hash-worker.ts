// A worker thread that chunks a byte source and hashes each chunk, so the main thread (the UI's
// event loop, or the CLI's progress) never stalls on a big file. It sends chunk hashes in batches
// and holds each batch's bytes until the main thread says which chunks it needs (the ones the
// repository does not hold yet): a warm push moves almost no bytes between threads, and the
// bytes uploaded are exactly the bytes that were hashed.
import { parentPort, type MessagePort } from 'node:worker_threads';
import type { CutScanner } from '../chunking/scanner';
import { ChunkGuide, chunkAndHash, type HashedChunk } from '../chunking/guided';
import { createScanner } from '../chunking/stream';
import { createHasher } from '../hashing';
import { FileBlocks } from './file-blocks';
import {
  RECYCLED_BYTES,
  toColumns,
  type ChunkInfo,
  type FromWorker,
  type JobStart,
  type SegmentRange,
  type DeltaResult,
  type DeltaTask,
  type ToWorker,
  type WriteTask,
} from './protocol';
import { deltaSums } from './delta-task';
import { codecFor, encodeChunk } from '../storage/packs/codec';
import { ChunkWriter } from './write-task';

const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_CHUNKS = 512;
/** Batches whose bytes the worker holds, waiting for the main thread's answer. */
const MAX_HELD = 4;

if (!parentPort) throw new Error('chunk-hash-worker must run as a worker thread');
/**
 * Buffers the chunks a batch hands over are copied into (one per take), sent back by the pool once
 * the chunks are stored: a push moves gigabytes through a few buffers, with no fresh memory to
 * fault in and no garbage for either thread's collector.
 */
const spareBuffers: ArrayBuffer[] = [];
const SPARE_BUFFERS = 8;
const TRANSFER_BUFFER_BYTES = 5 << 20;

function transferBuffer(bytes: number): ArrayBuffer {
  // A few new chunks of a mostly known batch get a buffer of their own size (not sent back).
  if (bytes < RECYCLED_BYTES) return new ArrayBuffer(bytes);
  const index = spareBuffers.findIndex((b) => b.byteLength >= bytes);
  if (index >= 0) return spareBuffers.splice(index, 1)[0] as ArrayBuffer;
  return new ArrayBuffer(Math.max(bytes, TRANSFER_BUFFER_BYTES));
}

/** Restores: chunks verified and written into a file (see write-task). */
const writer = new ChunkWriter();

parentPort.on(
  'message',
  (
    message:
      | { job: JobStart; port: MessagePort }
      | { task: WriteTask; port: MessagePort }
      | { delta: DeltaTask; port: MessagePort }
      | { recycle: ArrayBuffer },
  ) => {
    if ('recycle' in message) {
      if (spareBuffers.length < SPARE_BUFFERS) spareBuffers.push(message.recycle);
      return;
    }
    if ('delta' in message) {
      const { delta, port } = message;
      let result: DeltaResult;
      try {
        result = { type: 'sums', sums: deltaSums(delta.kind, delta.before, delta.after) };
      } catch (err) {
        result = { type: 'error', message: (err as Error).message };
      }
      port.postMessage(result);
      port.close();
      return;
    }
    if ('task' in message) {
      const { port } = message;
      const spare = message.task.data?.buffer;
      void writer
        .run(message.task)
        .catch((err: Error) => ({ type: 'error' as const, message: err.message }))
        .then((result) => {
          // The bytes the task came with go back, for the next task's download.
          if (spare instanceof ArrayBuffer) port.postMessage({ ...result, spare }, [spare]);
          else port.postMessage(result);
          port.close();
        });
      return;
    }
    void runJob(message.job, message.port);
  },
);

/** Read blocks free for reuse, kept from one job to the next. */
const freeBlocks: ArrayBuffer[] = [];

/**
 * Scanners kept from one job to the next (each holds a WebAssembly memory of its own): one for
 * the chunks, one for SyncWatch.
 */
let scanners: { key: string; chunks: CutScanner; shadow: CutScanner } | undefined;
function scannersFor(params: JobStart['params']): { chunks: CutScanner; shadow: CutScanner } {
  const key = `${params.minSize}/${params.avgSize}/${params.maxSize}`;
  if (scanners?.key !== key)
    scanners = { key, chunks: createScanner(params), shadow: createScanner(params) };
  scanners.chunks.reset();
  scanners.shadow.reset();
  return scanners;
}

/** The last guide decoded: a file's segments all bring the same one. */
let lastGuide: { key: string; guide: ChunkGuide } | undefined;
function guideOf(job: JobStart): ChunkGuide | undefined {
  if (!job.guide) return undefined;
  if (lastGuide?.key !== job.guide.key)
    lastGuide = { key: job.guide.key, guide: ChunkGuide.decode(job.guide.chunks) };
  return lastGuide.guide;
}

async function runJob(job: JobStart, port: MessagePort): Promise<void> {
  const send = (message: FromWorker, transfer: ArrayBuffer[] = []) =>
    port.postMessage(message, transfer);
  /** Per held batch, each chunk's bytes (views into read blocks; none for a known chunk). */
  const held = new Map<number, (Uint8Array[] | undefined)[]>();
  let blocks: FileBlocks | undefined;
  let cancelled = false;
  let wakeHeld: (() => void) | undefined;
  let wakeData: ((m: ToWorker) => void) | undefined;
  const inbox: ToWorker[] = [];

  port.on('message', (message: ToWorker) => {
    if (message.type === 'take') {
      const bytes = held.get(message.batch) ?? [];
      held.delete(message.batch);
      // A held chunk is views into read blocks: the chunks taken are copied into one new
      // buffer (not zero-filled first), which is transferred, not copied again.
      const chunks = message.indexes.map((i) => bytes[i] as Uint8Array[]);
      const size = (pieces: Uint8Array[]) => pieces.reduce((n, p) => n + p.length, 0);
      const out = transferBuffer(chunks.reduce((n, c) => n + size(c), 0));
      let at = 0;
      const data = chunks.map((pieces) => {
        const copy = new Uint8Array(out, at, size(pieces));
        let filled = 0;
        for (const piece of pieces) {
          copy.set(piece, filled);
          filled += piece.length;
        }
        at += copy.length;
        return copy;
      });
      for (const pieces of bytes) for (const view of pieces ?? []) blocks?.unpin(view);
      const encodings = job.compression ? compressInPlace(job.compression, data) : undefined;
      send({ type: 'taken', batch: message.batch, data, ...(encodings ? { encodings } : {}) }, [
        out,
      ]);
      wakeHeld?.();
    } else if (message.type === 'cancel') {
      cancelled = true;
      wakeHeld?.();
      wakeData?.({ type: 'end' });
    } else if (wakeData) {
      const wake = wakeData;
      wakeData = undefined;
      wake(message);
    } else inbox.push(message);
  });

  async function* streamed(): AsyncGenerator<Uint8Array> {
    for (;;) {
      send({ type: 'needData' });
      const next =
        inbox.shift() ?? (await new Promise<ToWorker>((resolve) => (wakeData = resolve)));
      if (next.type !== 'data' || cancelled) return;
      yield next.bytes;
    }
  }

  try {
    if (job.compression) await codecFor(job.compression);
    const hash = await createHasher(job.algorithm);
    const range = job.range;
    const base = range?.start ?? 0;
    const file = job.path ? new FileBlocks(job.path, base, freeBlocks) : undefined;
    blocks = file;
    const reused = scannersFor(job.params);
    const sync =
      range?.next !== undefined ? new SyncWatch(reused.shadow, range.next, range) : undefined;
    const source = file ? (sync ? sync.tap(file, base) : file) : streamed();
    const headUntil = range?.headUntil ?? 0;
    const batch = new BatchBuilder(file);
    let bytesRead = 0;
    let nextBatch = 0;
    let head = headUntil > base;
    const flush = async () => {
      if (batch.empty) return;
      const id = nextBatch++;
      const { columns, bytes } = batch.drain();
      if (bytes) held.set(id, bytes);
      send({ type: 'batch', batch: id, chunks: columns, bytesRead, ...(head ? { head } : {}) }, [
        columns.offsets.buffer as ArrayBuffer,
        columns.lengths.buffer as ArrayBuffer,
        columns.known.buffer as ArrayBuffer,
      ]);
      while (held.size >= MAX_HELD && !cancelled)
        await new Promise<void>((resolve) => (wakeHeld = resolve));
      // Reads are synchronous: let the port's messages (takes, cancel) in between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
    };
    const stats = { predicted: 0, mispredicted: 0 };
    const chunks$ = chunkAndHash(source, job.params, hash, {
      guide: guideOf(job),
      stats,
      scanner: reused.chunks,
      ...(file ? { recycle: (block: Uint8Array) => file.recycle(block) } : {}),
    });
    // The per-chunk loop is a small function of its own: an async function resumed per chunk
    // is optimized whole, and runJob as a whole is costly to compile.
    const consume = async () => {
      for await (const chunk of chunks$) {
        if (cancelled) break;
        const offset = base + chunk.offset;
        if (head && offset >= headUntil) {
          await flush();
          head = false;
        }
        bytesRead = chunk.offset + chunk.length;
        if (batch.add(chunk, offset)) await flush();
        if (sync) {
          const verdict = sync.check(offset + chunk.length);
          if (verdict === 'synced') break;
          if (verdict === 'unsynced') send({ type: 'unsynced' });
        }
      }
    };
    await consume();
    file?.close();
    await flush();
    // Answer the last takes before saying done.
    while (held.size > 0 && !cancelled) await new Promise<void>((resolve) => (wakeHeld = resolve));
    send({ type: 'done', bytesRead, ...stats });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    send({ type: 'error', message: e.message, code: e.code });
  } finally {
    port.close();
  }
}

/**
 * Compresses the chunks of a take where it pays: an encoded chunk's stored bytes replace its
 * bytes at the start of its place in the buffer (they are fewer), and its view shrinks to them.
 * Returns each chunk's encoding.
 */
function compressInPlace(
  scheme: NonNullable<JobStart['compression']>,
  data: Uint8Array[],
): Uint8Array {
  const encodings = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const chunk = data[i] as Uint8Array;
    const stored = encodeChunk(scheme, chunk);
    if (stored.encoding === 0) continue;
    chunk.set(stored.bytes);
    data[i] = chunk.subarray(0, stored.bytes.length);
    encodings[i] = stored.encoding;
  }
  return encodings;
}

/**
 * The chunks of the batch being filled, with the bytes of those the guide does not know (views
 * into read blocks, pinned until the main thread takes or drops them).
 */
class BatchBuilder {
  private chunks: ChunkInfo[] = [];
  private bytes: (Uint8Array[] | undefined)[] = [];
  private size = 0;
  private unknown = 0;

  constructor(private readonly file: FileBlocks | undefined) {}

  get empty(): boolean {
    return this.chunks.length === 0;
  }

  /** Adds a chunk (at `offset` in the file); true when the batch is full. */
  add(chunk: HashedChunk, offset: number): boolean {
    if (chunk.known) {
      this.chunks.push({ offset, length: chunk.length, hash: chunk.hash, known: true });
      this.bytes.push(undefined);
    } else {
      this.chunks.push({ offset, length: chunk.length, hash: chunk.hash });
      // Views into read blocks, which are not reused while the views are held.
      for (const piece of chunk.pieces) this.file?.pin(piece);
      this.bytes.push(chunk.pieces);
      this.unknown++;
    }
    this.size += chunk.length;
    return this.size >= BATCH_BYTES || this.chunks.length >= BATCH_CHUNKS;
  }

  /** The batch in columns, and its chunks' bytes when any are to be held; starts a new batch. */
  drain(): { columns: ReturnType<typeof toColumns>; bytes?: (Uint8Array[] | undefined)[] } {
    const columns = toColumns(this.chunks);
    const bytes = this.unknown > 0 ? this.bytes : undefined;
    this.chunks = [];
    this.bytes = [];
    this.size = 0;
    this.unknown = 0;
    return bytes ? { columns, bytes } : { columns };
  }
}

/**
 * Watches for the cut this segment shares with the next one. A second scanner, fed the same bytes
 * from the next segment's start, finds the cut points the next segment's job finds; the first
 * chunk end of this job that is one of them is where the two sequences meet.
 */
class SyncWatch {
  private readonly scanner: CutScanner;
  /** Cut points of the next segment's sequence (file offsets), its start included. */
  private readonly cuts = new Set<number>();
  private readonly limit: number;
  private state: 'looking' | 'synced' | 'unsynced' = 'looking';

  constructor(
    scanner: CutScanner,
    private readonly next: number,
    range: SegmentRange,
  ) {
    this.scanner = scanner;
    this.cuts.add(next);
    this.limit = next + (range.syncWithin ?? 0);
  }

  /** Passes the file's bytes through, scanning those from `next` on (up to the limit). */
  *tap(source: Iterable<Uint8Array>, start: number): Generator<Uint8Array> {
    let at = start;
    for (const buf of source) {
      const end = at + buf.length;
      if (this.state === 'looking' && end > this.next && at <= this.limit) {
        const from = Math.max(0, this.next - at);
        for (const cut of this.scanner.push(buf.subarray(from))) this.cuts.add(at + from + cut);
      }
      at = end;
      yield buf;
    }
  }

  /** Called with each chunk's end: 'synced' when it is a common cut, 'unsynced' once when the search gives up. */
  check(end: number): 'synced' | 'unsynced' | undefined {
    if (this.state !== 'looking' || end < this.next) return undefined;
    if (this.cuts.has(end)) {
      this.state = 'synced';
      return 'synced';
    }
    if (end > this.limit) {
      this.state = 'unsynced';
      this.cuts.clear();
      return 'unsynced';
    }
    return undefined;
  }
}
