import type { HashFn } from '../hashing';
import { DEFAULT_PROFILE, type ChunkingParams } from './params';
import type { CutScanner } from './scanner';
import { createScanner, bytesOf, type ByteSource, type ScannerKind } from './stream';

// Chunking guided by a previous version of the file. A content-defined cut depends only on the
// chunk's start and the bytes from there to the cut: the scanner skips minSize bytes, rolls its
// hash from zero, and cuts at the first position that meets the condition (or at maxSize). So
// when a chunk starts at `s` and the bytes [s, s + L) are those of a chunk the previous version
// cut (same hash), the scanner would cut at s + L too. The guided chunker therefore hashes the
// bytes of the chunk it expects next (the one that followed in the previous version) and, when
// the hash matches, takes the cut without scanning; otherwise it scans from `s` as usual until a
// chunk it cuts is one the previous version has, and predicts again from there. The cut points
// are exactly the scanner's; an unchanged stretch costs one hash per byte instead of a scan and
// a hash. The previous version's last chunk ended at its end of file, not at a cut: it is only
// predicted where the new file ends at the same place.

/** The chunks of a previous version of a file, in order. */
export class ChunkGuide {
  private index: Map<string, number> | undefined;

  constructor(
    readonly hashes: readonly string[],
    readonly lengths: readonly number[],
  ) {}

  get count(): number {
    return this.hashes.length;
  }

  /** The position of a chunk with this hash (the first, for repeats), or -1. */
  find(hash: string): number {
    if (!this.index) {
      this.index = new Map();
      for (let i = this.hashes.length - 1; i >= 0; i--) this.index.set(this.hashes[i] as string, i);
    }
    return this.index.get(hash) ?? -1;
  }

  /** 36 bytes per chunk (digest, little-endian length), shared by workers without a copy. */
  encode(): SharedArrayBuffer {
    const shared = new SharedArrayBuffer(this.count * 36);
    const out = Buffer.from(shared);
    for (let i = 0; i < this.count; i++) {
      out.write(this.hashes[i] as string, i * 36, 'hex');
      out.writeUInt32LE(this.lengths[i] as number, i * 36 + 32);
    }
    return shared;
  }

  static decode(shared: SharedArrayBuffer): ChunkGuide {
    const buf = Buffer.from(shared);
    const count = Math.floor(buf.length / 36);
    const hashes = new Array<string>(count);
    const lengths = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      hashes[i] = buf.toString('hex', i * 36, i * 36 + 32);
      lengths[i] = buf.readUInt32LE(i * 36 + 32);
    }
    return new ChunkGuide(hashes, lengths);
  }

  static of(chunks: readonly { hash: string; length: number }[]): ChunkGuide {
    return new ChunkGuide(
      chunks.map((c) => c.hash),
      chunks.map((c) => c.length),
    );
  }
}

export interface HashedChunk {
  /** Offset of the chunk's first byte in the stream. */
  offset: number;
  length: number;
  hash: string;
  /** A view into the source's buffer, or a copy when the chunk spans several. */
  data: Uint8Array;
  /** The guide has this chunk (so its previous version stored it). */
  known: boolean;
}

export interface GuidedStats {
  /** Chunks taken on a matching prediction, without a scan. */
  predicted: number;
  /** Predictions whose hash did not match (one wasted hash each). */
  mispredicted: number;
}

/** Longest stretch scanned at once: bytes scanned past a chunk the guide knows are wasted. */
function scanPiece(params: ChunkingParams): number {
  return 4 * params.maxSize;
}

export interface ChunkAndHashOptions {
  guide?: ChunkGuide | undefined;
  stats?: GuidedStats;
  /**
   * Called with each source buffer once no chunk still to come needs it, so the source can
   * reuse it. With it, a chunk's `data` is only valid until the next chunk is asked for.
   */
  recycle?: (buffer: Uint8Array) => void;
  kind?: ScannerKind;
  /** A scanner to reuse (for these params; it is reset before use), instead of a new one. */
  scanner?: CutScanner;
}

/**
 * Cuts a byte stream into content-defined chunks and hashes each, predicting chunks from the
 * guide where it has one. Yields exactly the chunks (and hashes) that scanning alone would.
 */
