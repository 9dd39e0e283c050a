// A worker thread that chunks a byte source and hashes each chunk, so the main thread (the UI's
// event loop, or the CLI's progress) never stalls on a big file.
import { createReadStream } from 'node:fs';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { chunkStream } from '../chunking/stream';
import { createHasher } from '../hashing';
import type { FromWorker, HashedChunk, JobStart, ToWorker } from './protocol';

/** Bytes of chunk data in flight to the main thread before the worker waits for credit. */
const BUDGET = 32 * 1024 * 1024;
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_CHUNKS = 512;

if (!parentPort) throw new Error('chunk-hash-worker must run as a worker thread');
parentPort.on('message', (message: { job: JobStart; port: MessagePort }) => {
  void runJob(message.job, message.port);
});

async function runJob(job: JobStart, port: MessagePort): Promise<void> {
  const send = (message: FromWorker, transfer: ArrayBuffer[] = []) =>
    port.postMessage(message, transfer);
  let outstanding = 0;
  let cancelled = false;
  let wakeCredit: (() => void) | undefined;
  let wakeData: ((m: ToWorker) => void) | undefined;
  const inbox: ToWorker[] = [];

  port.on('message', (message: ToWorker) => {
    if (message.type === 'credit') {
      outstanding -= message.bytes;
      wakeCredit?.();
    } else if (message.type === 'cancel') {
      cancelled = true;
      wakeCredit?.();
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
    let batch: HashedChunk[] = [];
    let batchBytes = 0;
    let bytesRead = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const transfer = job.withData
        ? batch.map((c) => (c.data as Uint8Array).buffer as ArrayBuffer)
        : [];
      const credit = job.withData ? batchBytes : 0;
      outstanding += credit;
      send({ type: 'chunks', chunks: batch, bytesRead }, transfer);
      batch = [];
      batchBytes = 0;
      while (outstanding > BUDGET && !cancelled)
        await new Promise<void>((resolve) => (wakeCredit = resolve));
    };
    for await (const chunk of chunkStream(source, job.params)) {
      if (cancelled) break;
      bytesRead = chunk.offset + chunk.length;
      const item: HashedChunk = {
        offset: chunk.offset,
        length: chunk.length,
        hash: hash(chunk.data),
      };
      // A copy the main thread can own: the chunk may be a view into a shared read buffer.
      if (job.withData) item.data = chunk.data.slice();
      batch.push(item);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH_BYTES || batch.length >= BATCH_CHUNKS) await flush();
    }
    if ('destroy' in source) source.destroy();
    await flush();
    send({ type: 'done', bytesRead });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    send({ type: 'error', message: e.message, code: e.code });
  } finally {
    port.close();
  }
}
