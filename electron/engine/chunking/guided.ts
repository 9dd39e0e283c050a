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

/**
 * A guide for workers from a manifest's chunk entries (see chunkEntries: the layout `decode`
 * reads), copied once into memory they share.
 */
export function sharedGuide(entries: Uint8Array): SharedArrayBuffer {
  const shared = new SharedArrayBuffer(entries.length);
  new Uint8Array(shared).set(entries);
  return shared;
}

export interface HashedChunk {
  /** Offset of the chunk's first byte in the stream. */
  offset: number;
  length: number;
  hash: string;
  /**
   * The chunk's bytes where they lie: views into the source's buffers, in order (one, unless the
   * chunk spans buffers). Nothing is copied to hash a chunk; a consumer copies what it keeps.
   */
  pieces: Uint8Array[];
  /** The chunk's bytes in one buffer: the view itself, or a copy when it spans several. */
  readonly data: Uint8Array;
  /** The guide has this chunk (so its previous version stored it). */
  known: boolean;
}

function hashedChunk(
  offset: number,
  length: number,
  hash: string,
  pieces: Uint8Array[],
  known: boolean,
): HashedChunk {
  return {
    offset,
    length,
    hash,
    pieces,
    known,
    get data() {
      return joinPieces(pieces, length);
    },
  };
}

/** Pieces as one buffer: the piece itself when there is one. */
export function joinPieces(pieces: readonly Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1) return pieces[0] as Uint8Array;
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
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
  const chunker = new GuidedChunker(params, hash, options);
  const input = bytesOf(source)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = chunker.step();
      if (next === NEED_INPUT) {
        const read = await input.next();
        if (read.done) chunker.end();
        else
          chunker.add(
            read.value instanceof Uint8Array
              ? read.value
              : new Uint8Array(read.value as ArrayBuffer),
          );
      } else if (next === END) return;
      else yield next;
    }
  } finally {
    await input.return?.(undefined);
  }
}

const NEED_INPUT = 0;
const END = 1;

/**
 * The chunker's state, stepped synchronously over the bytes at hand: each step hands out the next
 * chunk, or says it needs more input (or that the stream is over). Reading is left to the caller,
 * so the per-chunk work is small methods (which the JIT compiles quickly) rather than one long
 * async function.
 */
class GuidedChunker {
  private readonly guide: ChunkGuide | undefined;
  private readonly stats: GuidedStats | undefined;
  private readonly recycle: ((buffer: Uint8Array) => void) | undefined;
  private readonly scanner: CutScanner;
  private readonly piece: number;
  /** Buffers from `windowStart` on; the first holds the current chunk's start. */
  private readonly blocks: Uint8Array[] = [];
  private windowStart = 0;
  private windowEnd = 0;
  private ended = false;
  /** The current chunk's start. */
  private start = 0;
  /** The guide's chunk expected to start at `start`, or -1. */
  private expect = -1;
  /** While scanning: how far the scanner has read; -1 when a scan is to start at `start`. */
  private scanned = -1;
  /** Chunk ends the last scanned piece found, from `nextEnd` on not handed out yet. */
  private ends: number[] = [];
  private nextEnd = 0;

  constructor(
    params: ChunkingParams,
    private readonly hash: HashFn,
    options: ChunkAndHashOptions,
  ) {
    this.guide = options.guide;
    this.stats = options.stats;
    this.recycle = options.recycle;
    this.scanner = options.scanner ?? createScanner(params, options.kind ?? 'wasm');
    this.piece = scanPiece(params);
  }

  add(block: Uint8Array): void {
    if (block.length === 0) return;
    this.blocks.push(block);
    this.windowEnd += block.length;
  }

  end(): void {
    this.ended = true;
  }

  step(): HashedChunk | typeof NEED_INPUT | typeof END {
    this.release(this.start);
    if (this.expect >= 0) {
      const predicted = this.predict();
      if (predicted !== undefined) return predicted;
    }
    return this.scan();
  }

