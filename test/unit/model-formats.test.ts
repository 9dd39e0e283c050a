import { describe, expect, it } from 'vitest';
import { LayoutError, type ByteSource } from '../../electron/engine/report/formats/model-format';
import { FORMATS } from '../../electron/engine/report/model-files';
import { buildGguf, llamaGguf } from '../fixtures/gguf';
import { buildOnnx, mlpOnnx } from '../fixtures/onnx';
import { buildCheckpoint, buildPickle, buildZip, torchModel } from '../fixtures/pytorch';

/** An in-memory file that counts what a reader asks of it (a read past the end is a failure). */
function source(bytes: Buffer) {
  const s = {
    size: bytes.length,
    bytesRead: 0,
    reads: 0,
    read: async (start: number, end: number) => {
      s.reads++;
      if (start < 0 || start > end || start > bytes.length) throw new Error(`read ${start}-${end}`);
      s.bytesRead += Math.max(0, Math.min(end, bytes.length) - start);
      return bytes.subarray(start, Math.min(end, bytes.length));
    },
  };
  return s;
}

async function read(path: string, bytes: Buffer, files = new Map<string, number>()) {
  const src = source(bytes);
  const format = FORMATS.find((f) => f.detect(path, bytes.subarray(0, 64)));
  if (!format) throw new Error(`no format for ${path}`);
  return { src, layout: await format.read(src as ByteSource, { path, files }) };
}

/**
 * Reads a damaged file: a LayoutError whose message matches, having read no more than the file
 * holds (twice at most: a window may be fetched again when a value spans two), whatever its
 * counts and lengths claim.
 */
async function rejects(path: string, bytes: Buffer, message: RegExp) {
  const src = source(bytes);
  const format = FORMATS.find((f) => f.detect(path, bytes.subarray(0, 64)))!;
  const error = await format.read(src as ByteSource, { path, files: new Map() }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, path).toBeInstanceOf(LayoutError);
  expect((error as Error).message).toMatch(message);
  expect(src.bytesRead).toBeLessThanOrEqual(2 * bytes.length);
  return (error as Error).message;
}

const vocab = Array.from({ length: 500 }, (_, i) => `tok${i}`);

describe('GGUF reader', () => {
  it('reads versions 3 and 2: every ggml type by name with its byte size, and the metadata', async () => {
    for (const version of [3, 2] as const) {
      const spec = { ...llamaGguf(1, 256, vocab), version };
      spec.tensors.push({ name: 'q4k.weight', type: 'Q4_K', dims: [512, 2], seed: 5 });
      const { layout, src } = await read('m.gguf', buildGguf(spec));
      const byName = new Map(layout.tensors.map((t) => [t.name, t]));
      expect(byName.get('token_embd.weight')).toMatchObject({ dtype: 'Q8_0', shape: [256, 500] });
      const size = (n: string) => byName.get(n)!.end - byName.get(n)!.start;
      expect(size('token_embd.weight')).toBe((256 * 500 * 34) / 32);
      expect(size('blk.0.ffn_up.weight')).toBe(256 * 512 * 2);
      expect(size('blk.0.attn_norm.weight')).toBe(256 * 4);
      expect(size('q4k.weight')).toBe(((512 * 2) / 256) * 144);
      expect(byName.get('blk.0.attn_norm.weight')!.start % 32).toBe(0);
      expect(layout.metadata.get('general.name')).toBe('tiny-llama');
      expect(layout.metadata.get('tokenizer.ggml.tokens')).toHaveLength(500);
      expect(src.reads).toBeLessThanOrEqual(3);
    }
  });

  it('rejects hostile and damaged headers with one line, reading no more than the file', async () => {
    const good = buildGguf(llamaGguf(1, 64, vocab));
    const manyTensors = Buffer.from(good);
    manyTensors.writeBigUInt64LE(1_000_000_000n, 8);
    const msg = await rejects(
      'm.gguf',
      manyTensors,
      /GGUF header says 1e9 tensors and 9 metadata keys, file is \d/,
    );
    expect(msg).not.toContain('\n');
    const longKey = Buffer.from(good);
    longKey.writeBigUInt64LE(2n ** 62n, 24);
    await rejects(
      'm.gguf',
      longKey,
      /string at byte 24 says 4.61e18 bytes, past the end of the file/,
    );
    const tokensAt = good.indexOf('tokenizer.ggml.tokens') + 'tokenizer.ggml.tokens'.length + 8;
    const hugeArray = Buffer.from(good);
    hugeArray.writeBigUInt64LE(10n ** 12n, tokensAt);
    await rejects(
      'm.gguf',
      hugeArray,
      /"tokenizer.ggml.tokens" says 1e12 array items, more than the/,
    );
    await rejects(
      'm.gguf',
      good.subarray(0, good.indexOf('blk.0.attn_k')),
      /past the end of the file/,
    );
    await rejects(
      'm.gguf',
      good.subarray(0, good.length - 100),
      /"output.weight" \(F16, .*\) runs past the end of the file/,
    );
    const v1 = Buffer.from(good);
    v1.writeUInt32LE(1, 4);
    await rejects('m.gguf', v1, /GGUF version 1 is not read \(versions 2 and 3 are\)/);
    await rejects('m.gguf', good.subarray(0, 10), /shorter than the 24-byte GGUF header/);
    const badType = Buffer.from(good);
    badType.writeUInt32LE(77, good.indexOf('general.name') + 'general.name'.length);
    await rejects('m.gguf', badType, /key "general.name" has unknown value type 77/);
  });
});

