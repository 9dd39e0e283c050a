import { randomFillSync } from 'node:crypto';
import { compute_chunks } from '@dstanesc/wasm-chunking-fastcdc-node';
import { DEFAULT_PROFILE, MiB } from '../../electron/engine/chunking/params';
import { chunkStream, cutPoints } from '../../electron/engine/chunking/stream';
import { bestMbps, round, type BenchContext, type ScenarioResult } from '../report';

/**
 * Our FastCDC (the streaming chunker over its WebAssembly scanner, fed 1 MiB reads as ingest
 * does) against the Rust FastCDC compiled to WebAssembly, on the same random buffer with the same
 * 16/64/256 KiB parameters, best of several rounds, interleaved so both see the same machine.
 */
export async function chunker(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 64 : 256) * MiB;
  const rounds = ctx.quick ? 3 : 5;
  const buf = Buffer.allocUnsafe(size);
  randomFillSync(buf);
  const { minSize, avgSize, maxSize } = DEFAULT_PROFILE;
  ctx.log(`chunker: ${size / MiB} MiB random, ${rounds} rounds each`);

  const streamed = async () => {
    let n = 0;
    for await (const _ of chunkStream(slices(buf, MiB), DEFAULT_PROFILE)) n++;
    return n;
  };
  let mine = 0;
  let scan = 0;
  let peer = 0;
  for (let r = 0; r < rounds; r++) {
    mine = Math.max(mine, await bestMbps(size, 1, streamed));
    scan = Math.max(scan, await bestMbps(size, 1, () => cutPoints(buf, DEFAULT_PROFILE)));
    peer = Math.max(
      peer,
      await bestMbps(size, 1, () => compute_chunks(buf, minSize, avgSize, maxSize)),
    );
  }
  const chunks = cutPoints(buf, DEFAULT_PROFILE).length;
  const ratio = mine / peer;
  return {
    json: {
      chunker: {
        mbps: round(mine, 0),
        peerMbps: round(peer, 0),
        ratio: round(ratio),
        scanMbps: round(scan, 0),
        chunks,
        sizeMiB: size / MiB,
      },
    },
    rows: [
      {
        scenario: 'chunker',
        metric: 'streaming MB/s',
        value: round(mine, 0).toString(),
        note: `${chunks} chunks, 1 MiB reads`,
      },
      { scenario: 'chunker', metric: 'whole-buffer MB/s', value: round(scan, 0).toString() },
      { scenario: 'chunker', metric: 'Rust-WASM peer MB/s', value: round(peer, 0).toString() },
      {
        scenario: 'chunker',
        metric: 'ratio to peer',
        value: round(ratio).toString(),
        note: 'target >= 0.9',
      },
    ],
  };
}

function* slices(buf: Buffer, size: number): Generator<Uint8Array> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}
