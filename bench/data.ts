import { randomFillSync } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';

const PIECE = 16 * 1024 * 1024;

/** A file of random bytes, written in pieces (never all in memory). */
export async function randomFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  const buf = Buffer.allocUnsafe(PIECE);
  for (let at = 0; at < size; at += PIECE) {
    const n = Math.min(PIECE, size - at);
    randomFillSync(buf, 0, n);
    await handle.write(buf, 0, n, at);
  }
  await handle.close();
}

/**
 * v1: `size` random bytes. v2: v1 with 1% of its bytes rewritten in ten places and 100 bytes
 * inserted near the start (a fine-tune saved with a slightly longer header). Each in its own
 * folder as model.bin. Written piece by piece: the benchmark process holds no copy of either
 * (a gigabyte of garbage in it would be collected during the very runs it times).
 */
export async function versionPair(dir: string, size: number): Promise<{ v1: string; v2: string }> {
  const v1 = join(dir, 'v1');
  const v2 = join(dir, 'v2');
  await mkdir(v1, { recursive: true });
  await mkdir(v2, { recursive: true });
  await randomFile(join(v1, 'model.bin'), size);
  const region = Math.floor(size / 1000);
  const rewritten = Array.from({ length: 10 }, (_, k) => Math.floor(((k + 0.5) * size) / 10));
  const insertAt = Math.min(4096, size);
  const insert = Buffer.allocUnsafe(100);
  randomFillSync(insert);
  const source = await open(join(v1, 'model.bin'), 'r');
  const target = await open(join(v2, 'model.bin'), 'w');
  try {
    const buf = Buffer.allocUnsafe(PIECE);
    let out = 0;
    const write = async (bytes: Buffer) => {
      await target.write(bytes, 0, bytes.length, out);
      out += bytes.length;
    };
    for (let at = 0; at < size; at += PIECE) {
      const n = Math.min(PIECE, size - at);
      await source.read(buf, 0, n, at);
      for (const start of rewritten) {
        const from = Math.max(start, at);
        const to = Math.min(start + region, at + n);
        if (from < to) randomFillSync(buf, from - at, to - from);
      }
      if (at === 0) {
        await write(buf.subarray(0, insertAt));
        await write(insert);
        await write(buf.subarray(insertAt, n));
      } else await write(buf.subarray(0, n));
    }
  } finally {
    await source.close();
    await target.close();
  }
  return { v1, v2 };
}

/** A model folder of `count` random files of `size` bytes, named as sharded checkpoints are. */
export async function modelFolder(dir: string, count: number, size: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const width = String(count).padStart(5, '0');
  for (let i = 1; i <= count; i++)
    await randomFile(join(dir, `model-${String(i).padStart(5, '0')}-of-${width}.bin`), size);
  return dir;
}

/** Rewrites 1% of a file in ten places, in place (same size; a fine-tune of some of its tensors). */
export async function rewriteInPlace(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const { size } = await handle.stat();
    const region = Math.max(1, Math.floor(size / 1000));
    const bytes = Buffer.allocUnsafe(region);
    for (let k = 0; k < 10; k++) {
      randomFillSync(bytes);
      await handle.write(bytes, 0, region, Math.floor(((k + 0.5) * size) / 10));
    }
  } finally {
    await handle.close();
  }
}
