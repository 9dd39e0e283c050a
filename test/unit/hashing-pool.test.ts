import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROFILE, SMALL_PROFILE } from '../../electron/engine/chunking/params';
import { cutPoints } from '../../electron/engine/chunking/stream';
import { createHasher, isHashHex } from '../../electron/engine/hashing';
import {
  ChunkHashPool,
  WorkerJobError,
  type ChunkHashJob,
} from '../../electron/engine/workers/pool';
import { RECYCLED_BYTES } from '../../electron/engine/workers/protocol';
import { seededBytes } from './prng';

describe('hashing', () => {
  it('sha256 and blake3 give their published digests of "abc"', async () => {
    const abc = new TextEncoder().encode('abc');
    expect((await createHasher('sha256'))(abc)).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect((await createHasher('blake3'))(abc)).toBe(
      '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
    );
    expect(isHashHex('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')).toBe(
      true,
    );
    expect(isHashHex('BA78')).toBe(false);
  });

  it('a blake3 hasher can be reused for many buffers', async () => {
    const blake3 = await createHasher('blake3');
    const a = blake3(new Uint8Array([1]));
    blake3(new Uint8Array(100_000));
    expect(blake3(new Uint8Array([1]))).toBe(a);
  });
});

/** Every chunk of a job, with its bytes when asked for (taken from the worker batch by batch). */
async function collect(pool: ChunkHashPool, job: ChunkHashJob, withData = false) {
  const out: { offset: number; length: number; hash: string; data?: Uint8Array }[] = [];
  for await (const batch of pool.run(job)) {
    const data = await batch.take(withData ? batch.chunks.map((_, i) => i) : []);
    batch.chunks.forEach((c, i) => out.push(withData ? { ...c, data: data[i] } : { ...c }));
  }
  return out;
}

describe('chunk-and-hash worker pool', () => {
  let dir: string;
  let pool: ChunkHashPool;
  const data = seededBytes(5, 3_000_000);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tv-pool-'));
    await writeFile(join(dir, 'model.bin'), data);
    pool = new ChunkHashPool(2);
  });
  afterAll(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  const expected = () =>
    cutPoints(data, SMALL_PROFILE).map((end, i, all) => {
      const start = all[i - 1] ?? 0;
      return {
        offset: start,
        length: end - start,
        hash: createHash('sha256').update(data.subarray(start, end)).digest('hex'),
      };
    });
  const file = () => ({
    path: join(dir, 'model.bin'),
    params: SMALL_PROFILE,
    algorithm: 'sha256' as const,
  });

  it('chunks and hashes a file in a worker, in order', async () => {
    expect(await collect(pool, file())).toEqual(expected());
  });

  it('chunks a byte stream forwarded from the main thread and gives the chunk bytes', async () => {
    async function* source() {
      for (let at = 0; at < data.length; at += 100_003) yield data.subarray(at, at + 100_003);
    }
    const got = await collect(
      pool,
      { source: source(), params: SMALL_PROFILE, algorithm: 'sha256' },
      true,
    );
    for (const c of got)
      expect(
        Buffer.from(c.data!).equals(Buffer.from(data.subarray(c.offset, c.offset + c.length))),
      ).toBe(true);
    expect(got.map(({ offset, length, hash }) => ({ offset, length, hash }))).toEqual(expected());
  });

  it('sends the bytes of only the chunks asked for, each matching its hash', async () => {
    let chunks = 0;
    let taken = 0;
    for await (const batch of pool.run(file())) {
      const wanted = batch.chunks.map((_, i) => i).filter((i) => (chunks + i) % 3 === 0);
      const bytes = await batch.take(wanted);
      expect(bytes).toHaveLength(wanted.length);
      wanted.forEach((i, k) =>
        expect(createHash('sha256').update(bytes[k]!).digest('hex')).toBe(batch.chunks[i]!.hash),
      );
      await expect(batch.take([])).rejects.toThrow(/already taken/);
      chunks += batch.chunks.length;
      taken += wanted.length;
    }
    expect(chunks).toBe(expected().length);
    expect(taken).toBe(Math.ceil(chunks / 3));
  });

  it('a recycled buffer is handed back (detached here), and every later take still carries the right bytes', async () => {
    const big = seededBytes(6, 24 << 20);
    await writeFile(join(dir, 'big.bin'), big);
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    const solo = new ChunkHashPool(1);
    try {
      const buffers: ArrayBuffer[] = [];
      let checked = 0;
      for await (const batch of solo.run({
        path: join(dir, 'big.bin'),
        params: DEFAULT_PROFILE,
        algorithm: 'sha256',
      })) {
        const data = await batch.take(batch.chunks.map((_, i) => i));
        data.forEach((d, i) => expect(sha(d)).toBe(batch.chunks[i]!.hash));
        checked += data.length;
        const buffer = data[0]!.buffer as ArrayBuffer;
        if (buffer.byteLength >= RECYCLED_BYTES) {
          buffers.push(buffer);
          solo.recycle(data);
          expect(buffer.byteLength).toBe(0); // transferred back: nothing here reads it any more
        }
      }
      expect(checked).toBe(cutPoints(big, DEFAULT_PROFILE).length);
      expect(buffers.length).toBeGreaterThan(3);
    } finally {
      await solo.close();
    }
  });

  it('runs more jobs than workers, each to completion', async () => {
    const counts = await Promise.all(
      Array.from(
        { length: 5 },
        async () =>
          (await collect(pool, { ...file(), params: DEFAULT_PROFILE, algorithm: 'blake3' })).length,
      ),
    );
    expect(new Set(counts).size).toBe(1);
    expect(counts[0]).toBe(cutPoints(data, DEFAULT_PROFILE).length);
  });

  it('stops promptly when cancelled, and the pool keeps working', async () => {
    const controller = new AbortController();
    let seen = 0;
    await expect(
      (async () => {
        for await (const batch of pool.run({
          ...file(),
          params: { minSize: 64, avgSize: 256, maxSize: 1024 },
          signal: controller.signal,
        })) {
          if (++seen === 2) controller.abort();
          await batch.take([]);
        }
      })(),
    ).rejects.toThrow(/abort/i);
    expect(seen).toBe(2);
    expect(await collect(pool, file())).toHaveLength(expected().length);
  });

  it('reports an unreadable file with its error code', async () => {
    const run = () => collect(pool, { ...file(), path: join(dir, 'missing.bin') });
    await expect(run()).rejects.toMatchObject({ name: 'WorkerJobError', code: 'ENOENT' });
    await expect(run()).rejects.toBeInstanceOf(WorkerJobError);
  });

  it('keeps the main event loop responsive while a big file is chunked and hashed', async () => {
    const big = join(dir, 'big.bin');
    const buf = Buffer.alloc(256 * 1024 * 1024);
    for (let i = 0; i < buf.length; i += data.length) Buffer.from(data).copy(buf, i);
    await writeFile(big, buf);
    let worstGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 5);
    let bytes = 0;
    for (const c of await collect(pool, {
      path: big,
      params: DEFAULT_PROFILE,
      algorithm: 'sha256',
    }))
      bytes += c.length;
    clearInterval(timer);
    expect(bytes).toBe(buf.length);
    // The work happens in the worker: the main loop never waits long for its turn.
    expect(worstGap).toBeLessThan(250);
  });
});
