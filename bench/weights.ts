// Weights to measure compression on: real published ones (fetched with `npm pack` at bench time,
// kept in a cache folder outside the repository, never committed) and generated ones with the
// value distributions of trained models (normal, small spread), not uniform random bytes.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSafetensors, encodeFloats, normalValues } from '../test/fixtures/safetensors';

/** A published package that ships its model files (TensorFlow.js weights: .bin + manifests). */
const FACE_API = '@vladmandic/face-api@1.7.15';

/** Where fetched weights are kept between runs: TV_BENCH_DATA, or a folder in the temp dir. */
export function benchDataDir(): string {
  return process.env['TV_BENCH_DATA'] || join(tmpdir(), 'tv-bench-data');
}

export interface FaceApiWeights {
  /** The model folder: the .bin files as shipped (most tensors uint8-quantized, some float32). */
  dir: string;
  /** The .bin files' bytes. */
  files: Buffer[];
  /** The float32 tensors alone (the manifests say which bytes): real trained float weights. */
  float32: Buffer;
}

/** The face-api model files, fetched with `npm pack` once and unpacked into the cache folder. */
export async function faceApiWeights(log: (m: string) => void): Promise<FaceApiWeights> {
  const root = join(benchDataDir(), 'face-api-1.7.15');
  const dir = join(root, 'package', 'model');
  if (!existsSync(dir)) {
    await mkdir(root, { recursive: true });
    log(`compression: fetching ${FACE_API} with npm pack into ${root}`);
    const name = execFileSync('npm', ['pack', FACE_API, '--silent', '--pack-destination', root], {
      encoding: 'utf8',
    }).trim();
    execFileSync('tar', ['-xzf', join(root, name.split('\n').at(-1) as string), '-C', root]);
  }
  const names = (await readdir(dir)).sort();
  const files = await Promise.all(
    names.filter((n) => n.endsWith('.bin')).map((n) => readFile(join(dir, n))),
  );
  const float32: Buffer[] = [];
  for (const manifest of names.filter((n) => n.endsWith('-weights_manifest.json'))) {
    const groups = JSON.parse(await readFile(join(dir, manifest), 'utf8')) as {
      paths: string[];
      weights: { shape: number[]; dtype: string; quantization?: { dtype: string } }[];
    }[];
    for (const group of groups) {
      const bin = Buffer.concat(await Promise.all(group.paths.map((p) => readFile(join(dir, p)))));
      let at = 0;
      for (const w of group.weights) {
        const count = w.shape.reduce((a, b) => a * b, 1);
        const width = w.quantization ? (w.quantization.dtype === 'uint8' ? 1 : 2) : 4;
        if (!w.quantization && w.dtype === 'float32')
          float32.push(bin.subarray(at, at + count * 4));
        at += count * width;
      }
    }
  }
  return { dir, files, float32: Buffer.concat(float32) };
}

/** A safetensors checkpoint of `bytes` of F16 or BF16 weights, normal with std 0.02, 4 MiB tensors. */
export function floatCheckpoint(dtype: 'F16' | 'BF16' | 'F32', bytes: number, seed = 1): Buffer {
  const width = dtype === 'F32' ? 4 : 2;
  const per = (4 << 20) / width;
  const tensors = Array.from({ length: Math.max(1, Math.round(bytes / (4 << 20))) }, (_, i) => ({
    name: `layers.${i}.weight`,
    dtype,
    shape: [per],
    seed: seed * 1000 + i,
    values: 'normal' as const,
  }));
  return buildSafetensors(tensors);
}

/**
 * Quantized weights as GGUF's Q8_0 lays them out: blocks of 32 values, each an F16 scale
 * (max |x| / 127) then 32 int8 quants, from normal values. The tensor data of a quantized GGUF.
 */
export function q8Blocks(bytes: number, seed = 7): Buffer {
  const blocks = Math.floor(bytes / 34);
  const values = normalValues(seed, blocks * 32);
  const out = Buffer.alloc(blocks * 34);
  for (let b = 0; b < blocks; b++) {
    let max = 0;
    for (let i = 0; i < 32; i++) max = Math.max(max, Math.abs(values[b * 32 + i] as number));
    const scale = max / 127 || 1;
    out.set(encodeFloats(Float64Array.of(scale), 'F16'), b * 34);
    for (let i = 0; i < 32; i++)
      out.writeInt8(Math.round((values[b * 32 + i] as number) / scale), b * 34 + 2 + i);
  }
  return out;
}
