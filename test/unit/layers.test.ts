import { describe, expect, it } from 'vitest';
import { AFTER_LAYERS, BEFORE_LAYERS, buildLayerMap, placeTensor } from '../../shared/layers';

describe('where a tensor sits, from its name', () => {
  it('Llama (Hugging Face), GGUF, GPT-2, BERT and T5 names', () => {
    const cases: [string, string, string][] = [
      ['model.layers.31.self_attn.q_proj.weight', '31', 'attn q'],
      ['model.layers.0.self_attn.o_proj.weight', '0', 'attn o'],
      ['model.layers.2.mlp.gate_proj.weight', '2', 'mlp gate'],
      ['model.layers.2.mlp.down_proj.weight', '2', 'mlp down'],
      ['model.layers.2.post_attention_layernorm.weight', '2', 'norm'],
      ['blk.7.attn_k.weight', '7', 'attn k'],
      ['blk.7.attn_output.weight', '7', 'attn o'],
      ['blk.7.ffn_up.weight', '7', 'mlp up'],
      ['blk.7.attn_norm.weight', '7', 'norm'],
      ['transformer.h.4.attn.c_attn.weight', '4', 'attn qkv'],
      ['transformer.h.4.attn.c_proj.weight', '4', 'attn o'],
      ['transformer.h.4.mlp.c_fc.weight', '4', 'mlp up'],
      ['transformer.h.4.mlp.c_proj.weight', '4', 'mlp down'],
      ['transformer.h.4.ln_1.weight', '4', 'norm'],
      ['bert.encoder.layer.5.attention.self.query.weight', 'encoder 5', 'attn q'],
      ['bert.encoder.layer.5.attention.output.dense.weight', 'encoder 5', 'attn o'],
      ['bert.encoder.layer.5.intermediate.dense.weight', 'encoder 5', 'mlp up'],
      ['bert.encoder.layer.5.output.dense.weight', 'encoder 5', 'mlp down'],
      ['bert.encoder.layer.5.output.LayerNorm.weight', 'encoder 5', 'norm'],
      ['decoder.block.1.layer.0.SelfAttention.v.weight', 'decoder 1', 'attn v'],
    ];
    for (const [name, row, kind] of cases)
      expect(placeTensor(name), name).toMatchObject({ row, kind });
  });

  it('embeddings before the layers; head and final norm after', () => {
    expect(placeTensor('model.embed_tokens.weight')).toMatchObject({
      row: BEFORE_LAYERS,
      kind: 'embed',
    });
    expect(placeTensor('token_embd.weight')).toMatchObject({ row: BEFORE_LAYERS, kind: 'embed' });
    expect(placeTensor('lm_head.weight')).toMatchObject({ row: AFTER_LAYERS, kind: 'head' });
    expect(placeTensor('output.weight')).toMatchObject({ row: AFTER_LAYERS, kind: 'head' });
    expect(placeTensor('model.norm.weight')).toMatchObject({ row: AFTER_LAYERS, kind: 'norm' });
    expect(placeTensor('transformer.ln_f.weight')).toMatchObject({
      row: AFTER_LAYERS,
      kind: 'norm',
    });
  });

  it('a grid of layers in order, kinds in order, changed bytes summed per cell', () => {
    const map = buildLayerMap([
      { name: 'lm_head.weight', bytes: 10, changedBytes: 10 },
      { name: 'model.layers.10.self_attn.q_proj.weight', bytes: 4, changedBytes: 1 },
      { name: 'model.layers.2.self_attn.q_proj.weight', bytes: 4, changedBytes: 0 },
      { name: 'model.layers.2.self_attn.q_proj.bias', bytes: 4, changedBytes: 4, relativeL2: 0.2 },
      { name: 'model.embed_tokens.weight', bytes: 8, changedBytes: 0 },
    ]);
    expect(map.rows).toEqual([BEFORE_LAYERS, '2', '10', AFTER_LAYERS]);
    expect(map.kinds).toEqual(['embed', 'attn q', 'head']);
    expect(map.cells.get('2')!.get('attn q')).toMatchObject({
      bytes: 8,
      changedBytes: 4,
      relativeL2: 0.2,
    });
    expect(map.layered).toBe(true);
  });
});
