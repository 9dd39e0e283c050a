/**
 * Where in a model a tensor sits, from its name alone: its layer (`model.layers.3.`, `blk.3.`,
 * `transformer.h.3.`, `encoder.layer.3.`, `encoder.block.3.` ...) and its kind (attention
 * q/k/v/o, MLP gate/up/down, norms, embeddings, head). The layer map of the report and the diff
 * is a grid of these: layers down, kinds across. No runtime dependencies.
 */

export type TensorKind =
  | 'embed'
  | 'attn q'
  | 'attn k'
  | 'attn v'
  | 'attn qkv'
  | 'attn o'
  | 'mlp gate'
  | 'mlp up'
  | 'mlp down'
  | 'norm'
  | 'head'
  | 'other';

/** Columns in this order (only the kinds a model has are shown). */
export const KIND_ORDER: TensorKind[] = [
  'embed',
  'attn q',
  'attn k',
  'attn v',
  'attn qkv',
  'attn o',
  'mlp gate',
  'mlp up',
  'mlp down',
  'norm',
  'head',
  'other',
];

/** A layer's index, and the stack it belongs to ("" for most; "encoder"/"decoder" for T5...). */
const LAYER = /(?:^|\.)((?:[\w-]+\.)*?)(?:layers|layer|blk|h|blocks|block)\.(\d+)\./;

/** Kinds by the part of the name after the layer, first match wins (lowercase). */
const IN_LAYER: [RegExp, TensorKind][] = [
  [/(^|[._])(qkv|c_attn|query_key_value|wqkv|attn_qkv|in_proj)([._]|$)/, 'attn qkv'],
  [/(^|[._])(q_proj|q|query|attn_q|wq|q_lin)([._]|$)/, 'attn q'],
  [/(^|[._])(k_proj|k|key|attn_k|wk|k_lin)([._]|$)/, 'attn k'],
  [/(^|[._])(v_proj|v|value|attn_v|wv|v_lin)([._]|$)/, 'attn v'],
  [
    /(o_proj|out_proj|attn_output|attention\.output\.dense|(^|[._])(o|wo|out_lin)([._]|$)|attn\.c_proj)/,
    'attn o',
  ],
  [/(^|[._])(gate_proj|ffn_gate|w1|gate)([._]|$)/, 'mlp gate'],
  [
    /(^|[._])(up_proj|ffn_up|fc1|c_fc|w3|dense_h_to_4h|intermediate\.dense|lin1|wi)([._]|$)/,
    'mlp up',
  ],
  [
    /(^|[._])(down_proj|ffn_down|fc2|w2|dense_4h_to_h|lin2)([._]|$)|mlp\.c_proj|^output\.dense/,
    'mlp down',
  ],
  [/(norm|(^|[._])ln(_\w+|\d+)?([._]|$))/, 'norm'],
];

const OUTSIDE: [RegExp, TensorKind][] = [
  [
    /(embed|wte|wpe|token_embd|word_embeddings|position_embeddings|tok_embeddings|shared\.weight)/,
    'embed',
  ],
  [/(lm_head|^output\.weight|(^|\.)head(\.|$)|classifier|score\.weight)/, 'head'],
  [/(norm|ln_f|(^|\.)ln(\.|$))/, 'norm'],
];

export interface TensorPlace {
  /** The row: "3", "encoder 3"; "before the layers" or "after the layers" for the rest. */
  row: string;
  /** For ordering: the stack, then the layer (-1 before the layers, Infinity after). */
  stack: string;
  layer: number;
  kind: TensorKind;
}

export const BEFORE_LAYERS = 'before the layers';
export const AFTER_LAYERS = 'after the layers';

/** Where a tensor sits, from its name. */
export function placeTensor(name: string): TensorPlace {
  const lower = name.toLowerCase();
  const match = LAYER.exec(lower);
  if (match) {
    const prefix = (match[1] ?? '').replace(/\.$/, '');
    // The stack is what tells layers of the same index apart (encoder/decoder), not the model's
    // own wrapper names.
    const stack = prefix
      .split('.')
      .filter(
        (p) =>
          !['model', 'transformer', 'base_model', 'bert', 'roberta', 'gpt_neox', ''].includes(p),
      )
      .join(' ');
    const rest = lower.slice(match.index + match[0].length);
    const kind = IN_LAYER.find(([re]) => re.test(rest))?.[1] ?? 'other';
    const layer = Number(match[2]);
    return { row: stack ? `${stack} ${layer}` : String(layer), stack, layer, kind };
  }
  const kind = OUTSIDE.find(([re]) => re.test(lower))?.[1] ?? 'other';
  return kind === 'embed'
    ? { row: BEFORE_LAYERS, stack: '', layer: -1, kind }
    : { row: AFTER_LAYERS, stack: '\uffff', layer: Infinity, kind };
}

export interface LayerCell {
  bytes: number;
  /** Bytes of the cell's tensors that changed. */
  changedBytes: number;
  /** The largest relative L2 change among its tensors, once computed. */
  relativeL2: number | null;
  tensors: string[];
}

export interface LayerMap {
  rows: string[];
  kinds: TensorKind[];
  /** cells[row][kind] */
  cells: Map<string, Map<TensorKind, LayerCell>>;
  /** Whether any tensor had a layer (else the map says nothing worth a grid). */
  layered: boolean;
}

/**
 * The grid of a version's tensors: for each tensor, its bytes and how many of them changed
 * (`changedBytes`, as the caller measures it), summed per layer and kind.
 */
export function buildLayerMap(
  tensors: { name: string; bytes: number; changedBytes: number; relativeL2?: number | null }[],
): LayerMap {
  const places = tensors.map((t) => ({ t, p: placeTensor(t.name) }));
  const order = new Map<string, { stack: string; layer: number }>();
  const cells = new Map<string, Map<TensorKind, LayerCell>>();
  for (const { t, p } of places) {
    order.set(p.row, { stack: p.stack, layer: p.layer });
    const row = cells.get(p.row) ?? new Map<TensorKind, LayerCell>();
    cells.set(p.row, row);
    const cell = row.get(p.kind) ?? { bytes: 0, changedBytes: 0, relativeL2: null, tensors: [] };
    row.set(p.kind, cell);
    cell.bytes += t.bytes;
    cell.changedBytes += t.changedBytes;
    cell.tensors.push(t.name);
    if (t.relativeL2 !== undefined && t.relativeL2 !== null)
      cell.relativeL2 = Math.max(cell.relativeL2 ?? 0, t.relativeL2);
  }
  const rows = [...order.entries()]
    .sort(([, a], [, b]) => (a.stack < b.stack ? -1 : a.stack > b.stack ? 1 : a.layer - b.layer))
    .map(([row]) => row);
  const present = new Set(places.map(({ p }) => p.kind));
  return {
    rows,
    kinds: KIND_ORDER.filter((k) => present.has(k)),
    cells,
    layered: places.some(({ p }) => Number.isFinite(p.layer) && p.layer >= 0),
  };
}
