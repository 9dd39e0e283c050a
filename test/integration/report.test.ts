import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeManifest } from '../../electron/engine/repository/format';
import { Service } from '../../electron/engine/service';
import { objectKey } from '../../electron/engine/storage/store';
import type { FileReport, TensorChange } from '../../shared/types';
import {
  buildSafetensors,
  checkpointSpec,
  fineTune,
  writeSafetensors,
  type TensorSpec,
} from '../fixtures/safetensors';
import { tempDir } from './stores';

const statusOf = (tensors: TensorChange[] | undefined) =>
  Object.fromEntries((tensors ?? []).map((t) => [t.name, t.status]));

describe('dedup report and version diff', () => {
  let work: { path: string; remove(): Promise<void> };
  let service: Service;
  let src: string;
  const base = checkpointSpec(4, 512);
  const changed = ['model.layers.1.self_attn.q_proj.weight', 'model.layers.3.mlp.up_proj.weight'];
  const tuned = fineTune(base, changed);
  const adapter: TensorSpec = {
    name: 'lora.adapter.weight',
    dtype: 'F16',
    shape: [64, 512],
    seed: 4242,
  };
  const dropped = 'model.layers.0.input_layernorm.weight';
  const v3 = [...tuned.filter((t) => t.name !== dropped), adapter];

  beforeAll(async () => {
    work = await tempDir('tv-report-');
    service = new Service({
      repository: join(work.path, 'repo'),
      redisUrl: undefined,
      mode: 'cli',
      workers: 2,
    });
    src = join(work.path, 'ckpt');
    await mkdir(src);
    await writeFile(join(src, 'config.json'), '{"layers": 4}');
    await writeSafetensors(join(src, 'model.safetensors'), base);
    await service.push({ model: 'llm', paths: [src], message: 'base' });
    // A fine-tune of two tensors, saved with a rewritten (longer) header: every tensor moves.
    await writeSafetensors(join(src, 'model.safetensors'), tuned, {
      step: '1000',
      optimizer: 'adamw',
    });
    await service.push({ model: 'llm', paths: [src], message: 'fine-tune' });
    await writeSafetensors(join(src, 'model.safetensors'), v3, { step: '2000' });
    await service.push({ model: 'llm', paths: [src], message: 'adapter' });
  });
  afterAll(async () => {
    await service.close();
    await work.remove();
  });

  it('reports exactly the fine-tuned tensors modified, all others unchanged, although the header moved them', async () => {
    const diff = await service.diff('llm@v1', 'llm@v2');
    const file = diff.files.find((f) => f.path === 'model.safetensors')!;
    expect(file.status).toBe('modified');
    const statuses = statusOf(file.tensors);
    expect(Object.keys(statuses)).toHaveLength(base.length);
    for (const t of base)
      expect(statuses[t.name], t.name).toBe(changed.includes(t.name) ? 'modified' : 'unchanged');
    expect(diff.files.find((f) => f.path === 'config.json')).toMatchObject({
      status: 'unchanged',
      bytesChanged: 0,
    });
    const changedBytes = tuned
      .filter((t) => changed.includes(t.name))
      .reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1) * 2, 0);
    expect(file.bytesChanged).toBeGreaterThanOrEqual(changedBytes);
    expect(file.bytesChanged).toBeLessThan(changedBytes + 6 * 256 * 1024);
    expect(file.format).toBe('safetensors');
    expect(file.tensors!.find((t) => t.name === changed[0])).toMatchObject({
      name: changed[0],
      status: 'modified',
      changes: ['content'],
      dtype: 'BF16',
      shape: [512, 512],
      bytes: 512 * 512 * 2,
    });
  });

  it('reports an appended adapter tensor added and a dropped tensor removed', async () => {
    const diff = await service.diff('llm@v2', 'llm@v3');
    const statuses = statusOf(diff.files.find((f) => f.path === 'model.safetensors')!.tensors);
    expect(statuses[adapter.name]).toBe('added');
    expect(statuses[dropped]).toBe('removed');
    const others = Object.entries(statuses).filter(
      ([name]) => name !== adapter.name && name !== dropped,
    );
    expect(others.every(([, s]) => s === 'unchanged')).toBe(true);
    expect(others).toHaveLength(base.length - 1);
  });

  it('a version report adds up, its chunk map covers every byte, and it names the changed tensors', async () => {
    const report = await service.report('llm@v2');
    expect(report.newBytes + report.reusedBytes).toBe(report.logicalBytes);
    expect(report.reusedFromParentBytes + report.reusedElsewhereBytes).toBe(report.reusedBytes);
    expect(report.reusedFromParentBytes).toBeGreaterThan(report.newBytes);
    for (const f of report.files) {
      expect(f.newBytes + f.reusedFromParentBytes + f.reusedElsewhereBytes).toBe(f.size);
      let at = 0;
      for (const run of f.runs) {
        expect(run.offset).toBe(at);
        at += run.length;
      }
      expect(at).toBe(f.size);
    }
    const model = report.files.find((f) => f.path === 'model.safetensors') as FileReport;
    expect(
      Object.entries(statusOf(model.tensors))
        .filter(([, s]) => s !== 'unchanged')
        .map(([n]) => n)
        .sort(),
    ).toEqual([...changed].sort());
    expect(model.runs.some((r) => r.source === 'new')).toBe(true);
    expect(model.runs.some((r) => r.source === 'parent')).toBe(true);
    const first = await service.report('llm@v1');
    expect(first.newBytes).toBe(first.logicalBytes);
    expect(statusOf(first.files.find((f) => f.path === 'model.safetensors')!.tensors)).toEqual(
      Object.fromEntries(base.map((t) => [t.name, 'added'])),
    );
  });

  it("a first version's report counts its bytes new, although a model named before it, pushed later, holds them", async () => {
    // "copy" sorts before "llm" by name; its version came after llm@v1 and reused every byte.
    const copy = join(work.path, 'copy');
    await mkdir(copy);
    await writeFile(join(copy, 'config.json'), '{"layers": 4}');
    await writeSafetensors(join(copy, 'model.safetensors'), base);
    await service.push({ model: 'copy', paths: [copy] });
    const first = await service.report('llm@v1');
    expect(first.note).toBeNull();
    for (const f of first.files) {
      expect(f.reusedElsewhereBytes, f.path).toBe(0);
      expect(f.newBytes, f.path).toBe(f.size);
    }
    // The later version did take them from elsewhere.
    const later = await service.report('copy@v1');
    expect(later.newBytes).toBe(0);
    for (const f of later.files) expect(f.reusedElsewhereBytes, f.path).toBe(f.size);
    await service.remove('copy');
  });

  it('a corrupt safetensors header gives a file-level report with a note, never a crash', async () => {
    const bad = join(work.path, 'bad');
    await mkdir(bad);
    const good = buildSafetensors(checkpointSpec(1, 64));
    const tooLong = Buffer.from(good);
    tooLong.writeBigUInt64LE(BigInt(good.length * 2), 0);
    const notJson = Buffer.from(good);
    notJson.write('{{{{', 8);
    const outOfRange = Buffer.concat([
      Buffer.alloc(8),
      Buffer.from('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,999999]}}'),
    ]);
    outOfRange.writeBigUInt64LE(BigInt(outOfRange.length - 8), 0);
    await writeFile(join(bad, 'too-long.safetensors'), tooLong);
    await writeFile(join(bad, 'not-json.safetensors'), notJson);
    await writeFile(join(bad, 'out-of-range.safetensors'), outOfRange);
    await writeFile(join(bad, 'tiny.safetensors'), Buffer.from([1, 2, 3]));
    await service.push({ model: 'broken', paths: [bad] });
    const report = await service.report('broken');
    const notes = Object.fromEntries(report.files.map((f) => [f.path, f.note]));
    expect(notes['too-long.safetensors']).toMatch(
      /header length \d+ runs past the end of the file/,
    );
    expect(notes['not-json.safetensors']).toMatch(/header is not valid JSON/);
    expect(notes['out-of-range.safetensors']).toMatch(
      /tensor "w" data_offsets run past the end of the file/,
    );
    expect(notes['tiny.safetensors']).toMatch(/shorter than the 8-byte header length/);
    for (const f of report.files) expect(f.tensors).toBeUndefined();
    await rm(bad, { recursive: true });
  });

  it('computes the chunk map of a 10 GB version from its manifests alone', async () => {
    const repo = await service.repository();
    const chunkCount = 160_000; // 10 GB at 64 KiB
    const size = 65_536;
    const fresh = Array.from({ length: chunkCount }, () => ({
      hash: randomBytes(32).toString('hex'),
      length: size,
    }));
    const v1Manifest = encodeManifest(
      { size: chunkCount * size, fileHash: '0'.repeat(64), chunks: fresh },
      'sha256',
    );
    // v2 rewrites every tenth stretch of 100 chunks.
    const v2Chunks = fresh.map((c, i) =>
      Math.floor(i / 100) % 10 === 3 ? { hash: randomBytes(32).toString('hex'), length: size } : c,
    );
    const v2Manifest = encodeManifest(
      { size: chunkCount * size, fileHash: '1'.repeat(64), chunks: v2Chunks },
      'sha256',
    );
    // .dat: no model format claims it, so the report reads nothing but the manifests (whose
    // chunks this test never stores).
    const stats = {
      logicalBytes: chunkCount * size,
      newBytes: 0,
      reusedBytes: 0,
      reusedFromParentBytes: 0,
      chunks: chunkCount,
      newChunks: 0,
      metadataBytes: 0,
      seconds: 1,
    };
    const m1 = repo.hash(v1Manifest);
    const m2 = repo.hash(v2Manifest);
    await repo.store.put(objectKey(m1), v1Manifest);
    await repo.store.put(objectKey(m2), v2Manifest);
    const record = {
      format: 1 as const,
      kind: 'version' as const,
      model: 'huge',
      parent: null,
      createdAt: new Date().toISOString(),
      author: 't',
      message: '',
      stats,
    };
    const first = await repo.publish({
      ...record,
      files: [{ path: 'weights.dat', size: chunkCount * size, manifest: m1 }],
    });
    await repo.publish({
      ...record,
      parent: first.id,
      files: [{ path: 'weights.dat', size: chunkCount * size, manifest: m2 }],
    });
    const report = await service.report('huge@v2');
    const file = report.files[0]!;
    expect(file.runs).toHaveLength(321); // 160 rewritten stretches between 161 kept ones
    expect(file.newBytes).toBe(16_000 * size);
    expect(file.note).toBeUndefined();
    expect(report.newBytes + report.reusedBytes).toBe(report.logicalBytes);
  });
});

