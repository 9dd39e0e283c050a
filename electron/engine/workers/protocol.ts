import type { ChunkingParams } from '../chunking/params';
import type { HashAlgorithm } from '../hashing';

/** Messages between the chunk-and-hash pool (main thread) and its workers. */
export interface JobStart {
  type: 'start';
  params: ChunkingParams;
  algorithm: HashAlgorithm;
  /** A file to read in the worker, or bytes the main thread will send as 'data' messages. */
  path?: string;
}

/** Main -> worker on the job's port. */
export type ToWorker =
  | { type: 'data'; bytes: Uint8Array }
  | { type: 'end' }
  /** Send the bytes of these chunks of a held batch, then forget the batch. */
  | { type: 'take'; batch: number; indexes: number[] }
  | { type: 'cancel' };

export interface ChunkInfo {
  offset: number;
  length: number;
  hash: string;
}

/** Worker -> main on the job's port. */
export type FromWorker =
  | { type: 'batch'; batch: number; chunks: ChunkInfo[]; bytesRead: number }
  | { type: 'taken'; batch: number; data: Uint8Array[] }
  | { type: 'needData' }
  | { type: 'done'; bytesRead: number }
  | { type: 'error'; message: string; code?: string };
