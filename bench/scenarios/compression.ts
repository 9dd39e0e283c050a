import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KiB, MiB } from '../../electron/engine/chunking/params';
import {
  decodeObject,
  encodeChunk,
  encodeWith,
  groupBytes,
  loadCodecs,
  ungroupBytes,
} from '../../electron/engine/storage/packs/codec';
import { ENCODING_NAMES, KNOWN_ENCODINGS } from '../../electron/engine/storage/packs/encodings';
import { round, type BenchContext, type Row, type ScenarioResult } from '../report';
import { tv } from '../run';
import { faceApiWeights, floatCheckpoint, q8Blocks } from '../weights';

const CHUNK = 64 * KiB;

interface Codec {
  name: string;
  /** Stored bytes of a chunk (the chunk itself when the codec stores it as it is). */
  encode(chunk: Buffer): { bytes: Uint8Array; encoding: number };
  decode(stored: Uint8Array, encoding: number, length: number): Uint8Array;
}

/** Every encoding forced on every chunk, the per-chunk choosers a repository uses, and deflate. */
function codecs(): Codec[] {
  const forced = KNOWN_ENCODINGS.filter((e) => e !== 0).map((encoding): Codec => ({
    name: ENCODING_NAMES[encoding] as string,
    encode: (chunk) => ({ bytes: encodeWith(encoding, chunk), encoding }),
    decode: (stored, e, length) => decodeObject(e, stored, length),
  }));
  const chosen = (['lz4', 'zstd'] as const).map((scheme): Codec => ({
    name: `${scheme} (per chunk)`,
    encode: (chunk) => encodeChunk(scheme, chunk),
    decode: (stored, e, length) => decodeObject(e, stored, length),
  }));
  const deflate: Codec = {
    name: 'deflate-1 (node:zlib)',
    encode: (chunk) => ({ bytes: deflateRawSync(chunk, { level: 1 }), encoding: 99 }),
    decode: (stored) => inflateRawSync(stored),
  };
  return [deflate, ...forced, ...chosen];
}

interface CodecFigures {
  ratio: number;
  compressMbps: number;
  /** Null when no chunk was encoded (nothing to decode). */
  decompressMbps: number | null;
}

/** One codec over a data set in 64 KiB chunks, on this thread (one core); best of `rounds`. */
function measureCodec(codec: Codec, data: Buffer, rounds: number): CodecFigures {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += CHUNK) chunks.push(data.subarray(at, at + CHUNK));
  let compress = Infinity;
  let decompress = Infinity;
  let stored = 0;
  let encoded = 0;
  for (let r = 0; r < rounds; r++) {
    let started = performance.now();
    const out = chunks.map((c) => codec.encode(c));
    compress = Math.min(compress, performance.now() - started);
    started = performance.now();
    out.forEach((o, i) => {
      const length = (chunks[i] as Buffer).length;
      if (o.bytes !== chunks[i]) codec.decode(o.bytes, o.encoding, length);
    });
    decompress = Math.min(decompress, performance.now() - started);
    // A chunk no codec shrinks is stored as it is: what a repository would hold.
    stored = out.reduce((n, o, i) => n + Math.min(o.bytes.length, (chunks[i] as Buffer).length), 0);
    encoded = out.filter((o, i) => o.bytes !== chunks[i]).length;
  }
  return {
    ratio: stored / data.length,
    compressMbps: data.length / 1e3 / compress,
    decompressMbps: encoded > 0 ? data.length / 1e3 / decompress : null,
  };
}

interface EndToEnd {
  pushMbps: number;
  pullMbps: number;
  storedRatio: number;
}

/** `tv init --compression`, a cold push and a pull, as processes; best of the rounds per scheme. */
async function endToEnd(
  ctx: BenchContext,
  dir: string,
  folder: string,
  bytes: number,
  rounds: number,
): Promise<Map<string, EndToEnd>> {
  const schemes = ['none', 'lz4', 'zstd'];
  const best = new Map<string, EndToEnd>();
  for (let r = 0; r < rounds; r++)
    for (let k = 0; k < schemes.length; k++) {
      const scheme = schemes[(r + k) % schemes.length] as string;
      ctx.log(`compression: round ${r + 1} of ${rounds}, push and pull with ${scheme}`);
      const repo = join(dir, `repo-${scheme}`);
      const out = join(dir, `out-${scheme}`);
      await tv(['init', '--repo', repo, '--compression', scheme]);
      const pushed = await tv(['push', 'm', folder, '--repo', repo, '--json']);
      const pulled = await tv(['pull', 'm', out, '--repo', repo]);
      const result = JSON.parse(pushed.stdout) as { newBytes: number; storedBytes: number };
      const figures = {
        pushMbps: bytes / 1e6 / pushed.seconds,
        pullMbps: bytes / 1e6 / pulled.seconds,
        storedRatio: result.storedBytes / result.newBytes,
      };
      const seen = best.get(scheme);
      best.set(scheme, {
        pushMbps: Math.max(seen?.pushMbps ?? 0, figures.pushMbps),
        pullMbps: Math.max(seen?.pullMbps ?? 0, figures.pullMbps),
        storedRatio: figures.storedRatio,
      });
      await rm(repo, { recursive: true, force: true });
      await rm(out, { recursive: true, force: true });
    }
  return best;
}

