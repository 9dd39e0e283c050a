import { randomFillSync } from 'node:crypto';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
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
 * folder as model.bin.
 */
export async function versionPair(dir: string, size: number): Promise<{ v1: string; v2: string }> {
  const v1 = join(dir, 'v1');
  const v2 = join(dir, 'v2');
  await mkdir(v1, { recursive: true });
  await mkdir(v2, { recursive: true });
  await randomFile(join(v1, 'model.bin'), size);
  const data = await readFile(join(v1, 'model.bin'));
  const region = Math.floor(size / 1000);
  for (let k = 0; k < 10; k++) randomFillSync(data, Math.floor(((k + 0.5) * size) / 10), region);
  const insert = Buffer.allocUnsafe(100);
  randomFillSync(insert);
  await writeFile(
    join(v2, 'model.bin'),
    Buffer.concat([data.subarray(0, 4096), insert, data.subarray(4096)]),
  );
  return { v1, v2 };
}