  /**
   * The guide's expected chunk, when the bytes at `start` hash to it; undefined when they do not
   * (scanning takes over from `start`).
   */
  private predict(): HashedChunk | typeof NEED_INPUT | undefined {
    const guide = this.guide as ChunkGuide;
    const expect = this.expect;
    const start = this.start;
    const length = guide.lengths[expect] as number;
    const last = expect === guide.count - 1;
    // A non-final chunk needs its bytes; the final one also needs the stream to end there.
    const need = start + length + (last ? 1 : 0);
    if (this.windowEnd < need && !this.ended) return NEED_INPUT;
    const have = this.windowEnd >= need;
    const fits = last ? !have && this.windowEnd === start + length : have;
    this.expect = -1;
    if (!fits) return undefined;
    const data = this.pieces(start, start + length);
    const digest = this.hash(data);
    if (digest !== guide.hashes[expect]) {
      if (this.stats) this.stats.mispredicted++;
      return undefined;
    }
    if (this.stats) this.stats.predicted++;
    this.start = start + length;
    this.expect = last ? -1 : expect + 1;
    return hashedChunk(start, length, digest, data, true);
  }

  /** Scans from the chunk's start until a cut chunk is one the guide knows (or to the end). */
  private scan(): HashedChunk | typeof NEED_INPUT | typeof END {
    if (this.scanned < 0) {
      this.scanner.reset();
      this.scanned = this.start;
      this.ends = [];
      this.nextEnd = 0;
    }
    for (;;) {
      if (this.nextEnd < this.ends.length) return this.cut(this.ends[this.nextEnd++] as number);
      if (this.scanned >= this.windowEnd) {
        if (!this.ended) return NEED_INPUT;
        // End of stream: what is left is the last chunk.
        return this.start < this.windowEnd ? this.cut(this.windowEnd) : END;
      }
      const to = Math.min(this.windowEnd, this.scanned + this.piece);
      if (to < this.scanned + this.piece && !this.ended) return NEED_INPUT;
      // Piece by piece: the scanner keeps its state between pushes, so cuts do not depend on
      // where the buffers end.
      this.ends = [];
      this.nextEnd = 0;
      let at = this.scanned;
      for (const piece of this.pieces(this.scanned, to)) {
        for (const cut of this.scanner.push(piece)) this.ends.push(at + cut);
        at += piece.length;
      }
      this.scanned = to;
    }
  }

  /** The chunk from `start` to a cut the scanner found; a known one ends the scan. */
  private cut(end: number): HashedChunk {
    const start = this.start;
    const data = this.pieces(start, end);
    const digest = this.hash(data);
    const known = this.guide ? this.guide.find(digest) : -1;
    this.start = end;
    if (known >= 0 && known < (this.guide as ChunkGuide).count - 1) {
      this.expect = known + 1;
      this.scanned = -1;
    }
    return hashedChunk(start, end - start, digest, data, known >= 0);
  }

  /** Forgets the buffers wholly before `offset` (chunks handed out keep their own views). */
  private release(offset: number): void {
    const blocks = this.blocks;
    while (blocks.length > 0 && this.windowStart + (blocks[0] as Uint8Array).length <= offset) {
      const block = blocks.shift() as Uint8Array;
      this.windowStart += block.length;
      this.recycle?.(block);
    }
  }

  /** The bytes [from, to) of the window as views into its buffers, in order (no copy). */
  private pieces(from: number, to: number): Uint8Array[] {
    const blocks = this.blocks;
    let at = this.windowStart;
    let k = 0;
    while (at + (blocks[k] as Uint8Array).length <= from) at += (blocks[k++] as Uint8Array).length;
    const first = blocks[k] as Uint8Array;
    if (to - at <= first.length) return [first.subarray(from - at, to - at)];
    const out: Uint8Array[] = [];
    for (let pos = from; pos < to; k++) {
      const block = blocks[k] as Uint8Array;
      out.push(block.subarray(pos - at, Math.min(block.length, to - at)));
      pos = Math.min(at + block.length, to);
      at += block.length;
    }
    return out;
  }
}
