import {
  ENCODING_BG2_LZ4,
  ENCODING_BG2_ZSTD,
  ENCODING_BG4_LZ4,
  ENCODING_BG4_ZSTD,
  ENCODING_LZ4,
  ENCODING_NAMES,
  ENCODING_NONE,
  ENCODING_ZSTD,
  KNOWN_ENCODINGS,
  type CompressionScheme,
} from './encodings';

/** The codecs of pack encodings (see encodings.ts), run in the chunk-and-hash workers. */

/** Per scheme, the encodings a chunk is tried with: plain, grouped by 2, grouped by 4. */
const FAMILY: Record<Exclude<CompressionScheme, 'none'>, readonly number[]> = {
  lz4: [ENCODING_LZ4, ENCODING_BG2_LZ4, ENCODING_BG4_LZ4],
  zstd: [ENCODING_ZSTD, ENCODING_BG2_ZSTD, ENCODING_BG4_ZSTD],
};

const ZSTD_LEVEL = 1;
/** An encoded chunk is kept only when it saves at least 1/32 (3%) of its bytes. */
const MARGIN_SHIFT = 5;
/** Chunks shorter than this are stored as they are (nothing worth the decode). */
const MIN_ENCODED = 256;
/** The sample each candidate encoding is tried on, from the middle of the chunk. */
const SAMPLE = 4096;

export class EncodingError extends Error {
  override name = 'EncodingError';
}

type Zstd = typeof import('@bokuweb/zstd-wasm');
type Lz4 = typeof import('lz4-napi');

// The codecs load on first need, never with this module: most repositories store chunks as they
// are, and every command and worker would otherwise load lz4's native addon and zstd's
// WebAssembly glue at start-up.
let zstd: Zstd | undefined;
let lz4: Lz4 | undefined;
let zstdReady: Promise<void> | undefined;
let lz4Ready: Promise<void> | undefined;

function loadZstd(): Promise<void> {
  zstdReady ??= import('@bokuweb/zstd-wasm').then(async (module) => {
    await module.init();
    zstd = module;
  });
  return zstdReady;
}

function loadLz4(): Promise<void> {
  lz4Ready ??= import('lz4-napi').then((module) => {
    lz4 = module;
  });
  return lz4Ready;
}

/** Loads every codec (lz4's native addon and zstd's WebAssembly). */
export async function loadCodecs(): Promise<void> {
  await Promise.all([loadLz4(), loadZstd()]);
}

/**
 * Loads what this encoding (or scheme) needs before it is encoded or decoded: zstd's
 * WebAssembly (tens of MiB of memory per thread) only where zstd is met, lz4 where lz4 is.
 */
export function codecFor(encoding: number | CompressionScheme): Promise<void> {
  if (encoding === 'zstd' || (typeof encoding === 'number' && isZstd(encoding))) return loadZstd();
  if (encoding === 'lz4' || (typeof encoding === 'number' && isLz4(encoding))) return loadLz4();
  return Promise.resolve(); // stored as they are, or an encoding decodeObject refuses
}

function loaded<T>(codec: T | undefined, name: string): T {
  if (!codec) throw new EncodingError(`the ${name} codec is not loaded (call codecFor first)`);
  return codec;
}

/**
 * Byte grouping of width w (see above), into `out` (same length as `src`). A plain loop over
 * bytes; over whole words when `src` is aligned for them (one load per word instead of w; words
 * are little-endian on every platform TensorVault runs on, x64 and arm64).
 */
export function groupBytes(src: Uint8Array, width: number, out: Uint8Array): Uint8Array {
  const n = src.length;
  const full = n - (n % width);
  const per = full / width;
  if (width === 4 && src.byteOffset % 4 === 0) {
    const words = new Uint32Array(src.buffer, src.byteOffset, per);
    const s1 = per;
    const s2 = 2 * per;
    const s3 = 3 * per;
    for (let i = 0; i < per; i++) {
      const w = words[i] as number;
      out[i] = w;
      out[s1 + i] = w >>> 8;
      out[s2 + i] = w >>> 16;
      out[s3 + i] = w >>> 24;
    }
  } else if (width === 2 && src.byteOffset % 2 === 0) {
    const words = new Uint16Array(src.buffer, src.byteOffset, per);
    for (let i = 0; i < per; i++) {
      const w = words[i] as number;
      out[i] = w;
      out[per + i] = w >>> 8;
    }
  } else
    for (let k = 0; k < width; k++) {
      let o = k * per;
      for (let i = k; i < full; i += width) out[o++] = src[i] as number;
    }
  for (let i = full; i < n; i++) out[i] = src[i] as number;
  return out;
}

/** The inverse of groupBytes (over whole words when `out` is aligned for them). */
export function ungroupBytes(src: Uint8Array, width: number, out: Uint8Array): Uint8Array {
  const n = src.length;
  const full = n - (n % width);
  const per = full / width;
  if (width === 4 && out.byteOffset % 4 === 0) {
    const words = new Uint32Array(out.buffer, out.byteOffset, per);
    const s1 = per;
    const s2 = 2 * per;
    const s3 = 3 * per;
    for (let i = 0; i < per; i++)
      words[i] =
        ((src[i] as number) |
          ((src[s1 + i] as number) << 8) |
          ((src[s2 + i] as number) << 16) |
          ((src[s3 + i] as number) << 24)) >>>
        0;
  } else if (width === 2 && out.byteOffset % 2 === 0) {
    const words = new Uint16Array(out.buffer, out.byteOffset, per);
    for (let i = 0; i < per; i++) words[i] = (src[i] as number) | ((src[per + i] as number) << 8);
  } else
    for (let k = 0; k < width; k++) {
      let o = k * per;
      for (let i = k; i < full; i += width) out[i] = src[o++] as number;
    }
  for (let i = full; i < n; i++) out[i] = src[i] as number;
  return out;
}

