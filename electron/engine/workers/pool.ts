import { availableParallelism } from 'node:os';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { ChunkingParams } from '../chunking/params';
import { bytesOf, type ByteSource } from '../chunking/stream';
import type { HashAlgorithm } from '../hashing';
import type { DeltaSums } from './delta-task';
import {
  fromColumns,
  RECYCLED_BYTES,
  type ChunkInfo,
  type DeltaResult,
  type DeltaTask,
  type FromWorker,
  type JobStart,
  type SegmentRange,
  type ToWorker,
  type WriteResult,
  type WriteTask,
} from './protocol';

export interface ChunkHashJob {
  params: ChunkingParams;
  algorithm: HashAlgorithm;
  /** Read this file in the worker... */
  path?: string;
  /** ...or forward these bytes to it. */
  source?: ByteSource;
  /** With a path: chunk only this segment of the file (see chunkFile, which plans them). */
  range?: SegmentRange;
  /** The previous version of the file, to predict cuts from (see chunking/guided). */
  guide?: JobStart['guide'];
  /** Compress the chunks taken with this scheme where it pays (a format 3 repository's). */
  compression?: JobStart['compression'];
  /** Called at the end with how many chunks were predicted and mispredicted. */
  onStats?: (stats: { predicted: number; mispredicted: number }) => void;
  /** Called when a segment found no common cut with the next one and reads to the end. */
  onUnsynced?: () => void;
  signal?: AbortSignal;
}

/** A batch of hashed chunks, in stream order. Its bytes stay in the worker until taken. */
export interface ChunkBatch {
  chunks: ChunkInfo[];
  /** How far the worker has read the source (bytes read by this job). */
  bytesRead: number;
  /** A segment's first chunks, which the previous segment's job may also have cut (see chunkFile). */
  head?: boolean;
  /**
   * The bytes of the chunks at these indexes (in that order); the rest are dropped. Call it once
   * per batch, with [] when no bytes are needed: the worker holds a few batches at most.
   */
  take(indexes: number[]): Promise<TakenChunks>;
}

/**
 * Chunks' bytes as taken from a worker. With `encodings` (a job with compression), chunk i is its
 * stored bytes in encoding `encodings[i]` (0: the bytes themselves).
 */
export type TakenChunks = Uint8Array[] & { encodings?: Uint8Array };

function taken(data: Uint8Array[], encodings: Uint8Array | undefined): TakenChunks {
  const out: TakenChunks = data;
  if (encodings) out.encodings = encodings;
  return out;
}

