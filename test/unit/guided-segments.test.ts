import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChunkGuide,
  chunkAndHash,
  sharedGuide,
  type GuidedStats,
} from '../../electron/engine/chunking/guided';
import { encodeChunkEntries } from '../../electron/engine/repository/format';
import {
  DEFAULT_PROFILE,
  SMALL_PROFILE,
  type ChunkingParams,
} from '../../electron/engine/chunking/params';
import { cutPoints } from '../../electron/engine/chunking/stream';
import { createHasher } from '../../electron/engine/hashing';
import { ChunkHashPool, type ChunkBatch } from '../../electron/engine/workers/pool';
import type { ChunkInfo } from '../../electron/engine/workers/protocol';
import {
  chunkFile,
  planSegments,
  segmentLimits,
  stitchChunks,
  type FileChunkJob,
} from '../../electron/engine/workers/segments';
import { mixedBytes, seededBytes } from './prng';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** What a single scan cuts: the reference every guided or segmented result must equal. */
function sequential(data: Uint8Array, params: ChunkingParams) {
  return cutPoints(data, params).map((end, i, all) => {
    const offset = all[i - 1] ?? 0;
    return { offset, length: end - offset, hash: sha256(data.subarray(offset, end)) };
  });
}

function pieces(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
  return out;
}

