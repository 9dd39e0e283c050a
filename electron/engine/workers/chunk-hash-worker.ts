// A worker thread that chunks a byte source and hashes each chunk, so the main thread (the UI's
// event loop, or the CLI's progress) never stalls on a big file. It sends chunk hashes in batches
// and holds each batch's bytes until the main thread says which chunks it needs (the ones the
// repository does not hold yet): a warm push moves almost no bytes between threads, and the
// bytes uploaded are exactly the bytes that were hashed.
import { createReadStream } from 'node:fs';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { chunkStream } from '../chunking/stream';
import { createHasher } from '../hashing';
import type { ChunkInfo, FromWorker, JobStart, ToWorker } from './protocol';

const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_CHUNKS = 512;
/** Batches whose bytes the worker holds, waiting for the main thread's answer. */
const MAX_HELD = 4;

if (!parentPort) throw new Error('chunk-hash-worker must run as a worker thread');
parentPort.on('message', (message: { job: JobStart; port: MessagePort }) => {
  void runJob(message.job, message.port);
});

async function runJob(job: JobStart, port: MessagePort): Promise<void> {
  const send = (message: FromWorker, transfer: ArrayBuffer[] = []) =>
    port.postMessage(message, transfer);
  const held = new Map<number, Uint8Array[]>();
  let cancelled = false;
  let wakeHeld: (() => void) | undefined;
  let wakeData: ((m: ToWorker) => void) | undefined;
  const inbox: ToWorker[] = [];

  port.on('message', (message: ToWorker) => {
    if (message.type === 'take') {
      const bytes = held.get(message.batch) ?? [];
      held.delete(message.batch);
      // Own copies: a chunk may be a view into a shared read buffer (Buffer#slice would only
      // make another view of it).
      const data = message.indexes.map((i) => new Uint8Array(bytes[i] as Uint8Array));
      send(
        { type: 'taken', batch: message.batch, data },
        data.map((d) => d.buffer as ArrayBuffer),
      );
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
    const hash = await createHasher(job.algorithm);
    const source = job.path
      ? createReadStream(job.path, { highWaterMark: 1024 * 1024 })
      : streamed();
    let chunks: ChunkInfo[] = [];
    let bytes: Uint8Array[] = [];
    let batchBytes = 0;
    let bytesRead = 0;
    let nextBatch = 0;
    const flush = async () => {
      if (chunks.length === 0) return;
      const id = nextBatch++;
      held.set(id, bytes);
      send({ type: 'batch', batch: id, chunks, bytesRead });
      chunks = [];
      bytes = [];
      batchBytes = 0;
      while (held.size >= MAX_HELD && !cancelled)
        await new Promise<void>((resolve) => (wakeHeld = resolve));
    };
    for await (const chunk of chunkStream(source, job.params)) {
      if (cancelled) break;
      bytesRead = chunk.offset + chunk.length;
      chunks.push({ offset: chunk.offset, length: chunk.length, hash: hash(chunk.data) });
      bytes.push(chunk.data);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH_BYTES || chunks.length >= BATCH_CHUNKS) await flush();
    }
    if ('destroy' in source) source.destroy();
    await flush();
    // Answer the last takes before saying done.
    while (held.size > 0 && !cancelled) await new Promise<void>((resolve) => (wakeHeld = resolve));
    send({ type: 'done', bytesRead });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    send({ type: 'error', message: e.message, code: e.code });
  } finally {
    port.close();
  }
}
