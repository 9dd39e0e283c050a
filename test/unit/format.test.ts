import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { DigestSet } from '../../electron/engine/ingest/digest-set';
import {
  CHUNK_ENTRY,
  chunkCount,
  chunkEntries,
  decodeManifest,
  encodedManifest,
  encodeManifest,
  FormatError,
  newConfig,
  parseConfig,
  parseRefKey,
  refKey,
  validateModelName,
} from '../../electron/engine/repository/format';
import { safeJoin } from '../../electron/engine/restore/restore';

const h = (c: string) => c.repeat(64);

describe('repository format 1', () => {
  it('encodes a manifest in 36 bytes per chunk and reads it back', () => {
    const manifest = {
      size: 300,
      fileHash: h('f'),
      chunks: [
        { hash: h('a'), length: 100 },
        { hash: h('b'), length: 200 },
      ],
    };
    const bytes = encodeManifest(manifest, 'sha256');
    expect(bytes.length).toBe(52 + 2 * 36);
    expect(decodeManifest(bytes, 'x')).toEqual(manifest);
    expect(
      decodeManifest(encodeManifest({ size: 0, fileHash: h('e'), chunks: [] }, 'blake3'), 'x')
        .chunks,
    ).toEqual([]);
  });

  it('reads a manifest as chunk entries without its chunk list, from its own copy of the bytes', () => {
    const chunks = Array.from({ length: 5 }, (_, i) => ({
      hash: randomBytes(32).toString('hex'),
      length: 100 + i,
    }));
    const manifest = { size: 510, fileHash: h('f'), chunks };
    const bytes = encodeManifest(manifest, 'sha256');
    const read = decodeManifest(bytes, 'm1');
    bytes.fill(0); // the caller's buffer, reused: the manifest kept its own copy
    expect(encodedManifest(read)?.hash).toBe('m1');
    expect(encodedManifest(read)?.bytes).toEqual(encodeManifest(manifest, 'sha256'));
    expect(encodedManifest(manifest)).toBeUndefined();
    // Entries and counts the same whether the manifest was read or built.
    expect(chunkCount(read)).toBe(5);
    expect(chunkEntries(read)).toEqual(chunkEntries(manifest));
    expect(chunkEntries(read).length).toBe(5 * CHUNK_ENTRY);
    expect(read.chunks).toEqual(chunks);
    expect(JSON.parse(JSON.stringify(read))).toEqual(manifest);
  });

  it('holds chunk digests as bytes: every one added, nothing else', () => {
    const runs = [randomBytes(CHUNK_ENTRY * 3000), randomBytes(CHUNK_ENTRY * 7)];
    // A digest named twice (two files sharing a chunk) is held once.
    runs[1]?.copy(runs[1], 0, CHUNK_ENTRY, CHUNK_ENTRY + 32);
    const set = DigestSet.ofEntries(runs, CHUNK_ENTRY);
    expect(set.size).toBe(3006);
    for (const run of runs)
      for (let at = 0; at < run.length; at += CHUNK_ENTRY)
        expect(set.has(run.toString('hex', at, at + 32))).toBe(true);
    for (let i = 0; i < 1000; i++) expect(set.has(randomBytes(32).toString('hex'))).toBe(false);
    expect(set.has('not hex')).toBe(false);
    expect(DigestSet.ofEntries([], CHUNK_ENTRY).has(h('a'))).toBe(false);
  });

  it('refuses a damaged manifest with an error naming it', () => {
    const bytes = encodeManifest(
      { size: 100, fileHash: h('f'), chunks: [{ hash: h('a'), length: 100 }] },
      'sha256',
    );
    expect(() => decodeManifest(bytes.subarray(0, bytes.length - 1), 'abc')).toThrow(
      'file manifest abc is damaged: wrong length',
    );
    const wrongSize = Buffer.from(bytes);
    wrongSize.writeBigUInt64LE(99n, 8);
    expect(() => decodeManifest(wrongSize, 'abc')).toThrow(/add up to 100, not 99/);
    expect(() =>
      decodeManifest(Buffer.from('hello world, this is not a manifest at all.........'), 'abc'),
    ).toThrow(/not a manifest/);
  });

  it('refuses a repository of an unknown format, or a damaged config, clearly', () => {
    const config = newConfig('sha256', { minSize: 16384, avgSize: 65536, maxSize: 262144 });
    expect(config.format).toBe(3);
    expect(parseConfig(Buffer.from(JSON.stringify(config)), 'here')).toEqual(config);
    const older = { ...config, format: 1 };
    expect(parseConfig(Buffer.from(JSON.stringify(older)), 'here')).toEqual(older);
    const packed = { ...newConfig('sha256', config.chunking, 3, 16 << 20), format: 3 };
    expect(parseConfig(Buffer.from(JSON.stringify(packed)), 'here').packSize).toBe(16 << 20);
    expect(() =>
      parseConfig(Buffer.from(JSON.stringify({ ...config, format: 4 })), 'here'),
    ).toThrow(
      'the repository at here uses format 4, which this version of TensorVault does not know (it reads formats 1, 2, 3): upgrade TensorVault',
    );
    expect(() => newConfig('sha256', config.chunking, 3, 1000)).toThrow(
      'a pack size of 1000 bytes is out of range: choose from 64 KiB to 1 GiB',
    );
    expect(() => parseConfig(Buffer.from('{not json'), 'here')).toThrow(/not valid JSON/);
    expect(() =>
      parseConfig(
        Buffer.from(
          JSON.stringify({ ...config, chunking: { ...config.chunking, algorithm: 'other' } }),
        ),
        'here',
      ),
    ).toThrow(/chunks with "other"/);
  });

  it('validates model names', () => {
    for (const ok of ['llama-3-8b', 'bert.base', 'A_1', 'x'])
      expect(validateModelName(ok)).toBe(ok);
    for (const bad of [
      '',
      'a/b',
      '..',
      'a..b',
      '-lead',
      '.hidden',
      'x'.repeat(101),
      'with space',
      'ünï',
    ]) {
      expect(() => validateModelName(bad), bad).toThrow(FormatError);
    }
  });

  it('makes refs that sort in creation order and parse back', () => {
    const key = refKey('m', 1700000000123, h('c'));
    expect(key).toBe(`refs/m/1700000000123-${h('c')}`);
    expect(parseRefKey(key)).toMatchObject({
      model: 'm',
      createdAtMs: 1700000000123,
      versionId: h('c'),
      tombstone: false,
    });
    expect(parseRefKey(`${key}.removed`)).toMatchObject({ tombstone: true, base: key });
    expect(parseRefKey('refs/m/garbage')).toBeUndefined();
  });
});

describe('restore paths', () => {
  it('keep files inside the destination and refuse any path that would leave it', () => {
    expect(safeJoin('/dest', 'a/b.bin')).toBe('/dest/a/b.bin');
    expect(safeJoin('/dest', 'ünï côdé/spaced name.txt')).toBe('/dest/ünï côdé/spaced name.txt');
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'C:/x', 'a\\..\\x', '']) {
      expect(() => safeJoin('/dest', bad), bad).toThrow(/would land outside the destination/);
    }
  });
});
