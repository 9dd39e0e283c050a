import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeManifest } from '../../electron/engine/repository/format';
import { Service } from '../../electron/engine/service';
import { objectKey } from '../../electron/engine/storage/store';
import type { FileDiff, MetadataChange, TensorChange } from '../../shared/types';
import { buildGguf, type GgufSpec, llamaGguf } from '../fixtures/gguf';
import { buildOnnx, mlpOnnx } from '../fixtures/onnx';
import { buildCheckpoint, torchModel } from '../fixtures/pytorch';
import { tempDir } from './stores';

/** Names of the tensors (or keys) by status, every status but unchanged. */
const changed = (items: (TensorChange | MetadataChange)[] | undefined) => {
  const out: Record<string, string[]> = {};
  for (const t of items ?? [])
    if (t.status !== 'unchanged') (out[t.status] ??= []).push('name' in t ? t.name : t.key);
  for (const list of Object.values(out)) list.sort();
  return out;
};

describe('GGUF, ONNX and PyTorch files in the report and the diff', () => {
  let work: { path: string; remove(): Promise<void> };
  let service: Service;
  const vocab = Array.from({ length: 3000 }, (_, i) => `tok${i}`);

  async function pushFiles(model: string, files: Record<string, Buffer>) {
    const dir = join(work.path, `${model}-${Date.now()}-${Math.random()}`);
    await mkdir(dir, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
    await service.push({ model, paths: [dir] });
    await rm(dir, { recursive: true });
  }
  const fileOf = (files: FileDiff[], path: string) => files.find((f) => f.path === path)!;

  beforeAll(async () => {
    work = await tempDir('tv-formats-');
    service = new Service({
      repository: join(work.path, 'repo'),
      redisUrl: undefined,
      mode: 'cli',
      workers: 2,
    });
  });
  afterAll(async () => {
    await service.close();
    await work.remove();
  });

  it('a GGUF v3 pair: the diff names exactly the tensors and metadata keys that changed', async () => {
    const v1 = llamaGguf(3, 256, vocab);
    const tokens = [...vocab];
    tokens[5] = 'tok5-renamed';
    const v2: GgufSpec = {
      metadata: [
        ...v1.metadata
          .filter(([k]) => k !== 'tokenizer.ggml.bos_token_id')
          .map(([k, v]): GgufSpec['metadata'][number] =>
            k === 'general.name'
              ? [k, { string: 'tiny-llama-ft' }]
              : k === 'tokenizer.ggml.tokens'
                ? [k, { strings: tokens }]
                : [k, v],
          ),
        ['general.quantized_by', { string: 'tv tests' }],
      ],
      tensors: [
        ...v1.tensors
          .filter((t) => t.name !== 'blk.1.attn_k.weight')
          .map((t) =>
            t.name === 'blk.2.attn_q.weight'
              ? { ...t, seed: t.seed + 1000 }
              : t.name === 'blk.0.ffn_up.weight'
                ? { ...t, type: 'Q8_0' as const }
                : t.name === 'output.weight'
                  ? { ...t, dims: [256, 3008] }
                  : t,
          ),
        { name: 'blk.3.attn_norm.weight', type: 'F32', dims: [256], seed: 77 },
      ],
    };
    await pushFiles('llama-gguf', { 'model.gguf': buildGguf(v1) });
    await pushFiles('llama-gguf', { 'model.gguf': buildGguf(v2) });
    const diff = await service.diff('llama-gguf@v1', 'llama-gguf@v2');
    const file = fileOf(diff.files, 'model.gguf');
    expect(file).toMatchObject({ status: 'modified', format: 'gguf' });
    expect(changed(file.tensors)).toEqual({
      modified: ['blk.0.ffn_up.weight', 'blk.2.attn_q.weight', 'output.weight'],
      added: ['blk.3.attn_norm.weight'],
      removed: ['blk.1.attn_k.weight'],
    });
    const byName = new Map(file.tensors!.map((t) => [t.name, t]));
    expect(byName.get('blk.0.ffn_up.weight')).toMatchObject({
      changes: ['retyped'],
      dtype: 'Q8_0',
      bytes: (256 * 512 * 34) / 32,
      before: { dtype: 'F16', bytes: 256 * 512 * 2 },
    });
    expect(byName.get('output.weight')).toMatchObject({
      changes: ['reshaped'],
      shape: [256, 3008],
      before: { shape: [256, 3000] },
    });
    expect(byName.get('blk.2.attn_q.weight')!.changes).toEqual(['content']);
    expect(changed(file.metadata)).toEqual({
      modified: ['general.name', 'tokenizer.ggml.tokens'],
      added: ['general.quantized_by'],
      removed: ['tokenizer.ggml.bos_token_id'],
    });
    const meta = new Map(file.metadata!.map((m) => [m.key, m]));
    expect(meta.get('general.name')).toMatchObject({
      value: 'tiny-llama-ft',
      before: 'tiny-llama',
    });
    expect(meta.get('tokenizer.ggml.tokens')).toMatchObject({
      detail: '1 of 3,000 items differ, the first at index 5: "tok5" → "tok5-renamed"',
      value: '[3,000 strings: "tok0", "tok1", "tok2", "tok3", …]',
    });
    // v3 changes one tensor's bytes and leaves the header alone: it is parsed once, for both.
    const v3 = {
      ...v2,
      tensors: v2.tensors.map((t) => (t.name === 'blk.0.attn_q.weight' ? { ...t, seed: 4242 } : t)),
    };
    await pushFiles('llama-gguf', { 'model.gguf': buildGguf(v3) });
    const same = fileOf((await service.diff('llama-gguf@v2', 'llama-gguf@v3')).files, 'model.gguf');
    expect(changed(same.tensors)).toEqual({ modified: ['blk.0.attn_q.weight'] });
    expect(changed(same.metadata)).toEqual({});
    // The report of v2 names the same changes, and which tensors the new chunks carry.
    const report = await service.report('llama-gguf@v2');
    const r = report.files.find((f) => f.path === 'model.gguf')!;
    expect(changed(r.tensors)).toEqual(changed(file.tensors));
    const carried = new Map(r.tensors!.map((t) => [t.name, t.newBytes]));
    expect(carried.get('blk.2.attn_q.weight')).toBeGreaterThan(0.9 * 256 * 256 * (34 / 32));
    expect(carried.get('blk.0.attn_q.weight')).toBeLessThan(256 * 1024);
  });

  it('a GGUF of version 2 reads tensor by tensor', async () => {
    await pushFiles('gguf-v2', {
      'old.gguf': buildGguf({ ...llamaGguf(1, 64, vocab.slice(0, 100)), version: 2 }),
    });
    const r = (await service.report('gguf-v2')).files[0]!;
    expect(r).toMatchObject({ format: 'gguf' });
    expect(r.note).toBeUndefined();
    expect(r.tensors!.map((t) => t.dtype).sort()).toEqual([
      'F16',
      'F16',
      'F32',
      'Q8_0',
      'Q8_0',
      'Q8_0',
    ]);
  });

  it('an ONNX pair: changed initializers by name, opset and producer, nodes by count', async () => {
    const v1 = mlpOnnx(192);
    const v2 = {
      ...v1,
      opset: 18,
      initializers: v1.initializers.map((i) =>
        i.name === 'layers.1.weight' ? { ...i, seed: 99 } : i,
      ),
      nodes: [
        ...v1.nodes,
        ['/out/Softmax', 'Softmax', ['/layers.2/Relu']] as [string, string, string[]],
      ],
    };
    await pushFiles('mlp-onnx', { 'model.onnx': buildOnnx(v1).model });
    await pushFiles('mlp-onnx', { 'model.onnx': buildOnnx(v2).model });
    const file = fileOf((await service.diff('mlp-onnx@v1', 'mlp-onnx@v2')).files, 'model.onnx');
    expect(file.format).toBe('onnx');
    expect(changed(file.tensors)).toEqual({ modified: ['layers.1.weight'] });
    expect(changed(file.metadata)).toEqual({ modified: ['graph.nodes', 'opset.ai.onnx'] });
    expect(file.metadata!.find((m) => m.key === 'graph.nodes')).toMatchObject({
      value: '10',
      before: '9',
      detail: '0 changed, 1 added, 0 removed',
    });
  });

  it('ONNX external data: a changed initializer is named though the model file is unchanged', async () => {
    const v1 = mlpOnnx(128, true);
    const v2 = {
      ...v1,
      initializers: v1.initializers.map((i) =>
        i.name === 'layers.2.bias' ? { ...i, seed: 7 } : i,
      ),
    };
    const a = buildOnnx(v1);
    const b = buildOnnx(v2);
    expect(b.model.equals(a.model)).toBe(true);
    await pushFiles('mlp-ext', { 'model.onnx': a.model, 'model.onnx.data': a.data! });
    await pushFiles('mlp-ext', { 'model.onnx': b.model, 'model.onnx.data': b.data! });
    const diff = await service.diff('mlp-ext@v1', 'mlp-ext@v2');
    const model = fileOf(diff.files, 'model.onnx');
    expect(model.status).toBe('unchanged');
    expect(changed(model.tensors)).toEqual({ modified: ['layers.2.bias'] });
    expect(model.tensors!.find((t) => t.name === 'layers.2.bias')).toMatchObject({
      file: 'model.onnx.data',
    });
    expect(model.note).toMatch(/external data its tensors point to changed/);
    expect(fileOf(diff.files, 'model.onnx.data').status).toBe('modified');
    const report = await service.report('mlp-ext@v2');
    expect(report.files.find((f) => f.path === 'model.onnx.data')!.note).toBe(
      'holds the data of 6 tensors of model.onnx',
    );
    const bias = report.files
      .find((f) => f.path === 'model.onnx')!
      .tensors!.find((t) => t.name === 'layers.2.bias')!;
    expect(bias).toMatchObject({ status: 'modified', newBytes: 128 * 4 });
  });

  it('a PyTorch pair: changed storages attributed to every tensor name that views them', async () => {
    const v1 = torchModel(2, 192);
    const v2 = v1.map((t) =>
      t.name === 'embed.weight' || t.name === 'layers.1.attn.weight'
        ? { ...t, seed: t.seed + 500 }
        : t,
    );
    await pushFiles('torch', { 'pytorch_model.bin': buildCheckpoint(v1) });
    await pushFiles('torch', { 'pytorch_model.bin': buildCheckpoint(v2, { epoch: 2, lr: 0.001 }) });
    const file = fileOf((await service.diff('torch@v1', 'torch@v2')).files, 'pytorch_model.bin');
    expect(file.format).toBe('pytorch');
    expect(changed(file.tensors)).toEqual({
      modified: ['model.embed.weight', 'model.layers.1.attn.weight', 'model.lm_head.weight'],
    });
    expect(file.tensors!.find((t) => t.name === 'model.lm_head.weight')).toMatchObject({
      storage: '0',
      dtype: 'float16',
    });
    expect(changed(file.metadata)).toEqual({ modified: ['epoch'] });
    // The built `tv` (one bundle: its zip and protobuf libraries as bundled) says the same.
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, ['bin/tv.mjs', ...args], {
        env: { ...process.env, TV_REPO: join(work.path, 'repo'), TV_REDIS_URL: '' },
      });
    const json = JSON.parse((await run(['diff', 'torch@v1', 'torch@v2', '--json'])).stdout);
    expect(changed(fileOf(json.files, 'pytorch_model.bin').tensors)).toEqual(changed(file.tensors));
    const text = (await run(['diff', 'torch@v1', 'torch@v2'])).stdout;
    expect(text).toContain('pytorch_model.bin (PyTorch checkpoint): 3 of 6 tensors changed');
    expect(text).toMatch(/epoch +modified +1 +2/);
  });

  it('damaged files claiming a format get one line each and are compared as opaque files', async () => {
    const gguf = buildGguf(llamaGguf(1, 64, vocab.slice(0, 100)));
    gguf.writeBigUInt64LE(1_000_000_000n, 8);
    const onnx = buildOnnx(mlpOnnx(64)).model;
    const evil = buildCheckpoint(torchModel(1, 16));
    const at = evil.indexOf('collections\nOrderedDict');
    evil.write('posix\nsystem\n\n\n\n\n\n\n\n\n\n', at, 'latin1');
    await pushFiles('damaged', {
      'huge.gguf': gguf,
      'cut.onnx': onnx.subarray(0, onnx.length - 500),
      'evil.pt': evil,
      'weights.bin': Buffer.alloc(1000, 7),
    });
    const report = await service.report('damaged');
    const notes = Object.fromEntries(report.files.map((f) => [f.path, f.note]));
    expect(notes['huge.gguf']).toMatch(
      /^GGUF header says 1e9 tensors and 9 metadata keys, file is [\d.]+ KiB; compared as an opaque file$/,
    );
    expect(notes['cut.onnx']).toMatch(
      /^ONNX header runs past the end of the (file|field holding it)/,
    );
    expect(notes['evil.pt']).toMatch(
      /^PyTorch checkpoint: not readable as a state dict: the pickle names posix.system/,
    );
    expect(notes['weights.bin']).toBeUndefined();
    for (const f of report.files) expect(f.tensors).toBeUndefined();
    expect(report.files.find((f) => f.path === 'huge.gguf')!.format).toBe('gguf');
  });

  it('a model file whose header chunk is missing from the repository gets a note naming it, not a crash', async () => {
    const repo = await service.repository();
    const missing = 'ab'.repeat(32);
    const manifest = encodeManifest(
      { size: 4096, fileHash: '0'.repeat(64), chunks: [{ hash: missing, length: 4096 }] },
      'sha256',
    );
    const m = repo.hash(manifest);
    await repo.store.put(objectKey(m), manifest);
    const stats = {
      logicalBytes: 4096,
      newBytes: 4096,
      reusedBytes: 0,
      reusedFromParentBytes: 0,
      chunks: 1,
      newChunks: 1,
      metadataBytes: 0,
      seconds: 1,
    };
    await repo.publish({
      format: 1,
      kind: 'version',
      model: 'lost',
      parent: null,
      createdAt: new Date().toISOString(),
      author: 't',
      message: '',
      files: [{ path: 'model.gguf', size: 4096, manifest: m }],
      stats,
    });
    const file = (await service.report('lost')).files[0]!;
    expect(file.note).toMatch(
      new RegExp(`^chunk ${missing} could not be read \\(.*\\); run \`tv verify\``),
    );
    expect(file.tensors).toBeUndefined();
  });
});