describe('ONNX reader', () => {
  it('reads initializers inline and in external data, the opset, producer and node count', async () => {
    const inline = buildOnnx(mlpOnnx(16));
    const { layout } = await read('m.onnx', inline.model);
    expect(layout.tensors.map((t) => t.name)).toEqual(mlpOnnx(16).initializers.map((i) => i.name));
    const w = layout.tensors[0]!;
    expect(w).toMatchObject({ dtype: 'FLOAT', shape: [16, 16] });
    expect(w.end - w.start).toBe(16 * 16 * 4);
    expect(Object.fromEntries(layout.metadata)).toMatchObject({
      producer_name: 'pytorch',
      'opset.ai.onnx': 17n,
      'graph.nodes': 9,
    });
    const ext = buildOnnx(mlpOnnx(16, true));
    const { layout: e } = await read(
      'dir/m.onnx',
      ext.model,
      new Map([['dir/model.onnx.data', ext.data!.length]]),
    );
    expect(e.tensors[1]).toMatchObject({
      name: 'layers.0.bias',
      file: 'dir/model.onnx.data',
      start: 4096,
      end: 4096 + 64,
    });
    const { layout: missing } = await read('m.onnx', ext.model);
    expect(missing.warnings).toEqual(['external data file model.onnx.data is not in this version']);
  });

  it('reads around inline tensor data, never through it', async () => {
    const spec = mlpOnnx(16);
    spec.initializers = Array.from({ length: 40 }, (_, i) => ({
      name: `w${i}`,
      dims: [256, 256],
      seed: i,
    }));
    const { model } = buildOnnx(spec);
    const { layout, src } = await read('m.onnx', model);
    expect(layout.tensors).toHaveLength(40);
    expect(model.length).toBeGreaterThan(10_000_000);
    expect(src.bytesRead).toBeLessThan(1_500_000);
  });

  it('rejects truncated files and lengths past the end, reading no more than the file', async () => {
    const { model } = buildOnnx(mlpOnnx(16));
    await rejects(
      'm.onnx',
      model.subarray(0, 1000),
      /runs past the end of the (file|field holding it)/,
    );
    const hostile = Buffer.concat([Buffer.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f]), model]); // graph of 4 GiB
    await rejects('m.onnx', hostile, /runs past the end of the file/);
    await rejects('m.onnx', Buffer.from('not a model at all, only text'), /ONNX/);
  });
});

