import { inflateRawSync } from 'node:zlib';
import {
  type ByteSource,
  hasExtension,
  LayoutError,
  MAX_HEADER_BYTES,
  type MetadataValue,
  type ModelFormat,
  type ModelLayout,
  startsWith,
  type TensorEntry,
} from './model-format';
import { type PickleValue, readPickle, type StorageRef, type TensorRef } from './pickle';
import { listZip, type ZipMember } from './zip';

/**
 * PyTorch checkpoints (torch.save since 1.6): a zip holding `<name>/data.pkl`, the pickled
 * object, and `<name>/data/<key>`, each storage's bytes (stored, not compressed). The pickle is
 * read by the restricted reader; a state dict (nested dicts and lists of tensors, numbers and
 * strings) gives one tensor per name, dotted by nesting, and its other leaves as metadata.
 */

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** The legacy (pre-1.6) torch.save: a pickle protocol 2 header and torch's magic number. */
const LEGACY_MAGIC = [
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];
const EXTENSIONS = ['.pt', '.pth', '.bin'];
const MAX_METADATA = 10_000;

/** Element names and sizes of the storage types (torch.FloatStorage holds float32...). */
const ELEMENT: Record<string, [string, number]> = {
  Double: ['float64', 8],
  Float: ['float32', 4],
  Half: ['float16', 2],
  BFloat16: ['bfloat16', 2],
  Long: ['int64', 8],
  Int: ['int32', 4],
  Short: ['int16', 2],
  Char: ['int8', 1],
  Byte: ['uint8', 1],
  Bool: ['bool', 1],
  ComplexFloat: ['complex64', 8],
  ComplexDouble: ['complex128', 16],
  QInt8: ['qint8', 1],
  QUInt8: ['quint8', 1],
  QInt32: ['qint32', 4],
  QUInt4x2: ['quint4x2', 1],
  QUInt2x4: ['quint2x4', 1],
  Float8_e4m3fn: ['float8_e4m3fn', 1],
  Float8_e5m2: ['float8_e5m2', 1],
  Float8_e4m3fnuz: ['float8_e4m3fnuz', 1],
  Float8_e5m2fnuz: ['float8_e5m2fnuz', 1],
  UInt16: ['uint16', 2],
  UInt32: ['uint32', 4],
  UInt64: ['uint64', 8],
  Untyped: ['uint8', 1],
};

interface Leaves {
  tensors: [string, TensorRef][];
  metadata: Map<string, MetadataValue>;
}

/** Walks the unpickled object: tensors by dotted name, other leaves as metadata. */
function collect(value: PickleValue, name: string, out: Leaves, depth = 0): void {
  if (depth > 32)
    throw new LayoutError('not readable as a state dict: nested deeper than 32 levels');
  const child = (key: PickleValue) => (name ? `${name}.${String(key)}` : String(key));
  if (value instanceof Map) for (const [k, v] of value) collect(v, child(k), out, depth + 1);
  else if (Array.isArray(value)) value.forEach((v, i) => collect(v, child(i), out, depth + 1));
  else if (value !== null && typeof value === 'object' && 'kind' in value) {
    if (value.kind === 'tensor') out.tensors.push([name, value]);
    else if (value.kind === 'storage')
      out.tensors.push([
        name,
        { kind: 'tensor', storage: value, offset: 0, size: [value.numel], stride: [1] },
      ]);
  } else if (out.metadata.size < MAX_METADATA && name)
    out.metadata.set(
      name,
      value instanceof Uint8Array ? `${value.length} bytes` : (value as MetadataValue),
    );
}

function tensorEntry(name: string, t: TensorRef, data: Map<string, ZipMember>): TensorEntry {
  const s: StorageRef = t.storage;
  const [dtype, elementSize] = ELEMENT[s.storageType.replace(/Storage$/, '')] ?? [s.storageType, 1];
  const member = data.get(s.key);
  if (!member) throw new LayoutError(`storage ${s.key} of tensor "${name}" is not in the archive`);
  // The elements the view reaches: its offset, then the farthest index its sizes and strides give.
  const extent = t.size.some((d) => d === 0)
    ? 0
    : 1 + t.size.reduce((n, d, i) => n + (d - 1) * (t.stride[i] ?? 0), 0);
  const start = member.dataStart + t.offset * elementSize;
  const end = start + extent * elementSize;
  if (member.method !== 0 || end > member.dataStart + member.compressedSize)
    return {
      name,
      dtype,
      shape: t.size,
      start: member.dataStart,
      end: member.dataStart + member.compressedSize,
      storage: s.key,
    };
  return { name, dtype, shape: t.size, start, end, storage: s.key };
}

async function readMember(source: ByteSource, m: ZipMember): Promise<Uint8Array> {
  if (m.compressedSize > MAX_HEADER_BYTES || m.uncompressedSize > MAX_HEADER_BYTES)
    throw new LayoutError(`${m.name} is over ${MAX_HEADER_BYTES / 2 ** 20} MiB: not read`);
  const bytes = await source.read(m.dataStart, m.dataStart + m.compressedSize);
  if (m.method === 0) return bytes;
  if (m.method !== 8) throw new LayoutError(`${m.name} uses zip compression method ${m.method}`);
  return inflateRawSync(bytes, { maxOutputLength: Math.max(1, m.uncompressedSize) });
}

async function read(source: ByteSource): Promise<ModelLayout> {
  const head = await source.read(0, Math.min(source.size, LEGACY_MAGIC.length));
  if (startsWith(head, LEGACY_MAGIC))
    throw new LayoutError(
      'a legacy torch.save file (before PyTorch 1.6, not a zip): not read tensor by tensor',
    );
  if (!startsWith(head, ZIP_MAGIC))
    throw new LayoutError('not a zip archive, as PyTorch checkpoints are');
  const members = await listZip(source, (n) => /^[^/]+\/(data\.pkl|data\/[^/]+)$/.test(n));
  const pkl = members.find((m) => m.name.endsWith('/data.pkl'));
  if (!pkl) throw new LayoutError('the zip holds no data.pkl: not a PyTorch checkpoint');
  const prefix = pkl.name.slice(0, -'data.pkl'.length);
  const data = new Map(
    members
      .filter((m) => m.name.startsWith(`${prefix}data/`))
      .map((m) => [m.name.slice(prefix.length + 5), m]),
  );
  const leaves: Leaves = { tensors: [], metadata: new Map() };
  collect(readPickle(await readMember(source, pkl)), '', leaves);
  if (leaves.tensors.length === 0 && leaves.metadata.size === 0)
    throw new LayoutError('not readable as a state dict: it holds no tensors');
  return {
    format: 'pytorch',
    tensors: leaves.tensors.map(([name, t]) => tensorEntry(name, t, data)),
    metadata: leaves.metadata,
  };
}

export const pytorch: ModelFormat = {
  name: 'pytorch',
  extensions: EXTENSIONS,
  // .bin is also a plain weights file: a zip there, a legacy pickle, or nothing.
  detect: (path, head) =>
    hasExtension(path, ['.pt', '.pth']) ||
    (hasExtension(path, ['.bin']) &&
      (startsWith(head, ZIP_MAGIC) || startsWith(head, LEGACY_MAGIC))),
  read,
};
