import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeManifest, type Manifest } from '../../electron/engine/repository/format';
import type { Repository } from '../../electron/engine/repository/repository';
import { HEADER_WINDOW } from '../../electron/engine/report/formats/cursor';
import { Service } from '../../electron/engine/service';
import { objectKey } from '../../electron/engine/storage/store';
import {
  ggufHeader,
  ggufTensorBytes,
  type GgufSpec,
  type GgufTensor,
} from '../../test/fixtures/gguf';
import { round, type BenchContext, type ScenarioResult } from '../report';

const CHUNK = 65_536;
const fakeChunk = () => ({ hash: randomBytes(32).toString('hex'), length: CHUNK });

/** Publishes a version of one file made of the given chunks (stored or not: see the callers). */
async function publish(
  repo: Repository,
  model: string,
  path: string,
  chunks: Manifest['chunks'],
  parent: string | null,
) {
  const size = chunks.reduce((n, c) => n + c.length, 0);
  const bytes = encodeManifest({ size, fileHash: '0'.repeat(64), chunks }, 'sha256');
  const m = repo.hash(bytes);
  await repo.store.put(objectKey(m), bytes);
  const stats = {
    logicalBytes: size,
    newBytes: 0,
    reusedBytes: 0,
    reusedFromParentBytes: 0,
    chunks: chunks.length,
    newChunks: 0,
    metadataBytes: 0,
    seconds: 1,
  };
  const entry = await repo.publish({
    format: 1,
    kind: 'version',
    model,
    parent,
    createdAt: new Date().toISOString(),
    author: 'bench',
    message: '',
    files: [{ path, size, manifest: m }],
    stats,
  });
  return entry.id;
}

/** A 10 GB opaque file whose v2 rewrites 40 of every 997 chunks: the report from manifests alone. */
async function opaqueVersions(repo: Repository): Promise<number> {
  const n = 160_000;
  const v1 = Array.from({ length: n }, fakeChunk);
  const v2 = v1.map((c, i) => (i % 997 < 40 ? fakeChunk() : c));
  // .dat: no model format claims it, so nothing but the manifests is read.
  const first = await publish(repo, 'ten-gb', 'weights.dat', v1, null);
  await publish(repo, 'ten-gb', 'weights.dat', v2, first);
  return n;
}

/** A llama-shaped GGUF of ~10 GB: 150,000-token vocabulary, 20 blocks of F16 weights. */
function ggufSpec(name: string): GgufSpec {
  const vocab = Array.from({ length: 150_000 }, (_, i) => `tok-${i}`);
  const h = 4096;
  const tensors: GgufTensor[] = [
    { name: 'token_embd.weight', type: 'F16', dims: [h, vocab.length], seed: 1 },
  ];
  for (let l = 0; l < 20; l++) {
    for (const p of ['attn_q', 'attn_k', 'attn_v', 'attn_output'])
      tensors.push({ name: `blk.${l}.${p}.weight`, type: 'F16', dims: [h, h], seed: 0 });
    for (const p of ['ffn_gate', 'ffn_up', 'ffn_down'])
      tensors.push({ name: `blk.${l}.${p}.weight`, type: 'F16', dims: [h, 11008], seed: 0 });
    for (const p of ['attn_norm', 'ffn_norm'])
      tensors.push({ name: `blk.${l}.${p}.weight`, type: 'F32', dims: [h], seed: 0 });
  }
  tensors.push({ name: 'output.weight', type: 'F16', dims: [h, vocab.length], seed: 2 });
  return {
    metadata: [
      ['general.architecture', { string: 'llama' }],
      ['general.name', { string: name }],
      ['tokenizer.ggml.tokens', { strings: vocab }],
      ['tokenizer.ggml.scores', { f32s: vocab.map((_, i) => -i) }],
    ],
    tensors,
  };
}

/**
 * The GGUF's chunks: its header's for real (stored, so the report reads and parses it), then each
 * tensor's data as 64 KiB chunks that are never read (hashes only), the same hashes in both
 * versions for tensors a fine-tune left alone.
 */
async function ggufChunks(repo: Repository, spec: GgufSpec, data: Map<string, Manifest['chunks']>) {
  const { header } = ggufHeader(spec);
  const chunks: Manifest['chunks'] = [];
  for (let at = 0; at < header.length; at += CHUNK) {
    const bytes = header.subarray(at, at + CHUNK);
    const hash = repo.hash(bytes);
    await repo.store.put(objectKey(hash), bytes);
    chunks.push({ hash, length: bytes.length });
  }
  for (const t of spec.tensors) {
    let list = data.get(t.name);
    if (!list) {
      const size = ggufTensorBytes(t);
      list = Array.from({ length: Math.ceil(size / CHUNK) }, (_, i) => ({
        ...fakeChunk(),
        length: Math.min(CHUNK, size - i * CHUNK),
      }));
      // A header read takes a window past its end: the first data chunks exist for real.
      if (chunks.length * CHUNK < header.length + CHUNK)
        for (let i = 0; i <= HEADER_WINDOW / CHUNK; i++) {
          const bytes = randomBytes(CHUNK);
          list[i] = { hash: repo.hash(bytes), length: CHUNK };
          await repo.store.put(objectKey(list[i]!.hash), bytes);
        }
      data.set(t.name, list);
    }
    chunks.push(...list);
  }
  return chunks;
}

