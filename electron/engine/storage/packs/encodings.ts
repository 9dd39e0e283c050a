/**
 * How an object's bytes are stored in a pack (docs/format.md, "Encodings"): the record's encoding
 * byte. The object's address stays the hash of its original bytes; a reader decodes, then checks
 * the hash.
 *
 *   0  none          the bytes as they are
 *   1  lz4           an LZ4 block, preceded by the original length (u32 little-endian)
 *   2  bg2-lz4       byte grouping of width 2 (below), then as 1
 *   3  bg4-lz4       byte grouping of width 4, then as 1
 *   4  zstd          a Zstandard frame (level 1 when written)
 *   5  bg2-zstd      byte grouping of width 2, then as 4
 *   6  bg4-zstd      byte grouping of width 4, then as 4
 *
 * Byte grouping of width w: of n bytes, the first n - n mod w are split into w streams, stream k
 * holding bytes k, k + w, k + 2w, ... in order; the streams are written one after another, then
 * the last n mod w bytes as they are. Sign-and-exponent bytes of float tensors (F16 and BF16: width
 * 2; F32: width 4) repeat far more than mantissa bytes, and grouped they compress.
 */
export const ENCODING_NONE = 0;
export const ENCODING_LZ4 = 1;
export const ENCODING_BG2_LZ4 = 2;
export const ENCODING_BG4_LZ4 = 3;
export const ENCODING_ZSTD = 4;
export const ENCODING_BG2_ZSTD = 5;
export const ENCODING_BG4_ZSTD = 6;
export const KNOWN_ENCODINGS: readonly number[] = [0, 1, 2, 3, 4, 5, 6];

export const ENCODING_NAMES: Record<number, string> = {
  0: 'none',
  1: 'lz4',
  2: 'bg2-lz4',
  3: 'bg4-lz4',
  4: 'zstd',
  5: 'bg2-zstd',
  6: 'bg4-zstd',
};

/** What a repository writes (`tv init --compression`): each chunk gets the family's best encoding. */
export const COMPRESSION_SCHEMES = ['none', 'lz4', 'zstd'] as const;
export type CompressionScheme = (typeof COMPRESSION_SCHEMES)[number];