describe('PyTorch reader', () => {
  it('lists tensors with dtype, shape and storage; tied weights share one byte range', async () => {
    const { layout } = await read('m.pt', buildCheckpoint(torchModel(1, 32)));
    const byName = new Map(layout.tensors.map((t) => [t.name, t]));
    expect(byName.get('model.layers.0.attn.weight')).toMatchObject({
      dtype: 'float16',
      shape: [32, 32],
      storage: '1',
    });
    const embed = byName.get('model.embed.weight')!;
    expect(byName.get('model.lm_head.weight')).toMatchObject({
      start: embed.start,
      end: embed.end,
      storage: '0',
    });
    expect(embed.end - embed.start).toBe(64 * 32 * 2);
    expect(Object.fromEntries(layout.metadata)).toEqual({ epoch: 1, lr: 0.001 });
  });

  it('never runs a pickle: any other global or opcode is "not readable as a state dict"', async () => {
    const evil = Buffer.from('\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.', 'latin1');
    const zip = (pkl: Buffer) => buildZip([['archive/data.pkl', pkl]]);
    await rejects('m.pt', zip(evil), /not readable as a state dict: the pickle names posix.system/);
    await rejects(
      'm.pt',
      zip(Buffer.from('\x80\x02I1\n.', 'latin1')),
      /not readable as a state dict: pickle opcode 0x49/,
    );
    const pkl = buildPickle(torchModel(1, 8), { epoch: 1, lr: 1 });
    await rejects('m.pt', zip(pkl.subarray(0, pkl.length - 40)), /pickle ends in the middle of/);
    await rejects(
      'm.pt',
      zip(pkl),
      /storage 0 of tensor "model.embed.weight" is not in the archive/,
    );
  });

  it('rejects damaged archives and non-checkpoints with one line', async () => {
    const good = buildCheckpoint(torchModel(1, 32));
    await rejects('m.pt', good.subarray(0, good.length - 30), /not a readable zip archive/);
    await rejects('m.pth', Buffer.from('just text'), /not a zip archive/);
    const legacy = Buffer.from([
      0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
    ]);
    await rejects('m.pt', legacy, /legacy torch.save file/);
    const manyMembers = Buffer.from(good);
    manyMembers.writeUInt16LE(0xfffe, good.length - 12); // entry count in the end record
    await rejects('m.pt', manyMembers, /zip/);
    expect(
      FORMATS.find((f) => f.detect('weights.bin', Buffer.from('raw weights'))),
    ).toBeUndefined();
  });
});

describe('value budget', () => {
  it('a header of millions of tiny values is refused before they are built, in every format', async () => {
    const n = 5_000_000;
    // GGUF: one key holding 5 million u8 items, each one byte of the file.
    const head = Buffer.alloc(24 + 8 + 3 + 4 + 4 + 8);
    head.write('GGUF', 0);
    head.writeUInt32LE(3, 4);
    head.writeBigUInt64LE(0n, 8);
    head.writeBigUInt64LE(1n, 16);
    head.writeBigUInt64LE(3n, 24);
    head.write('big', 32);
    head.writeUInt32LE(9, 35);
    head.writeUInt32LE(0, 39);
    head.writeBigUInt64LE(BigInt(n), 43);
    await rejects(
      'm.gguf',
      Buffer.concat([head, Buffer.alloc(n)]),
      /GGUF header holds more than 4e6 values/,
    );
    // ONNX: 5 million empty doc_string fields.
    await rejects(
      'm.onnx',
      Buffer.alloc(2 * n, Buffer.from([0x32, 0x00])),
      /ONNX header holds more than 4e6 values/,
    );
    // PyTorch: a pickle of 5 million empty lists.
    const pkl = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(n, 0x5d), Buffer.from('.')]);
    await rejects(
      'm.pt',
      buildZip([['archive/data.pkl', pkl]]),
      /pickle builds more than 4e6 values/,
    );
  });
});