/**
 * Issue 23's figures, side by side in one run:
 * - per data set and codec: stored bytes / original bytes (in 64 KiB chunks, a chunk no codec
 *   shrinks counted as it is), compress and decompress MB/s on one core;
 * - `tv` end to end (as processes) on a folder of all the data sets: cold push and pull with
 *   compression none, lz4 and zstd, and their ratios to none.
 * Data sets: face-api's float32 tensors (real trained weights, taken out of its files by their
 * manifests) and its files as shipped (mostly uint8-quantized tensors); generated BF16, F16 and F32
 * safetensors (normal, std 0.02); Q8_0 blocks as a quantized GGUF holds them.
 */
export async function compression(ctx: BenchContext): Promise<ScenarioResult> {
  await loadCodecs();
  const generated = (ctx.quick ? 16 : 64) * MiB;
  const face = await faceApiWeights(ctx.log);
  const sets: [string, Buffer][] = [
    ['face-api float32 tensors', face.float32],
    ['face-api files as shipped', Buffer.concat(face.files)],
    ['BF16 safetensors', floatCheckpoint('BF16', generated, 1)],
    ['F16 safetensors', floatCheckpoint('F16', generated, 2)],
    ['F32 safetensors', floatCheckpoint('F32', generated, 3)],
    ['Q8_0 (quantized GGUF)', q8Blocks(generated)],
  ];
  // The best of a few rounds: the first one compiles the loops.
  const rounds = ctx.quick ? 2 : 4;
  const rows: Row[] = [];
  const json: Record<string, Record<string, CodecFigures>> = {};
  for (const [name, data] of sets) {
    // Codec figures on at most 16 MiB of each set: the ratios settle long before.
    const sample = data.subarray(0, Math.min(data.length, 16 * MiB));
    ctx.log(`compression: codecs on ${name} (${round(sample.length / MiB, 1)} MiB)`);
    json[name] = {};
    for (const codec of codecs()) {
      const f = measureCodec(codec, sample, rounds);
      json[name][codec.name] = {
        ratio: round(f.ratio, 3),
        compressMbps: round(f.compressMbps, 0),
        decompressMbps: f.decompressMbps === null ? null : round(f.decompressMbps, 0),
      };
      rows.push({
        scenario: 'compression',
        metric: `${name}: ${codec.name} stored/original`,
        value: round(f.ratio, 3).toString(),
        note: `compress ${round(f.compressMbps, 0)} MB/s, decompress ${f.decompressMbps === null ? '- (no chunk encoded)' : `${round(f.decompressMbps, 0)} MB/s`} per core`,
      });
    }
  }

  rows.push(...groupingRows(sets[2]![1].subarray(0, 16 * MiB), rounds + 2));

  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-compression-'));
  try {
    const folder = join(dir, 'model');
    await mkdir(folder);
    let bytes = 0;
    for (const [i, [name, data]] of sets.entries()) {
      if (name === 'face-api float32 tensors') continue; // its bytes are in the files as shipped
      await writeFile(join(folder, `${i}-${name.replace(/[^a-zA-Z0-9]+/g, '-')}.bin`), data);
      bytes += data.length;
    }
    // The face-api files once more, as files of their own (what a user pushes).
    for (const file of face.files) bytes += file.length;
    for (const [i, file] of face.files.entries())
      await writeFile(join(folder, `face-${i}.bin`), file);
    const e2e = await endToEnd(ctx, dir, folder, bytes, ctx.quick ? 2 : 3);
    const none = e2e.get('none') as EndToEnd;
    const e2eJson: Record<string, unknown> = { bytes };
    for (const [scheme, f] of e2e) {
      e2eJson[scheme] = {
        pushMbps: round(f.pushMbps, 0),
        pullMbps: round(f.pullMbps, 0),
        storedRatio: round(f.storedRatio, 3),
        pushVsNone: round(f.pushMbps / none.pushMbps, 2),
        pullVsNone: round(f.pullMbps / none.pullMbps, 2),
      };
      rows.push({
        scenario: 'compression',
        metric: `tv ${scheme}: cold push MB/s, pull MB/s`,
        value: `${round(f.pushMbps, 0)}, ${round(f.pullMbps, 0)}`,
        note: `x${round(f.pushMbps / none.pushMbps, 2)} and x${round(f.pullMbps / none.pullMbps, 2)} of none; stored/new ${round(f.storedRatio, 3)} (${round(bytes / MiB, 0)} MiB, folder repository)`,
      });
    }
    return { json: { compression: { codecs: json, endToEnd: e2eJson } }, rows };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Byte grouping alone, widths 2 and 4, over 64 KiB chunks on one core (aligned, as in a take). */
function groupingRows(data: Buffer, rounds: number): Row[] {
  const out = new Uint8Array(CHUNK);
  const back = new Uint8Array(CHUNK);
  const aligned = new Uint8Array(data.length);
  aligned.set(data);
  const rows: Row[] = [];
  for (const width of [2, 4]) {
    let group = Infinity;
    let ungroup = Infinity;
    for (let r = 0; r < rounds; r++) {
      let started = performance.now();
      for (let at = 0; at < aligned.length; at += CHUNK)
        groupBytes(aligned.subarray(at, at + CHUNK), width, out);
      group = Math.min(group, performance.now() - started);
      started = performance.now();
      for (let at = 0; at < aligned.length; at += CHUNK) ungroupBytes(out, width, back);
      ungroup = Math.min(ungroup, performance.now() - started);
    }
    rows.push({
      scenario: 'compression',
      metric: `byte grouping, width ${width}: group, ungroup MB/s`,
      value: `${round(data.length / 1e3 / group, 0)}, ${round(data.length / 1e3 / ungroup, 0)}`,
      note: 'per core, 64 KiB chunks',
    });
  }
  return rows;
}
