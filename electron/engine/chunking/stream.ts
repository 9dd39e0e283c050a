import { DEFAULT_PROFILE, type ChunkingParams } from './params';
import { ReferenceScanner } from './reference';
import type { CutScanner } from './scanner';
import { WasmScanner } from './wasm';

export interface Chunk {
  /** Offset of the chunk's first byte in the stream. */
  offset: number;
  length: number;
  /**
   * The chunk's bytes. A view into the source's buffer when the chunk lies inside one (so a
   * source must not reuse a buffer it has yielded), a fresh copy when it spans several.
   */
  data: Uint8Array;
}

/** Anything that yields bytes: fs.ReadStream, a web ReadableStream, an (async) iterable. */
export type ByteSource =
  AsyncIterable<Uint8Array> | Iterable<Uint8Array> | ReadableStream<Uint8Array>;

export type ScannerKind = 'wasm' | 'reference';

export function createScanner(
  params: ChunkingParams = DEFAULT_PROFILE,
  kind: ScannerKind = 'wasm',
): CutScanner {
  return kind === 'wasm' ? new WasmScanner(params) : new ReferenceScanner(params);
}

function isWebStream(source: ByteSource): source is ReadableStream<Uint8Array> {
  return (
    typeof (source as ReadableStream).getReader === 'function' && !(Symbol.asyncIterator in source)
  );
}

/** Any ByteSource as one async iterable. */
export async function* bytesOf(source: ByteSource): AsyncGenerator<Uint8Array> {
  if (!isWebStream(source)) return yield* source;
  const reader = source.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Cuts a byte stream into content-defined chunks, in order. Memory is bounded by the largest
 * chunk plus the source's read buffer, whatever the stream's length; cut points are the same
 * whatever sizes the source's buffers have.
 */
export async function* chunkStream(
  source: ByteSource,
  params: ChunkingParams = DEFAULT_PROFILE,
  kind: ScannerKind = 'wasm',
): AsyncGenerator<Chunk> {
  const scanner = createScanner(params, kind);
  let pending: Uint8Array[] = []; // bytes of the current, unfinished chunk
  let pendingBytes = 0;
  let offset = 0; // stream offset of the current chunk's first byte
  for await (const raw of bytesOf(source)) {
    const buf = raw instanceof Uint8Array ? raw : new Uint8Array(raw as ArrayBufferLike);
    if (buf.length === 0) continue;
    let from = 0;
    for (const cut of scanner.push(buf)) {
      const piece = buf.subarray(from, cut);
      const length = pendingBytes + piece.length;
      const data = pendingBytes === 0 ? piece : concat([...pending, piece], length);
      yield { offset, length, data };
      offset += length;
      pending = [];
      pendingBytes = 0;
      from = cut;
    }
    if (from < buf.length) {
      pending.push(buf.subarray(from));
      pendingBytes += buf.length - from;
    }
  }
  if (pendingBytes > 0) yield { offset, length: pendingBytes, data: concat(pending, pendingBytes) };
}

/** Cut offsets (chunk ends) of a whole buffer: for tests and tools. */
export function cutPoints(
  data: Uint8Array,
  params: ChunkingParams = DEFAULT_PROFILE,
  kind: ScannerKind = 'wasm',
): number[] {
  const cuts = createScanner(params, kind).push(data);
  if (data.length > 0 && cuts[cuts.length - 1] !== data.length) cuts.push(data.length);
  return cuts;
}