export async function* chunkAndHash(
  source: ByteSource,
  params: ChunkingParams = DEFAULT_PROFILE,
  hash: HashFn,
  options: ChunkAndHashOptions = {},
): AsyncGenerator<HashedChunk> {
  const { guide, stats, recycle, kind = 'wasm' } = options;
  const scanner = options.scanner ?? createScanner(params, kind);
  const input = bytesOf(source)[Symbol.asyncIterator]();
  /** Buffers from `windowStart` on; the first holds the current chunk's start. */
  const blocks: Uint8Array[] = [];
  let windowStart = 0;
  let windowEnd = 0;
  let ended = false;

  /** Reads until the window holds `end`'s byte (or the stream ends); true if it does. */
  const fill = async (end: number): Promise<boolean> => {
    while (windowEnd < end && !ended) {
      const next = await input.next();
      if (next.done) ended = true;
      else if (next.value.length > 0) {
        const block =
          next.value instanceof Uint8Array ? next.value : new Uint8Array(next.value as ArrayBuffer);
        blocks.push(block);
        windowEnd += block.length;
      }
    }
    return windowEnd >= end;
  };
  /** Forgets the buffers wholly before `offset` (chunks handed out keep their own views). */
  const release = (offset: number) => {
    while (blocks.length > 0 && windowStart + (blocks[0] as Uint8Array).length <= offset) {
      const block = blocks.shift() as Uint8Array;
      windowStart += block.length;
      recycle?.(block);
    }
  };
  /** The bytes [from, to) of the window: a view when they lie in one buffer. */
  const bytes = (from: number, to: number): Uint8Array => {
    let at = windowStart;
    let k = 0;
    while (at + (blocks[k] as Uint8Array).length <= from) at += (blocks[k++] as Uint8Array).length;
    const first = blocks[k] as Uint8Array;
    if (to - at <= first.length) return first.subarray(from - at, to - at);
    const out = new Uint8Array(to - from);
    let filled = 0;
    let pos = from;
    while (filled < out.length) {
      const block = blocks[k++] as Uint8Array;
      const piece = block.subarray(pos - at, Math.min(block.length, to - at));
      out.set(piece, filled);
      filled += piece.length;
      at += block.length;
      pos += piece.length;
    }
    return out;
  };

  const piece = scanPiece(params);
  let start = 0; // the current chunk's start
  let expect = -1; // the guide's chunk expected to start at `start`, or -1
  try {
    for (;;) {
      release(start);
      if (expect >= 0 && guide) {
        const length = guide.lengths[expect] as number;
        const last = expect === guide.count - 1;
        // A non-final chunk needs its bytes; the final one also needs the stream to end there.
        const have = await fill(start + length + (last ? 1 : 0));
        const fits = last ? !have && windowEnd === start + length : have;
        if (fits) {
          const data = bytes(start, start + length);
          const digest = hash(data);
          if (digest === guide.hashes[expect]) {
            if (stats) stats.predicted++;
            yield { offset: start, length, hash: digest, data, known: true };
            start += length;
            expect = last ? -1 : expect + 1;
            continue;
          }
          if (stats) stats.mispredicted++;
        }
        expect = -1;
      }

      // Scan from the chunk's start until a cut chunk is one the guide knows (or to the end).
      scanner.reset();
      let scanned = start;
      scanning: for (;;) {
        await fill(scanned + 1);
        if (scanned >= windowEnd) {
          // End of stream: what is left is the last chunk.
          if (start < windowEnd) {
            const data = bytes(start, windowEnd);
            const digest = hash(data);
            const known = guide ? guide.find(digest) >= 0 : false;
            yield { offset: start, length: windowEnd - start, hash: digest, data, known };
            start = windowEnd;
          }
          return;
        }
        await fill(scanned + piece);
        const to = Math.min(windowEnd, scanned + piece);
        const cuts = scanner.push(bytes(scanned, to));
        for (const cut of cuts) {
          const end = scanned + cut;
          const data = bytes(start, end);
          const digest = hash(data);
          const known = guide ? guide.find(digest) : -1;
          yield { offset: start, length: end - start, hash: digest, data, known: known >= 0 };
          start = end;
          if (known >= 0 && known < (guide as ChunkGuide).count - 1) {
            expect = known + 1;
            break scanning;
          }
        }
        scanned = to;
        release(start);
      }
    }
  } finally {
    await input.return?.(undefined);
  }
}