async function guided(
  data: Uint8Array,
  params: ChunkingParams,
  guide?: ChunkGuide,
  pieceSize = 100_003,
  stats?: GuidedStats,
) {
  const hash = await createHasher('sha256');
  const out = [];
  for await (const c of chunkAndHash(pieces(data, pieceSize), params, hash, {
    guide,
    ...(stats ? { stats } : {}),
  })) {
    expect(sha256(c.data)).toBe(c.hash);
    out.push({ offset: c.offset, length: c.length, hash: c.hash });
  }
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

describe('chunking guided by the previous version', () => {
  const v1 = seededBytes(11, 3_000_000);
  const guideOf = (data: Uint8Array, params: ChunkingParams) =>
    ChunkGuide.of(sequential(data, params));

  // Each edit of v1, chunked with v1 as the guide, must give exactly what a plain scan gives.
  const edits: [string, (d: Uint8Array) => Uint8Array][] = [
    ['unchanged', (d) => d],
    [
      '100 bytes inserted near the start',
      (d) => concat(d.subarray(0, 5000), seededBytes(2, 100), d.subarray(5000)),
    ],
    [
      '37 bytes deleted in the middle',
      (d) => concat(d.subarray(0, 1_500_000), d.subarray(1_500_037)),
    ],
    [
      'ten stretches rewritten',
      (d) => {
        const out = new Uint8Array(d);
        for (let k = 0; k < 10; k++) out.set(seededBytes(100 + k, 3000), k * 290_000 + 1234);
        return out;
      },
    ],
    ['truncated inside a chunk', (d) => d.subarray(0, 2_345_678)],
    ['extended at the end', (d) => concat(d, seededBytes(3, 200_000))],
    ['the last chunk followed by more bytes', (d) => concat(d, new Uint8Array(1))],
    ['unrelated bytes', () => seededBytes(99, 2_000_000)],
    ['empty', () => new Uint8Array(0)],
    ['structured (zeros, repeated text)', () => mixedBytes(7, 2_500_000)],
  ];
  for (const [name, edit] of edits) {
    it(`cuts exactly as a plain scan: ${name}`, async () => {
      for (const params of [SMALL_PROFILE, DEFAULT_PROFILE]) {
        const v2 = edit(v1);
        const want = sequential(v2, params);
        expect(await guided(v2, params, guideOf(v1, params))).toEqual(want);
        // Buffers of odd sizes, smaller than a chunk, do not change a cut.
        expect(await guided(v2, params, guideOf(v1, params), 4099)).toEqual(want);
      }
    });
  }

  it('takes most chunks of a lightly edited file on prediction, and few predictions miss', async () => {
    const v2 = concat(v1.subarray(0, 5000), seededBytes(2, 100), v1.subarray(5000));
    const stats = { predicted: 0, mispredicted: 0 };
    const got = await guided(v2, SMALL_PROFILE, guideOf(v1, SMALL_PROFILE), 100_003, stats);
    expect(stats.predicted).toBeGreaterThan(got.length * 0.9);
    expect(stats.mispredicted).toBeLessThanOrEqual(2);
  });

  it("never takes the guide's last chunk where the new file goes on after it", async () => {
    // v1 ends with a chunk cut by its end of file; v2 has the same bytes there and more after.
    const params = SMALL_PROFILE;
    const v2 = concat(v1, v1.subarray(0, 777));
    expect(await guided(v2, params, guideOf(v1, params))).toEqual(sequential(v2, params));
  });

  it('a guide survives the trip to a worker', () => {
    const chunks = sequential(v1, SMALL_PROFILE);
    const decoded = ChunkGuide.decode(sharedGuide(encodeChunkEntries(chunks)));
    expect(decoded.hashes).toEqual(chunks.map((c) => c.hash));
    expect(decoded.lengths).toEqual(chunks.map((c) => c.length));
    expect(decoded.find(chunks[5]!.hash)).toBe(5);
    expect(decoded.find('0'.repeat(64))).toBe(-1);
  });
});

describe('segments of a file chunked on several workers', () => {
  let dir: string;
  let pool: ChunkHashPool;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tv-segments-'));
    pool = new ChunkHashPool(2);
  });
  afterAll(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Every chunk passed on; with `slow`, each batch is taken a little later (as uploads do). */
  async function run(job: FileChunkJob, slow = false) {
    const all: ChunkInfo[] = [];
    let bytesRead = 0;
    for await (const batch of chunkFile(pool, job) as AsyncGenerator<ChunkBatch>) {
      all.push(...batch.chunks);
      if (slow) await new Promise((resolve) => setTimeout(resolve, 20));
      bytesRead = Math.max(bytesRead, batch.bytesRead);
      const bytes = await batch.take(
        batch.chunks.map((_, i) => i).filter((i) => !batch.chunks[i]!.known),
      );
      for (const b of bytes) expect(b.length).toBeGreaterThan(0);
    }
    return { all, bytesRead };
  }
  const strip = (chunks: ChunkInfo[] | undefined) =>
    chunks?.map(({ offset, length, hash }) => ({ offset, length, hash }));

  it('plans segments on multiples of maxSize, one for a small file or a single worker', () => {
    const { minSegment } = segmentLimits(DEFAULT_PROFILE);
    expect(planSegments(minSegment, DEFAULT_PROFILE, 2)).toEqual([{ start: 0 }]);
    expect(planSegments(1 << 30, DEFAULT_PROFILE, 1)).toEqual([{ start: 0 }]);
    const ranges = planSegments(1 << 30, DEFAULT_PROFILE, 2);
    expect(ranges.length).toBeGreaterThanOrEqual(8);
    for (const [k, r] of ranges.entries()) {
      expect(r.start % DEFAULT_PROFILE.maxSize).toBe(0);
      expect(r.next).toBe(ranges[k + 1]?.start);
    }
    expect(ranges.at(-1)!.start).toBeLessThan(1 << 30);
  });

  it('puts chunks in file order and refuses a gap', () => {
    const chunks = [
      { offset: 10, length: 5, hash: 'b' },
      { offset: 0, length: 10, hash: 'a' },
      { offset: 12, length: 3, hash: 'x' },
    ];
    expect(stitchChunks(chunks, 15)?.map((c) => c.hash)).toEqual(['a', 'b']);
    expect(stitchChunks(chunks, 16)).toBeUndefined();
    expect(stitchChunks([{ offset: 0, length: 10, hash: 'a' }], 12)).toBeUndefined();
  });

  const cases: [string, () => Uint8Array][] = [
    ['random bytes', () => seededBytes(21, 6_000_000)],
    ['zeros, repeated text and random bytes', () => mixedBytes(22, 6_000_000)],
  ];
  for (const [name, make] of cases) {
    it(`cuts exactly as one pass does: ${name}`, async () => {
      const data = make();
      const path = join(dir, `${name.length}.bin`);
      await writeFile(path, data);
      const base = { path, size: data.length, params: SMALL_PROFILE, algorithm: 'sha256' as const };
      const want = sequential(data, SMALL_PROFILE);
      for (const segmentBytes of [256 * 1024, 1_000_000]) {
        const { all, bytesRead } = await run({ ...base, segmentBytes });
        expect(strip(stitchChunks(all, data.length))).toEqual(want);
        // A segment's first chunks before the common cut are held back, not passed on (on
        // random bytes the cut comes well within the held-back window).
        if (name === 'random bytes') expect(all.length).toBe(want.length);
        expect(bytesRead).toBeGreaterThanOrEqual(data.length);
      }
    });
  }

  it('falls back to one worker reading on when segments never meet, and still cuts exactly', async () => {
    const data = seededBytes(23, 4_000_000);
    const path = join(dir, 'never.bin');
    await writeFile(path, data);
    // A search window of 0 bytes: only a cut exactly at the next start would count.
    const { all } = await run({
      path,
      size: data.length,
      params: SMALL_PROFILE,
      algorithm: 'sha256',
      segmentBytes: 500_000,
      syncWithin: 0,
    });
    expect(strip(stitchChunks(all, data.length))).toEqual(sequential(data, SMALL_PROFILE));
  });

  it('a long run of zeros out of step with the segment starts: segments dropped mid-run, exact cuts', async () => {
    // After the random start, the zeros are cut every maxSize from wherever the random bytes
    // ended; the segments start on multiples of maxSize, so they never meet in the zeros.
    const data = concat(seededBytes(27, 65_000), new Uint8Array(12_000_000));
    const path = join(dir, 'zeros.bin');
    await writeFile(path, data);
    for (const syncWithin of [200_000, 3_000_000]) {
      const { all } = await run(
        {
          path,
          size: data.length,
          params: SMALL_PROFILE,
          algorithm: 'sha256',
          segmentBytes: 1_000_000,
          syncWithin,
        },
        true,
      );
      expect(strip(stitchChunks(all, data.length))).toEqual(sequential(data, SMALL_PROFILE));
    }
  });

  it('with a guide, predicts chunks in every segment and drops the bytes of known ones', async () => {
    const v1 = seededBytes(24, 5_000_000);
    const v2 = concat(v1.subarray(0, 100), seededBytes(5, 100), v1.subarray(100));
    const path = join(dir, 'v2.bin');
    await writeFile(path, v2);
    const guide = {
      key: 'v1',
      chunks: sharedGuide(encodeChunkEntries(sequential(v1, SMALL_PROFILE))),
    };
    const stats = { predicted: 0, mispredicted: 0 };
    const { all } = await run({
      path,
      size: v2.length,
      params: SMALL_PROFILE,
      algorithm: 'sha256',
      segmentBytes: 1_000_000,
      guide,
      onStats: (s) => {
        stats.predicted += s.predicted;
        stats.mispredicted += s.mispredicted;
      },
    });
    const stitched = stitchChunks(all, v2.length);
    expect(strip(stitched)).toEqual(sequential(v2, SMALL_PROFILE));
    expect(stats.predicted).toBeGreaterThan(stitched!.length * 0.8);
    expect(stitched!.filter((c) => !c.known).length).toBeLessThan(10);
  });

  it('stops cleanly when cancelled or left early, and the pool keeps working', async () => {
    const data = seededBytes(26, 6_000_000);
    const path = join(dir, 'cancel.bin');
    await writeFile(path, data);
    const job = { path, size: data.length, params: SMALL_PROFILE, algorithm: 'sha256' as const };
    const controller = new AbortController();
    let seen = 0;
    await expect(
      (async () => {
        for await (const batch of chunkFile(pool, {
          ...job,
          segmentBytes: 500_000,
          signal: controller.signal,
        })) {
          if (++seen === 3) controller.abort();
          await batch.take([]);
        }
      })(),
    ).rejects.toThrow(/abort/i);
    for await (const batch of chunkFile(pool, { ...job, segmentBytes: 500_000 })) {
      await batch.take([]);
      break;
    }
    const { all } = await run({ ...job, segmentBytes: 500_000 });
    expect(strip(stitchChunks(all, data.length))).toEqual(sequential(data, SMALL_PROFILE));
  });

  it('refuses to hand over the bytes of a chunk the guide knows', async () => {
    const v1 = seededBytes(25, 400_000);
    const path = join(dir, 'known.bin');
    await writeFile(path, v1);
    const guide = {
      key: 'same',
      chunks: sharedGuide(encodeChunkEntries(sequential(v1, SMALL_PROFILE))),
    };
    for await (const batch of pool.run({
      path,
      params: SMALL_PROFILE,
      algorithm: 'sha256',
      guide,
    })) {
      expect(batch.chunks.every((c) => c.known)).toBe(true);
      await expect(batch.take([0])).rejects.toThrow(/guide knows/);
    }
  });
});