function widthOf(encoding: number): number {
  return encoding === ENCODING_BG2_LZ4 || encoding === ENCODING_BG2_ZSTD
    ? 2
    : encoding === ENCODING_BG4_LZ4 || encoding === ENCODING_BG4_ZSTD
      ? 4
      : 1;
}

function isLz4(encoding: number): boolean {
  return encoding >= ENCODING_LZ4 && encoding <= ENCODING_BG4_LZ4;
}

function isZstd(encoding: number): boolean {
  return encoding >= ENCODING_ZSTD && encoding <= ENCODING_BG4_ZSTD;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Where bytes are grouped before they are compressed: one per thread, grown as needed. */
let scratch = new Uint8Array(0);
function scratchOf(length: number): Uint8Array {
  if (scratch.length < length) scratch = new Uint8Array(Math.max(length, 256 * 1024));
  return scratch.subarray(0, length);
}

/** The bytes in one encoding (not 0), whatever their size. */
export function encodeWith(encoding: number, bytes: Uint8Array): Buffer {
  const width = widthOf(encoding);
  // The codecs copy their input: the scratch is free again when they return.
  const input = width > 1 ? groupBytes(bytes, width, scratchOf(bytes.length)) : bytes;
  if (isZstd(encoding)) return asBuffer(loaded(zstd, 'zstd').compress(asBuffer(input), ZSTD_LEVEL));
  if (isLz4(encoding)) return loaded(lz4, 'lz4').compressSync(asBuffer(input));
  throw new EncodingError(`encoding ${encoding} cannot be written`);
}

/**
 * A chunk's bytes as the scheme stores them: the family's encoding that does best on a sample
 * of the chunk, kept only when the whole chunk shrinks by the margin; otherwise encoding 0 and
 * the bytes themselves.
 */
export function encodeChunk(
  scheme: CompressionScheme,
  bytes: Uint8Array,
): { encoding: number; bytes: Uint8Array } {
  if (scheme === 'none' || bytes.length < MIN_ENCODED) return { encoding: ENCODING_NONE, bytes };
  const family = FAMILY[scheme];
  let best = family[0] as number;
  if (bytes.length > SAMPLE * 2) {
    const from = (Math.floor(bytes.length / 2) & ~3) - SAMPLE / 2;
    const sample = bytes.subarray(from, from + SAMPLE);
    let smallest = Infinity;
    for (const encoding of family) {
      const size = encodeWith(encoding, sample).length;
      if (size < smallest) [smallest, best] = [size, encoding];
    }
    // Nothing saved on the sample: not worth compressing the whole chunk (random bytes,
    // quantized weights under LZ4). A small saving may grow on the whole chunk: tried below.
    if (smallest >= SAMPLE) return { encoding: ENCODING_NONE, bytes };
  }
  const encoded = encodeWith(best, bytes);
  if (encoded.length > bytes.length - (bytes.length >> MARGIN_SHIFT))
    return { encoding: ENCODING_NONE, bytes };
  return { encoding: best, bytes: encoded };
}

/**
 * An object's original bytes from its stored bytes, into `into` when given (`length` bytes, then
 * returned). Throws EncodingError when they cannot be decoded or do not give `length` bytes (the
 * caller names the pack and offset).
 */
export function decodeObject(encoding: number, stored: Uint8Array, length: number): Buffer;
export function decodeObject(
  encoding: number,
  stored: Uint8Array,
  length: number,
  into: Uint8Array,
): Uint8Array;
export function decodeObject(
  encoding: number,
  stored: Uint8Array,
  length: number,
  into?: Uint8Array,
): Uint8Array {
  if (encoding === ENCODING_NONE) {
    if (!into) return asBuffer(stored);
    into.set(stored.subarray(0, length));
    return into;
  }
  if (!KNOWN_ENCODINGS.includes(encoding))
    throw new EncodingError(
      `encoding ${encoding} is unknown to this version of TensorVault: upgrade TensorVault`,
    );
  let plain: Buffer;
  try {
    plain = isZstd(encoding)
      ? asBuffer(loaded(zstd, 'zstd').decompress(asBuffer(stored)))
      : loaded(lz4, 'lz4').uncompressSync(asBuffer(stored));
  } catch (err) {
    if (err instanceof EncodingError) throw err;
    throw new EncodingError(
      `${ENCODING_NAMES[encoding]} data does not decode (${(err as Error).message})`,
    );
  }
  if (plain.length !== length)
    throw new EncodingError(
      `${ENCODING_NAMES[encoding]} data decodes to ${plain.length} bytes, ${length} expected`,
    );
  const width = widthOf(encoding);
  if (width > 1) return ungroupBytes(plain, width, into ?? Buffer.allocUnsafe(length));
  if (!into) return plain;
  into.set(plain);
  return into;
}
