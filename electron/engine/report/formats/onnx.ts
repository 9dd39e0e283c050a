import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { Cursor, SPARSE_WINDOW } from './cursor';
import {
  type ByteSource,
  type FileContext,
  type GraphNode,
  hasExtension,
  LayoutError,
  type MetadataValue,
  type ModelFormat,
  type ModelLayout,
  type TensorEntry,
} from './model-format';
import { type Field, fieldBytes, walkFields } from './protobuf-fields';

/**
 * ONNX: a protobuf ModelProto. The walk reads the model's fields but its graph, and in the graph
 * each node and each initializer; an initializer's data (raw_data or the typed data fields) is
 * only located, never read, and the rest of its fields go to the schema's decoder (ONNX's own
 * schema, compiled in the onnx-buf package, decoded by @bufbuild/protobuf). Initializers kept in
 * external data files name the file (`location`, beside the model), `offset` and `length`.
 */

type Schema = typeof import('onnx-buf');
type Protobuf = typeof import('@bufbuild/protobuf');
let loaded: Promise<[Schema, Protobuf]> | undefined;
/** The schema loads on the first ONNX file, not at start-up. */
const schema = () => (loaded ??= Promise.all([import('onnx-buf'), import('@bufbuild/protobuf')]));

/** Fields of a message kept for the decoder (all but those the walk handles itself). */
const keep = (fields: Field[], skipped: number[]) =>
  fields.filter((f) => !skipped.includes(f.number));

/** Decodes with the schema; a message the schema rejects makes the file unreadable, with why. */
function decode<T extends import('@bufbuild/protobuf').DescMessage>(
  w: { pb: Protobuf },
  message: T,
  bytes: Uint8Array,
  what: string,
): import('@bufbuild/protobuf').MessageShape<T> {
  try {
    return w.pb.fromBinary(message, bytes);
  } catch (err) {
    throw new LayoutError(`ONNX ${what} does not decode (${(err as Error).message})`);
  }
}

interface Walk {
  c: Cursor;
  onnx: Schema;
  pb: Protobuf;
  context: FileContext;
  warnings: string[];
}

function externalRange(w: Walk, name: string, entries: { key: string; value: string }[]) {
  const get = (k: string) => entries.find((e) => e.key === k)?.value;
  const location = get('location');
  if (!location)
    throw new LayoutError(`ONNX initializer "${name}" is external but names no location`);
  const file = posix.normalize(posix.join(posix.dirname(w.context.path), location));
  if (posix.isAbsolute(location) || file.startsWith('../') || file === '..')
    throw new LayoutError(
      `ONNX initializer "${name}" points outside the model's folder (${location})`,
    );
  const fileSize = w.context.files.get(file);
  const offset = Number(get('offset') ?? 0);
  if (fileSize === undefined) {
    w.warnings.push(`external data file ${file} is not in this version`);
    return { file, start: offset, end: offset + Number(get('length') ?? 0) };
  }
  const end = get('length') === undefined ? fileSize : offset + Number(get('length'));
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(end) ||
    offset < 0 ||
    end < offset ||
    end > fileSize
  )
    throw new LayoutError(
      `ONNX initializer "${name}" data (${offset}-${end}) runs past the end of ${file}`,
    );
  return { file, start: offset, end };
}

/** Data fields of a TensorProto: float, int32, string, int64, raw, double and uint64 data. */
function dataFieldNumbers(onnx: Schema): number[] {
  const f = onnx.TensorProtoSchema.field;
  return [
    f.floatData,
    f.int32Data,
    f.stringData,
    f.int64Data,
    f.rawData,
    f.doubleData,
    f.uint64Data,
  ].map((d) => d!.number);
}

