import type { ChunkingParams } from '../chunking/params';
import type { HashAlgorithm } from '../hashing';

/** Messages between the chunk-and-hash pool (main thread) and its workers. */
export interface JobStart {
  type: 'start';
  params: ChunkingParams;
  algorithm: HashAlgorithm;
  /** A file to read in the worker, or bytes the main thread will send as 'data' messages. */
  path?: string;
  /** Whether to send each chunk's bytes back (needed to upload; not to only hash). */
  withData: boolean;
}

/** Main -> worker on the job's port. */
export type ToWorker =
  | { type: 'data'; bytes: Uint8Array }
  | { type: 'end' }
  | { type: 'credit'; bytes: number }
  | { type: 'cancel' };

export interface HashedChunk {
  offset: number;
  length: number;
  hash: string;
  /** Present when the job asked for data: the chunk's bytes, transferred. */
  data?: Uint8Array;
}

/** Worker -> main on the job's port. */
export type FromWorker =
  | { type: 'chunks'; chunks: HashedChunk[]; bytesRead: number }
  | { type: 'needData' }
  | { type: 'done'; bytesRead: number }
  | { type: 'error'; message: string; code?: string };
