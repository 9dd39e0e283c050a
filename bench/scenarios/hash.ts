import { randomFillSync } from 'node:crypto';
import { createSHA256 } from 'hash-wasm';
import { KiB, MiB } from '../../electron/engine/chunking/params';
import { createHasher } from '../../electron/engine/hashing';
import { bestMbps, round, type BenchContext, type ScenarioResult } from '../report';

/** Hash throughput per 64 KiB chunk on one core: the choices a repository makes at init. */
export async function hash(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 64 : 256) * MiB;
  const chunk = 64 * KiB;
  const buf = Buffer.allocUnsafe(size);
  randomFillSync(buf);
  const sha256 = await createHasher('sha256');
  const blake3 = await createHasher('blake3');
  const wasmSha = await createSHA256();
  const over = (fn: (b: Uint8Array) => unknown) => () => {
    for (let at = 0; at < size; at += chunk) fn(buf.subarray(at, at + chunk));
  };
  const rounds = ctx.quick ? 2 : 4;
  ctx.log(`hash: ${size / MiB} MiB in 64 KiB chunks, ${rounds} rounds each`);
  let s = 0;
  let b = 0;
  let w = 0;
  for (let r = 0; r < rounds; r++) {
    s = Math.max(s, await bestMbps(size, 1, over(sha256)));
    b = Math.max(b, await bestMbps(size, 1, over(blake3)));
    w = Math.max(
      w,
      await bestMbps(
        size,
        1,
        over((d) => wasmSha.init().update(d).digest('hex')),
      ),
    );
  }
  return {
    json: {
      hash: {
        sha256Mbps: round(s, 0),
        blake3Mbps: round(b, 0),
        sha256WasmMbps: round(w, 0),
        chunkKiB: 64,
      },
    },
    rows: [
      {
        scenario: 'hash',
        metric: 'sha256 (node:crypto) MB/s',
        value: round(s, 0).toString(),
        note: 'per 64 KiB chunk',
      },
      { scenario: 'hash', metric: 'blake3 (hash-wasm) MB/s', value: round(b, 0).toString() },
      {
        scenario: 'hash',
        metric: 'sha256 (hash-wasm) MB/s',
        value: round(w, 0).toString(),
        note: 'why sha256 is on node:crypto',
      },
    ],
  };
}
