import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROFILE, SMALL_PROFILE } from '../../electron/engine/chunking/params';
import { cutPoints } from '../../electron/engine/chunking/stream';
import { createHasher, isHashHex, type HashAlgorithm } from '../../electron/engine/hashing';
import {
  ChunkHashPool,
  WorkerJobError,
  type ChunkHashJob,
} from '../../electron/engine/workers/pool';
import { RECYCLED_BYTES, type WriteChunk } from '../../electron/engine/workers/protocol';
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
    // The share of the time the main thread's event loop was busy (not waiting for events): a
    // gap between timer ticks would also count the time a loaded machine leaves this process
    // unscheduled, which is no fault of the pool (800 ms gaps were seen at load 10).
    const before = performance.eventLoopUtilization();
    let bytes = 0;
    for (const c of await collect(pool, {
      path: big,
      params: DEFAULT_PROFILE,
      algorithm: 'sha256',
    }))
      bytes += c.length;
    const busy = performance.eventLoopUtilization(before).utilization;
    expect(bytes).toBe(buf.length);
    // The work happens in the worker: the main loop mostly waits for its results.
    expect(busy).toBeLessThan(0.5);
  });
});

describe('write tasks (a restore, in the workers)', () => {
  let dir: string;
  let pool: ChunkHashPool;
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  // A "pack": three chunks one after another, then an unrelated one.
  const a = seededBytes(11, 70_000);
  const b = seededBytes(12, 50_000);
  const c = seededBytes(13, 90_000);
  const d = seededBytes(14, 10_000);
  const pack = Buffer.concat([Buffer.from('head'), a, b, c, d]);
  const at = { a: 4, b: 4 + a.length, c: 4 + a.length + b.length, d: pack.length - d.length };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tv-write-'));
    await writeFile(join(dir, 'p.pack'), pack);
    pool = new ChunkHashPool(2);
  });
  afterAll(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });
  const dest = async (name: string) => {
    const handle = await open(join(dir, name), 'w+');
    return handle;
  };
  const from = (offset: number) => ({ file: join(dir, 'p.pack'), offset });
  const write = (
    fd: number,
    position: number,
    chunks: WriteChunk[],
    more: { algorithm?: HashAlgorithm; data?: Uint8Array } = {},
  ) => pool.write({ type: 'write', algorithm: 'sha256', fd, position, chunks, ...more });

  it('reads chunks from a pack (in and out of order), takes others from the bytes sent, and writes them at their place', async () => {
    const out = await dest('out.bin');
    try {
      // The file is c, b, a (out of pack order), then d sent by the main thread, then a again.
      const sent = new Uint8Array(d.length);
      sent.set(d);
      const result = await write(
        out.fd,
        1000,
        [
          { hash: sha(c), length: c.length, from: from(at.c) },
          { hash: sha(b), length: b.length, from: from(at.b) },
          { hash: sha(a), length: a.length, from: from(at.a) },
          { hash: sha(d), length: d.length },
          { hash: sha(a), length: a.length, from: from(at.a) },
        ],
        { data: sent },
      );
      expect(result).toEqual({
        type: 'written',
        bytes: c.length + b.length + 2 * a.length + d.length,
      });
      // The bytes were moved to the worker, not copied.
      expect(sent.byteLength).toBe(0);
      const written = await readFile(join(dir, 'out.bin'));
      expect(written.subarray(0, 1000).every((x) => x === 0)).toBe(true);
      expect(written.subarray(1000).equals(Buffer.concat([c, b, a, d, a]))).toBe(true);
      // Chunks that follow each other in the pack, in pack order.
      const run = await write(out.fd, 0, [
        { hash: sha(a), length: a.length, from: from(at.a) },
        { hash: sha(b), length: b.length, from: from(at.b) },
        { hash: sha(c), length: c.length, from: from(at.c) },
      ]);
      expect(run).toEqual({ type: 'written', bytes: a.length + b.length + c.length });
      expect(
        (await readFile(join(dir, 'out.bin'))).subarray(0, run.type === 'written' ? run.bytes : 0),
      ).toEqual(Buffer.concat([a, b, c]));
    } finally {
      await out.close();
    }
  });

  it('a chunk whose bytes hash to something else: nothing of the task is written', async () => {
    const out = await dest('corrupt.bin');
    try {
      const result = await write(out.fd, 0, [
        { hash: sha(a), length: a.length, from: from(at.a) },
        // b's hash, but read from one byte further on.
        { hash: sha(b), length: b.length, from: from(at.b + 1) },
      ]);
      expect(result).toEqual({
        type: 'corrupt',
        index: 1,
        actual: sha(pack.subarray(at.b + 1, at.b + 1 + b.length)),
      });
      expect((await out.stat()).size).toBe(0);
    } finally {
      await out.close();
    }
  });

  it('a pack that is gone or too short is unreadable (the restore reads those chunks another way)', async () => {
    const out = await dest('gone.bin');
    try {
      const gone = await write(out.fd, 0, [
        { hash: sha(a), length: a.length, from: from(at.a) },
        { hash: sha(b), length: b.length, from: { file: join(dir, 'gone.pack'), offset: 0 } },
      ]);
      expect(gone).toMatchObject({ type: 'unreadable', index: 1, code: 'ENOENT' });
      const short = await write(out.fd, 0, [
        { hash: sha(d), length: d.length + 1, from: from(at.d) },
      ]);
      expect(short).toMatchObject({ type: 'unreadable', index: 0, code: 'EOF' });
      expect((await out.stat()).size).toBe(0);
    } finally {
      await out.close();
    }
  });

  it('a destination that cannot be written is an error; blake3 tasks verify with blake3', async () => {
    const readOnly = await open(join(dir, 'p.pack'), 'r');
    try {
      const result = await write(readOnly.fd, 0, [
        { hash: sha(a), length: a.length, from: from(at.a) },
      ]);
      expect(result).toMatchObject({ type: 'error', code: 'EBADF' });
    } finally {
      await readOnly.close();
    }
    const blake3 = await createHasher('blake3');
    const out = await dest('b3.bin');
    try {
      const ok = await write(out.fd, 0, [{ hash: blake3(a), length: a.length, from: from(at.a) }], {
        algorithm: 'blake3',
      });
      expect(ok).toEqual({ type: 'written', bytes: a.length });
      const wrong = await write(out.fd, 0, [{ hash: sha(a), length: a.length, from: from(at.a) }], {
        algorithm: 'blake3',
      });
      expect(wrong).toMatchObject({ type: 'corrupt', index: 0, actual: blake3(a) });
    } finally {
      await out.close();
    }
  });
});