describe('reports and diffs kept on this machine', () => {
  let work: { path: string; remove(): Promise<void> };
  const open = (cacheDir?: string) =>
    new Service({
      repository: join(work.path, 'repo'),
      redisUrl: undefined,
      mode: 'cli',
      workers: 1,
      ...(cacheDir ? { cacheDir } : {}),
    });
  beforeAll(async () => {
    work = await tempDir('tv-report-cache-');
    const src = join(work.path, 'ckpt');
    await mkdir(src);
    const base = checkpointSpec(2, 256);
    const service = open();
    for (const model of ['m', 'd']) {
      await writeSafetensors(join(src, 'model.safetensors'), base);
      await writeFile(join(src, 'config.json'), '{"layers": 2, "rope": {"theta": 10000}}');
      await writeFile(join(src, 'generation.yaml'), 'top_p: 0.9\ntemperature: 0.7\n');
      await service.push({ model, paths: [src] });
      await writeSafetensors(join(src, 'model.safetensors'), fineTune(base, ['lm_head.weight']));
      await writeFile(
        join(src, 'config.json'),
        '{\n  "rope": {"theta": 500000},\n  "layers": 2\n}',
      );
      await writeFile(join(src, 'generation.yaml'), 'top_p: 0.9\ntemperature: 0.6\n');
      await service.push({ model, paths: [src] });
    }
    await service.close();
  });
  afterAll(() => work.remove());

  it('computes a report once, with progress, and reads it back in later sessions', async () => {
    const cacheDir = join(work.path, 'cache');
    const first = open(cacheDir);
    const progress: { phase: string; filesDone: number; files: number; headersRead: number }[] = [];
    const computed = await first.report('m@v2', { onProgress: (p) => progress.push(p) });
    await first.close();
    expect(computed.cached).toBe(false);
    expect(progress[0]?.phase).toBe('manifests');
    expect(progress.at(-1)).toMatchObject({ phase: 'files', filesDone: 3, files: 3 });
    expect(computed.files.find((f) => f.path === 'config.json')?.text?.keys).toHaveLength(1);
    expect(progress.at(-1)!.headersRead).toBeGreaterThanOrEqual(1);

    const later = open(cacheDir);
    const events: unknown[] = [];
    later.on('reportProgress', (e) => events.push(e));
    const kept = await later.report('m@v2');
    expect(kept.cached).toBe(true);
    expect(events).toEqual([]);
    expect({ ...kept, cached: false }).toEqual(computed);

    // The parent removed since: the kept report says so (its comparison still holds).
    await later.remove('m@v1');
    expect((await later.report('m@v2')).parent).toMatchObject({ state: 'removed', label: 'v1' });
    await later.close();
  });

  it('keeps a diff by both version ids, and computes again without a cache folder', async () => {
    const cacheDir = join(work.path, 'cache-diff');
    const a = open(cacheDir);
    const computed = await a.diff('d@v1', 'd@v2');
    await a.close();
    const b = open(cacheDir);
    const kept = await b.diff('d@v1', 'd@v2');
    await b.close();
    expect(kept.cached).toBe(true);
    expect(kept.files).toEqual(computed.files);
    // Small text files: JSON key by key (reformatted and reordered is no change), YAML by line.
    expect(computed.files.find((f) => f.path === 'config.json')?.text).toEqual({
      kind: 'json',
      keys: [{ key: 'rope.theta', status: 'modified', before: '10000', value: '500000' }],
    });
    expect(computed.files.find((f) => f.path === 'generation.yaml')?.text).toEqual({
      kind: 'lines',
      hunks: [
        {
          oldStart: 1,
          newStart: 1,
          lines: [' top_p: 0.9', '-temperature: 0.7', '+temperature: 0.6'],
        },
      ],
    });
    const none = open();
    expect((await none.diff('d@v1', 'd@v2')).cached).toBe(false);
    await none.close();
  });
});

