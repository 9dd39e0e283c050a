import { formatBytes } from '../../../../shared/format';
import { Cursor } from './cursor';
import { ggmlType } from './ggml-types';
import {
  type ByteSource,
  count,
  hasExtension,
  LayoutError,
  type MetadataValue,
  type ModelFormat,
  type ModelLayout,
  startsWith,
  type TensorEntry,
} from './model-format';

/**
 * GGUF (llama.cpp), versions 2 and 3: "GGUF", version (u32), tensor count and key/value count
 * (u64); the key/values (string key, u32 value type, value); the tensor infos (name, dimension
 * count, dimensions, ggml type, offset from the data start); the tensor data from the next
 * multiple of `general.alignment` (32 when absent). Little-endian, or big-endian when the
 * version reads byte-swapped. Strings are a u64 length and UTF-8 bytes.
 */

const MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"
const DEFAULT_ALIGNMENT = 32;
const MAX_ARRAY_DEPTH = 3;
const MAX_DIMS = 8;

enum ValueType {
  U8 = 0,
  I8,
  U16,
  I16,
  U32,
  I32,
  F32,
  BOOL,
  STRING,
  ARRAY,
  U64,
  I64,
  F64,
}

/** Fewest bytes a value of each type takes: the bound every count is checked against. */
const MIN_BYTES = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8];

async function readString(c: Cursor): Promise<string> {
  if (!c.has(8)) await c.need(8);
  const n = c.u64();
  if (n > BigInt(c.size - c.pos))
    throw new LayoutError(
      `GGUF string at byte ${c.pos - 8} says ${count(n)} bytes, past the end of the file`,
    );
  const length = Number(n);
  if (!c.has(length)) return (await c.take(length)).toString('utf8');
  return c.text(length);
}

function checkType(type: number, where: string): ValueType {
  if (!Number.isInteger(type) || type < 0 || type > ValueType.F64)
    throw new LayoutError(`GGUF ${where} has unknown value type ${type}`);
  return type;
}

/** Readers of the fixed-size types, their bytes in memory already. */
const FIXED: Record<number, (c: Cursor) => MetadataValue> = {
  [ValueType.U8]: (c) => c.u8(),
  [ValueType.I8]: (c) => c.i8(),
  [ValueType.U16]: (c) => c.u16(),
  [ValueType.I16]: (c) => c.i16(),
  [ValueType.U32]: (c) => c.u32(),
  [ValueType.I32]: (c) => c.i32(),
  [ValueType.F32]: (c) => c.f32(),
  [ValueType.BOOL]: (c) => c.u8() !== 0,
  [ValueType.U64]: (c) => c.u64(),
  [ValueType.I64]: (c) => c.i64(),
  [ValueType.F64]: (c) => c.f64(),
};

async function readValue(
  c: Cursor,
  type: ValueType,
  key: string,
  depth = 0,
): Promise<MetadataValue> {
  if (type === ValueType.STRING) return readString(c);
  if (type === ValueType.ARRAY) return readArray(c, key, depth);
  const size = MIN_BYTES[type] as number;
  if (!c.has(size)) await c.need(size);
  return FIXED[type]!(c);
}

/** Arrays (a vocabulary of 150,000 tokens) read without an await per item where bytes are at hand. */
async function readArray(c: Cursor, key: string, depth: number): Promise<MetadataValue[]> {
  if (depth >= MAX_ARRAY_DEPTH)
    throw new LayoutError(`GGUF key "${key}" nests arrays deeper than ${MAX_ARRAY_DEPTH}`);
  await c.need(12);
  const type = checkType(c.u32(), `key "${key}"`);
  const n = c.u64();
  const size = MIN_BYTES[type] as number;
  if (n * BigInt(size) > BigInt(c.size - c.pos))
    throw new LayoutError(
      `GGUF key "${key}" says ${count(n)} array items, more than the ${formatBytes(c.size)} file can hold`,
    );
  c.countValues(n);
  const items: MetadataValue[] = [];
  const length = Number(n);
  if (type === ValueType.STRING)
    for (let i = 0; i < length; i++) {
      if (c.has(8)) {
        const bytes = c.peekU64();
        if (bytes <= 1024 && c.has(8 + bytes)) {
          c.pos += 8;
          items.push(c.text(bytes));
          continue;
        }
      }
      items.push(await readString(c));
    }
  else if (type === ValueType.ARRAY)
    for (let i = 0; i < length; i++) items.push(await readArray(c, key, depth + 1));
  else {
    const read = FIXED[type]!;
    for (let i = 0; i < length;) {
      if (!c.has(size)) await c.need(size);
      const inMemory = Math.min(length - i, Math.floor(c.available() / size));
      for (let k = 0; k < inMemory; k++) items.push(read(c));
      i += inMemory;
    }
  }
  return items;
}

