import { beforeAll, describe, expect, it } from 'vitest';
import {
  decodeObject,
  encodeChunk,
  encodeWith,
  EncodingError,
  groupBytes,
  loadCodecs,
  ungroupBytes,
} from '../../electron/engine/storage/packs/codec';
import {
  ENCODING_BG2_LZ4,
  ENCODING_BG4_LZ4,
  ENCODING_LZ4,
  ENCODING_NONE,
  KNOWN_ENCODINGS,
} from '../../electron/engine/storage/packs/encodings';
import { encodeFloats, normalValues } from '../fixtures/safetensors';
import { seededBytes } from './prng';

beforeAll(() => loadCodecs());

/** Byte equality (expect's deep equality walks a typed array element by element: slow). */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

const ENCODED = KNOWN_ENCODINGS.filter((e) => e !== ENCODING_NONE);
/** Empty, 1 byte, sizes no group width divides, a few chunk sizes. */
const SIZES = [0, 1, 2, 3, 5, 7, 255, 4097, 65_535, 65_537];

describe('pack encodings', () => {
  it('byte grouping splits each word into streams (tail bytes as they are), and ungrouping inverts it', () => {
    const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect([...groupBytes(src, 4, new Uint8Array(10))]).toEqual([1, 5, 2, 6, 3, 7, 4, 8, 9, 10]);
    expect([...groupBytes(src, 2, new Uint8Array(10))]).toEqual([1, 3, 5, 7, 9, 2, 4, 6, 8, 10]);
    for (const size of SIZES)
      for (const width of [2, 4]) {
        const data = seededBytes(size + width, size);
        const grouped = groupBytes(data, width, new Uint8Array(size));
        expect(same(ungroupBytes(grouped, width, new Uint8Array(size)), data)).toBe(true);
        // Views not aligned to a word take the byte loop: same streams.
        const odd = new Uint8Array(size + 1).subarray(1);
        odd.set(data);
        const oddOut = new Uint8Array(size + 1).subarray(1);
        expect(same(groupBytes(odd, width, new Uint8Array(size)), grouped)).toBe(true);
        expect(same(ungroupBytes(grouped, width, oddOut), data)).toBe(true);
      }
  });

  it('every encoding round-trips empty, 1-byte, odd-sized, compressible and random bytes', () => {
    for (const encoding of ENCODED)
      for (const size of SIZES)
        for (const data of [
          seededBytes(size + 1, size),
          new Uint8Array(size).fill(7),
          encodeFloats(normalValues(size + 3, Math.ceil(size / 2)), 'BF16').subarray(0, size),
        ]) {
          const stored = encodeWith(encoding, data);
          expect(same(decodeObject(encoding, stored, data.length), data)).toBe(true);
        }
  });

  it('a chunk is stored as it is when encoding does not save the margin: random bytes, tiny chunks', () => {
    for (const scheme of ['lz4', 'zstd'] as const) {
      for (const size of [0, 1, 100, 65_536]) {
        const data = seededBytes(size + 9, size);
        const stored = encodeChunk(scheme, data);
        expect(stored.encoding).toBe(ENCODING_NONE);
        expect(stored.bytes).toBe(data);
      }
      expect(encodeChunk('none', new Uint8Array(65_536)).encoding).toBe(ENCODING_NONE);
    }
  });

  it('LZ4 gets byte grouping for floats (F32 by 4, BF16 by 2 or 4: both put exponents apart); zeros compress plain', () => {
    const bf16 = encodeFloats(normalValues(5, 32_768), 'BF16');
    const f32 = encodeFloats(normalValues(6, 16_384), 'F32');
    expect([ENCODING_BG2_LZ4, ENCODING_BG4_LZ4]).toContain(encodeChunk('lz4', bf16).encoding);
    expect(encodeChunk('lz4', f32).encoding).toBe(ENCODING_BG4_LZ4);
    // zstd's entropy coder takes the exponents' few values whether grouped or not.
    expect(encodeChunk('zstd', bf16).bytes.length).toBeLessThan(bf16.length * 0.85);
    expect(encodeChunk('lz4', new Uint8Array(65_536)).encoding).toBe(ENCODING_LZ4);
    for (const data of [bf16, f32]) {
      const stored = encodeChunk('lz4', data);
      expect(stored.bytes.length).toBeLessThan(data.length * 0.97);
      expect(same(decodeObject(stored.encoding, stored.bytes, data.length), data)).toBe(true);
    }
  });

  it('damaged stored bytes fail to decode with an EncodingError, never give other bytes silently of another length', () => {
    const data = encodeFloats(normalValues(8, 32_768), 'BF16');
    for (const encoding of ENCODED) {
      const stored = Buffer.from(encodeWith(encoding, data));
      expect(() =>
        decodeObject(encoding, stored.subarray(0, stored.length >> 1), data.length),
      ).toThrow(EncodingError);
      expect(() => decodeObject(encoding, stored, data.length + 1)).toThrow(EncodingError);
    }
    expect(() => decodeObject(99, Buffer.alloc(4), 4)).toThrow(/upgrade TensorVault/);
  });
});
