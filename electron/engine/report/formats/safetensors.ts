import {
  type ByteSource,
  hasExtension,
  LayoutError,
  type MetadataValue,
  type ModelFormat,
  type ModelLayout,
  type TensorEntry,
} from './model-format';

/**
 * safetensors: 8-byte little-endian header length N, N bytes of JSON header, then the tensor
 * data. Each header entry (but `__metadata__`, string key/values) has dtype, shape and
 * data_offsets relative to the start of the data.
 */

/** Largest header this reader accepts (the format's own limit is 100 MB). */
const MAX_HEADER = 100 * 1024 * 1024;

/** The header length from the file's first 8 bytes; throws when it cannot be the header's. */
function headerLength(first8: Uint8Array, fileSize: number): number {
  if (first8.length < 8 || fileSize < 8)
    throw new LayoutError('file shorter than the 8-byte header length');
  const n = Number(Buffer.from(first8.buffer, first8.byteOffset, 8).readBigUInt64LE(0));
  if (n > MAX_HEADER) throw new LayoutError(`header length ${n} is over the 100 MB limit`);
  if (8 + n > fileSize)
    throw new LayoutError(`header length ${n} runs past the end of the file (${fileSize} bytes)`);
  return n;
}

function parseJson(json: Uint8Array): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(json).toString('utf8'));
  } catch {
    throw new LayoutError('header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new LayoutError('header is not a JSON object');
  return header as Record<string, unknown>;
}

function tensorEntry(name: string, value: unknown, dataStart: number, size: number): TensorEntry {
  const t = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  const offsets = t?.data_offsets;
  if (
    typeof t?.dtype !== 'string' ||
    !Array.isArray(t.shape) ||
    !t.shape.every((d) => Number.isInteger(d) && d >= 0) ||
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isInteger(o) && o >= 0) ||
    (offsets[0] as number) > (offsets[1] as number)
  ) {
    throw new LayoutError(`tensor "${name}" has no valid dtype, shape and data_offsets`);
  }
  const start = dataStart + (offsets[0] as number);
  const end = dataStart + (offsets[1] as number);
  if (end > size)
    throw new LayoutError(`tensor "${name}" data_offsets run past the end of the file`);
  return { name, dtype: t.dtype, shape: t.shape as number[], start, end };
}

/** Parses the JSON header; every tensor's range must lie inside the file. */
function parseHeader(json: Uint8Array, headerLen: number, fileSize: number): ModelLayout {
  const header = parseJson(json);
  const tensors: TensorEntry[] = [];
  const metadata = new Map<string, MetadataValue>();
  for (const [name, value] of Object.entries(header)) {
    if (name !== '__metadata__') tensors.push(tensorEntry(name, value, 8 + headerLen, fileSize));
    else if (typeof value === 'object' && value !== null)
      for (const [k, v] of Object.entries(value))
        metadata.set(k, typeof v === 'string' ? v : JSON.stringify(v));
  }
  return { format: 'safetensors', tensors, metadata };
}

async function read(source: ByteSource): Promise<ModelLayout> {
  const n = headerLength(await source.read(0, 8), source.size);
  return parseHeader(await source.read(8, 8 + n), n, source.size);
}

export const safetensors: ModelFormat = {
  name: 'safetensors',
  extensions: ['.safetensors'],
  detect: (path) => hasExtension(path, ['.safetensors']),
  read,
};