async function readMetadata(c: Cursor, kvCount: number): Promise<Map<string, MetadataValue>> {
  const metadata = new Map<string, MetadataValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = await readString(c);
    await c.need(4);
    const type = checkType(c.u32(), `key "${key}"`);
    metadata.set(key, await readValue(c, type, key));
  }
  return metadata;
}

interface TensorInfo {
  name: string;
  dims: number[];
  type: number;
  offset: bigint;
}

async function readTensorInfo(c: Cursor): Promise<TensorInfo> {
  const name = await readString(c);
  await c.need(4);
  const nDims = c.u32();
  if (nDims > MAX_DIMS)
    throw new LayoutError(`GGUF tensor "${name}" says ${nDims} dimensions (at most ${MAX_DIMS})`);
  await c.need(8 * nDims + 12);
  const dims: number[] = [];
  for (let d = 0; d < nDims; d++) {
    const dim = c.u64();
    if (dim > BigInt(Number.MAX_SAFE_INTEGER))
      throw new LayoutError(`GGUF tensor "${name}" has a dimension of ${count(dim)}`);
    dims.push(Number(dim));
  }
  return { name, dims, type: c.u32(), offset: c.u64() };
}

function alignmentOf(metadata: Map<string, MetadataValue>): number {
  const value = metadata.get('general.alignment') ?? DEFAULT_ALIGNMENT;
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0 || n > 2 ** 30 || (n & (n - 1)) !== 0)
    throw new LayoutError(`GGUF general.alignment ${String(value)} is not a power of two`);
  return n;
}

/** Tensor infos to the common table: byte sizes from the ggml type, ranges inside the file. */
function tensorTable(
  infos: TensorInfo[],
  dataStart: number,
  alignment: number,
  size: number,
): TensorEntry[] {
  const starts = infos.map((t) => dataStart + Number(t.offset)).sort((a, b) => a - b);
  return infos.map((t) => {
    const start = dataStart + Number(t.offset);
    if (t.offset > BigInt(size) || start > size)
      throw new LayoutError(`GGUF tensor "${t.name}" starts past the end of the file`);
    if (Number(t.offset) % alignment !== 0)
      throw new LayoutError(
        `GGUF tensor "${t.name}" offset ${t.offset} is not a multiple of the alignment ${alignment}`,
      );
    const elements = t.dims.reduce((a, b) => a * b, 1);
    const type = ggmlType(t.type);
    let bytes: number;
    if (type) {
      if ((t.dims[0] ?? 1) % type.blockSize !== 0)
        throw new LayoutError(
          `GGUF tensor "${t.name}" has rows of ${t.dims[0]} elements, not a multiple of ${type.name}'s block of ${type.blockSize}`,
        );
      bytes = (elements / type.blockSize) * type.typeSize;
    } else {
      // A type this reader does not know: its bytes reach to the next tensor (or the end).
      bytes = (starts.find((s) => s > start) ?? size) - start;
    }
    if (start + bytes > size)
      throw new LayoutError(
        `GGUF tensor "${t.name}" (${type?.name ?? `type ${t.type}`}, ${formatBytes(bytes)}) runs past the end of the file`,
      );
    return {
      name: t.name,
      dtype: type?.name ?? `ggml type ${t.type}`,
      shape: t.dims,
      start,
      end: start + bytes,
    };
  });
}

async function read(source: ByteSource): Promise<ModelLayout> {
  const head = Buffer.from(await source.read(0, Math.min(source.size, 24)));
  if (head.length < 24 || !startsWith(head, MAGIC))
    throw new LayoutError(
      head.length < 24
        ? 'file shorter than the 24-byte GGUF header'
        : 'file does not start with "GGUF"',
    );
  const littleEndian = (head.readUInt32LE(4) & 0xffff) !== 0;
  const version = littleEndian ? head.readUInt32LE(4) : head.readUInt32BE(4);
  if (version !== 2 && version !== 3)
    throw new LayoutError(`GGUF version ${version} is not read (versions 2 and 3 are)`);
  const c = new Cursor(source, 'GGUF', 8, littleEndian);
  await c.need(16);
  const tensorCount = c.u64();
  const kvCount = c.u64();
  if (tensorCount * 24n + kvCount * 13n > BigInt(source.size - 24))
    throw new LayoutError(
      `GGUF header says ${count(tensorCount)} tensors and ${count(kvCount)} metadata keys, file is ${formatBytes(source.size)}`,
    );
  c.countValues(tensorCount + kvCount);
  const metadata = await readMetadata(c, Number(kvCount));
  const infos: TensorInfo[] = [];
  for (let i = 0; i < Number(tensorCount); i++) infos.push(await readTensorInfo(c));
  const alignment = alignmentOf(metadata);
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  return {
    format: 'gguf',
    tensors: tensorTable(infos, dataStart, alignment, source.size),
    metadata,
  };
}

export const gguf: ModelFormat = {
  name: 'gguf',
  extensions: ['.gguf'],
  detect: (path, head) => hasExtension(path, ['.gguf']) || startsWith(head, MAGIC),
  read,
};