describe('delta statistics between two versions', () => {
  let work: { path: string; remove(): Promise<void> };
  let service: Service;
  const big = 'model.layers.0.mlp.up_proj.weight';
  const spec: TensorSpec[] = [
    {
      name: 'model.embed_tokens.weight',
      dtype: 'BF16',
      shape: [256, 256],
      seed: 1,
      values: 'normal',
    },
    // 16 MiB: read in four windows, never whole.
    { name: big, dtype: 'F32', shape: [2048, 2048], seed: 2, values: 'normal' },
    {
      name: 'model.layers.0.self_attn.q_proj.weight',
      dtype: 'F16',
      shape: [256, 256],
      seed: 3,
      values: 'normal',
    },
    {
      name: 'model.layers.0.input_layernorm.weight',
      dtype: 'F32',
      shape: [256],
      seed: 4,
      values: 'normal',
    },
    { name: 'lm_head.weight', dtype: 'BF16', shape: [256, 256], seed: 5, values: 'normal' },
  ];
  const tuned = spec.map((t) =>
    [big, 'lm_head.weight', 'model.layers.0.self_attn.q_proj.weight'].includes(t.name)
      ? { ...t, seed: t.seed + 1000 }
      : t,
  );

  beforeAll(async () => {
    work = await tempDir('tv-delta-');
    service = new Service({
      repository: join(work.path, 'repo'),
      redisUrl: undefined,
      mode: 'cli',
      workers: 2,
      cacheDir: join(work.path, 'cache'),
    });
    const src = join(work.path, 'src');
    await mkdir(src);
    await writeSafetensors(join(src, 'model.safetensors'), spec);
    await service.push({ model: 'ft', paths: [src] });
    await writeSafetensors(join(src, 'model.safetensors'), tuned, { step: '1' });
    await service.push({ model: 'ft', paths: [src] });
  });
  afterAll(async () => {
    await service.close();
    await work.remove();
  });

  it('an unchanged tensor moved by 0; one rewritten with new values of the same distribution by about sqrt(2)', async () => {
    const result = await service.tensorStats('ft@v1', 'ft@v2', {
      path: 'model.safetensors',
      tensors: ['model.embed_tokens.weight', big, 'lm_head.weight'],
    });
    const [same, moved, head] = result.tensors;
    expect(same).toEqual({
      name: 'model.embed_tokens.weight',
      stats: { relativeL2: 0, maxAbsChange: 0, changedFraction: 0, elements: 65536, nonFinite: 0 },
    });
    for (const t of [moved!, head!]) {
      expect(t.stats!.relativeL2, t.name).toBeGreaterThan(Math.SQRT2 - 0.03);
      expect(t.stats!.relativeL2, t.name).toBeLessThan(Math.SQRT2 + 0.03);
      expect(t.stats!.changedFraction, t.name).toBeGreaterThan(0.99);
    }
    expect(moved!.stats!.elements).toBe(2048 * 2048);
  });

  it('"all changed" takes every tensor with new bytes, and the kept diff shows their figures', async () => {
    const result = await service.tensorStats('ft@v1', 'ft@v2', { path: 'model.safetensors' });
    expect(result.tensors.map((t) => t.name).sort()).toEqual(
      [big, 'lm_head.weight', 'model.layers.0.self_attn.q_proj.weight'].sort(),
    );
    const diff = await service.diff('ft@v1', 'ft@v2');
    expect(diff.cached).toBe(true);
    const file = diff.files.find((f) => f.path === 'model.safetensors')!;
    const q = file.tensors!.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
    expect(q.stats!.relativeL2).toBeGreaterThan(1.35);
    expect(file.tensors!.find((t) => t.name === 'model.embed_tokens.weight')!.stats).toEqual(
      expect.objectContaining({ relativeL2: 0 }),
    );
  });

  it('says why a tensor has no statistics', async () => {
    const result = await service.tensorStats('ft@v1', 'ft@v2', {
      path: 'model.safetensors',
      tensors: ['nope'],
    });
    expect(result.tensors).toEqual([{ name: 'nope', skipped: 'no such tensor in either version' }]);
    await expect(service.tensorStats('ft@v1', 'ft@v2', { path: 'missing.bin' })).rejects.toThrow(
      'missing.bin is in neither ft@v1 nor ft@v2',
    );
  });
});