export class WorkerJobError extends Error {
  override name = 'WorkerJobError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/**
 * Starts the worker script that sits beside this module: `.mjs`/`.js` when bundled (the CLI, the
 * app); `.ts` when running from source (tests, dev), through tsx's loader registered in the worker.
 */
function spawnWorker(): Worker {
  const here = import.meta.url;
  const ext = here.endsWith('.ts') ? '.ts' : here.endsWith('.mjs') ? '.mjs' : '.js';
  const url = new URL(`./chunk-hash-worker${ext}`, here);
  // A worker makes many small short-lived objects (chunk records, hashes): a small young
  // generation keeps its memory down at no measurable cost in speed.
  const options = { resourceLimits: { maxYoungGenerationSizeMb: 4 } };
  if (ext !== '.ts') return new Worker(url, options);
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/**
 * A pool of worker threads (one per core by default) that chunk and hash byte sources. Each job
 * runs on one worker; jobs beyond the pool's size wait their turn. Results stream back in order
 * with flow control, so a slow consumer bounds the memory a fast worker can fill.
 */
export class ChunkHashPool {
  private readonly idle: Worker[] = [];
  /** Every live worker. */
  private readonly workers = new Set<Worker>();
  /** Which worker a taken buffer came from (buffers of big takes are sent back to it). */
  private readonly takenFrom = new WeakMap<ArrayBuffer, Worker>();
  private readonly waiting: ((worker: Worker) => void)[] = [];
  private created = 0;
  private closed = false;

  constructor(readonly size = Math.max(1, availableParallelism())) {}

  /** Starts every worker now, so the first jobs do not wait for them to load. */
  prewarm(): void {
    while (!this.closed && this.created < this.size) {
      this.created++;
      const fresh = this.spawn();
      this.idle.push(fresh);
    }
  }

  private acquire(): Promise<Worker> {
    const worker = this.idle.pop();
    if (worker) return Promise.resolve(worker);
    if (this.created < this.size) {
      this.created++;
      return Promise.resolve(this.spawn());
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private spawn(): Worker {
    const worker = spawnWorker();
    worker.unref();
    this.workers.add(worker);
    return worker;
  }

  /**
   * Hands the buffer behind the chunks of a take back to the workers, for their next takes. Call
   * it only once nothing reads those chunks any more (every put of them has settled).
   */
  recycle(data: readonly Uint8Array[]): void {
    const buffer = data[0]?.buffer;
    if (!(buffer instanceof ArrayBuffer)) return;
    const worker = this.takenFrom.get(buffer);
    this.takenFrom.delete(buffer);
    // Back to the worker it came from, so each worker's spares match its own takes.
    if (worker && this.workers.has(worker)) worker.postMessage({ recycle: buffer }, [buffer]);
  }

  private release(worker: Worker, healthy: boolean): void {
    if (!healthy || this.closed) {
      this.workers.delete(worker);
      void worker.terminate();
      this.created--;
      const next = this.waiting.shift();
      if (next && !this.closed) void this.acquire().then(next);
      return;
    }
    const next = this.waiting.shift();
    if (next) next(worker);
    else this.idle.push(worker);
  }

  async *run(job: ChunkHashJob): AsyncGenerator<ChunkBatch> {
    if (this.closed) throw new Error('the chunk-and-hash pool is closed');
    job.signal?.throwIfAborted();
    const worker = await this.acquire();
    const { port1, port2 } = new MessageChannel();
    const queue: FromWorker[] = [];
    const takes = new Map<
      number,
      { resolve: (data: TakenChunks) => void; reject: (err: Error) => void }
    >();
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    const fail = (err: Error) => {
      failure ??= err;
      for (const t of takes.values()) t.reject(err);
      takes.clear();
      wake?.();
    };
    const onMessage = (message: FromWorker) => {
      if (message.type === 'taken') {
        const buffer = message.data[0]?.buffer;
        if (buffer instanceof ArrayBuffer && buffer.byteLength >= RECYCLED_BYTES)
          this.takenFrom.set(buffer, worker);
        takes.get(message.batch)?.resolve(taken(message.data, message.encodings));
        takes.delete(message.batch);
        return;
      }
      queue.push(message);
      wake?.();
    };
    const onAbort = () =>
      fail(job.signal?.reason instanceof Error ? job.signal.reason : new Error('aborted'));
    port1.on('message', onMessage);
    worker.on('error', fail);
    job.signal?.addEventListener('abort', onAbort);
    const start: JobStart = { type: 'start', params: job.params, algorithm: job.algorithm };
    if (job.path) start.path = job.path;
    if (job.range) start.range = job.range;
    if (job.guide) start.guide = job.guide;
    if (job.compression && job.compression !== 'none') start.compression = job.compression;
    worker.postMessage({ job: start, port: port2 }, [port2]);
    const send = (message: ToWorker, transfer: ArrayBuffer[] = []) =>
      port1.postMessage(message, transfer);
    const sourceIterator = job.source ? bytesOf(job.source) : undefined;
    let finished = false;
    try {
      for (;;) {
        if (failure) throw failure;
        job.signal?.throwIfAborted();
        const message = queue.shift();
        if (!message) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        if (message.type === 'needData') {
          const next = await sourceIterator?.next();
          if (!next || next.done) send({ type: 'end' });
          else {
            // The source may own its buffer; the worker gets its own copy.
            const bytes = new Uint8Array(next.value);
            send({ type: 'data', bytes }, [bytes.buffer as ArrayBuffer]);
          }
        } else if (message.type === 'batch') {
          const id = message.batch;
          const chunks = fromColumns(message.chunks);
          // A batch whose every chunk the guide knows is not held by the worker at all.
          const held = chunks.some((c) => !c.known);
          let taken = false;
          yield {
            chunks,
            bytesRead: message.bytesRead,
            ...(message.head ? { head: true } : {}),
            take: (indexes: number[]) => {
              const gone = indexes.find((i) => chunks[i]?.known);
              if (gone !== undefined)
                return Promise.reject(
                  new Error(
                    `chunk ${gone} of batch ${id} is one the guide knows: its bytes were not kept`,
                  ),
                );
              if (taken) return Promise.reject(new Error(`batch ${id} was already taken`));
              taken = true;
              if (!held) return Promise.resolve([]);
              if (failure) return Promise.reject(failure);
              return new Promise<TakenChunks>((resolve, reject) => {
                takes.set(id, { resolve, reject });
                send({ type: 'take', batch: id, indexes });
              });
            },
          };
        } else if (message.type === 'unsynced') {
          job.onUnsynced?.();
        } else if (message.type === 'error') {
          finished = true;
          throw new WorkerJobError(message.message, message.code);
        } else if (message.type === 'done') {
          finished = true;
          job.onStats?.({ predicted: message.predicted, mispredicted: message.mispredicted });
          return;
        }
      }
    } finally {
      port1.off('message', onMessage);
      worker.off('error', fail);
      job.signal?.removeEventListener('abort', onAbort);
      port1.close();
      void sourceIterator?.return(undefined);
      // A job left early (cancelled, consumer stopped) may still be running: end that worker.
      this.release(worker, finished && !failure);
    }
  }

  /**
   * Runs a restore's write task (see WriteTask) on the next free worker. The task's `data`, if
   * any, is transferred: the caller must not use it afterwards.
   */
  async write(task: WriteTask, signal?: AbortSignal): Promise<WriteResult> {
    // Moved, not copied, when the view starts an ArrayBuffer of its own (a Buffer may sit in a
    // slab shared with others: never moved).
    const data = task.data;
    const transfer =
      data?.buffer instanceof ArrayBuffer &&
      data.byteOffset === 0 &&
      (!Buffer.isBuffer(data) || data.byteLength === data.buffer.byteLength)
        ? [data.buffer]
        : [];
    return this.oneShot<WriteResult>({ task }, transfer, signal);
  }

  /**
   * The delta sums of two windows of a tensor (see DeltaTask), on the next free worker. The
   * windows' buffers are transferred when each is its own whole buffer (never a pooled slab).
   */
  async delta(task: DeltaTask, signal?: AbortSignal): Promise<DeltaSums> {
    const transfer: ArrayBuffer[] = [];
    for (const data of [task.before, task.after])
      if (
        data.buffer instanceof ArrayBuffer &&
        data.byteOffset === 0 &&
        data.byteLength === data.buffer.byteLength &&
        !transfer.includes(data.buffer)
      )
        transfer.push(data.buffer);
    const result = await this.oneShot<DeltaResult>({ delta: task }, transfer, signal);
    if (result.type === 'error') throw new WorkerJobError(result.message);
    return result.sums;
  }

  /**
   * Posts one message with a reply port to the next free worker and waits for its one reply; the
   * worker goes back to the pool, or is replaced when it failed.
   */
  private async oneShot<R>(
    message: object,
    transfer: ArrayBuffer[],
    signal: AbortSignal | undefined,
  ): Promise<R> {
    if (this.closed) throw new Error('the chunk-and-hash pool is closed');
    signal?.throwIfAborted();
    const worker = await this.acquire();
    const { port1, port2 } = new MessageChannel();
    let healthy = false;
    let onError: ((err: Error) => void) | undefined;
    try {
      const result = await new Promise<R>((resolve, reject) => {
        onError = reject;
        port1.once('message', resolve);
        worker.on('error', onError);
        worker.postMessage({ ...message, port: port2 }, [port2, ...transfer]);
      });
      healthy = true;
      return result;
    } finally {
      if (onError) worker.off('error', onError);
      port1.close();
      this.release(worker, healthy);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.workers.clear();
    const workers = this.idle.splice(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