async function readInitializer(w: Walk, field: Field): Promise<TensorEntry> {
  const fields: Field[] = [];
  await walkFields(w.c, field.valueStart, field.end, (f) => void fields.push(f));
  const dataNumbers = dataFieldNumbers(w.onnx);
  const data = fields.filter((f) => dataNumbers.includes(f.number));
  const kept = await fieldBytes(w.c, keep(fields, dataNumbers));
  const t = decode(w, w.onnx.TensorProtoSchema, kept, `initializer at byte ${field.start}`);
  const name = t.name;
  const dtype = w.onnx.TensorProto_DataType[t.dataType] ?? `data type ${t.dataType}`;
  const shape = t.dims.map(Number);
  if (t.dataLocation === w.onnx.TensorProto_DataLocation.EXTERNAL)
    return { name, dtype, shape, ...externalRange(w, name, t.externalData) };
  const start = data.length ? Math.min(...data.map((f) => f.valueStart)) : field.end;
  const end = data.length ? Math.max(...data.map((f) => f.end)) : field.end;
  return { name, dtype, shape, start, end };
}

async function readGraph(w: Walk, graph: Field, metadata: Map<string, MetadataValue>) {
  const g = w.onnx.GraphProtoSchema.field;
  const nodeField = g.node!.number;
  const initializerField = g.initializer!.number;
  const kept: Field[] = [];
  const nodeFields: Field[] = [];
  const initializerFields: Field[] = [];
  await walkFields(w.c, graph.valueStart, graph.end, (f) => {
    if (f.number === nodeField) nodeFields.push(f);
    else if (f.number === initializerField) initializerFields.push(f);
    else if (f.number === g.name!.number || f.number === g.metadataProps!.number) kept.push(f);
  });
  const nodes: GraphNode[] = [];
  for (const f of nodeFields) {
    w.c.pos = f.valueStart;
    const bytes = await w.c.take(f.end - f.valueStart, f.end);
    const node = decode(w, w.onnx.NodeProtoSchema, bytes, `node at byte ${f.start}`);
    nodes.push({ name: node.name, digest: createHash('sha256').update(bytes).digest('hex') });
  }
  const tensors: TensorEntry[] = [];
  for (const f of initializerFields) tensors.push(await readInitializer(w, f));
  const rest = decode(w, w.onnx.GraphProtoSchema, await fieldBytes(w.c, kept), 'graph');
  metadata.set('graph.name', rest.name);
  metadata.set('graph.nodes', nodes.length);
  metadata.set('graph.initializers', tensors.length);
  for (const p of rest.metadataProps) metadata.set(`graph.metadata.${p.key}`, p.value);
  return { nodes, tensors };
}

async function read(source: ByteSource, context: FileContext): Promise<ModelLayout> {
  const [onnx, pb] = await schema();
  const c = new Cursor(source, 'ONNX', 0, true, SPARSE_WINDOW);
  const w: Walk = { c, onnx, pb, context, warnings: [] };
  const m = onnx.ModelProtoSchema.field;
  let graph: Field | undefined;
  const kept: Field[] = [];
  const skipped = [m.graph!.number, m.trainingInfo!.number, m.functions!.number];
  await walkFields(w.c, 0, source.size, (f) => {
    if (f.number === m.graph!.number) graph = f;
    else if (!skipped.includes(f.number)) kept.push(f);
  });
  const model = decode(w, onnx.ModelProtoSchema, await fieldBytes(w.c, kept), 'model');
  if (!graph || model.irVersion === 0n)
    throw new LayoutError('not an ONNX model (no ir_version or no graph)');
  const metadata = new Map<string, MetadataValue>([
    ['ir_version', model.irVersion],
    ['producer_name', model.producerName],
    ['producer_version', model.producerVersion],
    ['domain', model.domain],
    ['model_version', model.modelVersion],
    ['doc_string', model.docString],
  ]);
  for (const o of model.opsetImport) metadata.set(`opset.${o.domain || 'ai.onnx'}`, o.version);
  for (const p of model.metadataProps) metadata.set(`metadata.${p.key}`, p.value);
  const { nodes, tensors } = await readGraph(w, graph, metadata);
  const warnings = [...new Set(w.warnings)];
  return { format: 'onnx', tensors, metadata, nodes, ...(warnings.length ? { warnings } : {}) };
}

export const onnx: ModelFormat = {
  name: 'onnx',
  extensions: ['.onnx'],
  detect: (path) => hasExtension(path, ['.onnx']),
  read,
};