/** v1, and v2: a fine-tune of 10 weights, renamed (so both headers are read and parsed). */
async function ggufVersions(repo: Repository): Promise<{ chunks: number; gb: number }> {
  const data = new Map<string, Manifest['chunks']>();
  const v1 = await ggufChunks(repo, ggufSpec('bench-10gb'), data);
  for (let l = 0; l < 10; l++) data.delete(`blk.${l * 2}.attn_q.weight`);
  const v2 = await ggufChunks(repo, ggufSpec('bench-10gb-ft'), data);
  const first = await publish(repo, 'ten-gb-gguf', 'model.gguf', v1, null);
  await publish(repo, 'ten-gb-gguf', 'model.gguf', v2, first);
  return { chunks: v2.length, gb: v2.reduce((n, c) => n + c.length, 0) / 1e9 };
}

/**
 * Runs the two reports in turn, `rounds` times: each one's best time, and the median of the
 * GGUF/opaque ratio taken round by round (pairs keep the ratio meaningful on a loaded machine).
 */
async function paired(rounds: number, a: () => Promise<unknown>, b: () => Promise<unknown>) {
  const times: [number, number][] = [];
  for (let r = 0; r < rounds; r++) {
    const pair: number[] = [];
    for (const run of [a, b]) {
      const started = performance.now();
      await run();
      pair.push(performance.now() - started);
    }
    times.push(pair as [number, number]);
  }
  const ratios = times.map(([x, y]) => y / x).sort((p, q) => p - q);
  return {
    a: Math.min(...times.map((t) => t[0])),
    b: Math.min(...times.map((t) => t[1])),
    ratio: ratios[Math.floor(ratios.length / 2)] as number,
  };
}

/**
 * The dedup report of a 10 GB version against its parent: an opaque file (manifests only), and a
 * GGUF of the same size whose headers (2.6 MB, a 150,000-token vocabulary) are read and parsed
 * and whose 223 tensors are compared chunk by chunk.
 */
export async function report(ctx: BenchContext): Promise<ScenarioResult> {
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-report-'));
  const service = new Service({ repository: join(dir, 'repo'), redisUrl: undefined, mode: 'cli' });
  try {
    const repo = await service.repository(true);
    const n = await opaqueVersions(repo);
    const gguf = await ggufVersions(repo);
    ctx.log(
      `report: 10 GB opaque file (${n} chunks) and ${round(gguf.gb, 1)} GB GGUF (${gguf.chunks} chunks), in turn`,
    );
    let runs = 0;
    let changed = 0;
    const t = await paired(
      ctx.quick ? 3 : 7,
      async () => {
        runs = (await service.report('ten-gb@v2')).files[0]!.runs.length;
      },
      async () => {
        const file = (await service.report('ten-gb-gguf@v2')).files[0]!;
        if (!file.tensors) throw new Error(`bench: the GGUF was not read (${file.note})`);
        changed = file.tensors.filter((x) => x.status !== 'unchanged').length;
        if (changed !== 10)
          throw new Error(`bench: the GGUF report found ${changed} changed tensors, not 10`);
      },
    );
    const opaque = t.a;
    const ggufMs = t.b;
    return {
      json: {
        report: {
          chunks: n,
          gb: round((n * CHUNK) / 1e9, 1),
          runs,
          ms: round(opaque, 0),
          ggufMs: round(ggufMs, 0),
          ggufChunks: gguf.chunks,
        },
      },
      rows: [
        {
          scenario: 'report',
          metric: '10 GB report ms',
          value: String(round(opaque, 0)),
          note: `${n} chunks, ${runs} runs; target well under 1000`,
        },
        {
          scenario: 'report',
          metric: '10 GB GGUF report ms',
          value: String(round(ggufMs, 0)),
          note: `${gguf.chunks} chunks, headers parsed, ${changed} of 223 tensors changed; ${round(t.ratio, 2)}x the opaque file (median of pairs); target well under 1000`,
        },
      ],
    };
  } finally {
    await service.close();
    await rm(dir, { recursive: true, force: true });
  }
}
