import type { ModelFormatName } from '../../../../shared/types';

/**
 * The common tensor table every model format reader produces: what the report and the diff
 * compare, whatever the format. A tensor is a name, the format's own dtype name, a shape and the
 * byte range of its data (in the model file, or in another file of the version for ONNX external
 * data).
 */
export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range of the tensor's data in `file` (the model file itself when absent). */
  start: number;
  end: number;
  /** The version path of the file holding the bytes, when not the model file (ONNX external data). */
  file?: string;
  /** PyTorch: the storage the tensor is a view of. */
  storage?: string;
}

/** A metadata value as a format stores it: numbers, strings, flags, arrays of those. */
export type MetadataValue = string | number | bigint | boolean | null | MetadataValue[];

/** A node of a model's graph (ONNX), compared by name and by a digest of its encoding. */
export interface GraphNode {
  name: string;
  digest: string;
}

/** What a format reader gives: the tensor table, the metadata, and for graphs the nodes. */
export interface ModelLayout {
  format: ModelFormatName;
  tensors: TensorEntry[];
  /** Key/values in file order. */
  metadata: Map<string, MetadataValue>;
  nodes?: GraphNode[];
  /** Problems that left the rest readable ("external data file x.bin is not in this version"). */
  warnings?: string[];
}

/** Byte ranges of one file of a version (the file reader fetches only the chunks covering them). */
export interface ByteSource {
  readonly size: number;
  read(start: number, end: number): Promise<Uint8Array>;
}

/** Where the model file sits: its path in the version and the other files beside it. */
export interface FileContext {
  path: string;
  /** Sizes of the version's files by path (ONNX external data refers to them). */
  files: ReadonlyMap<string, number>;
}

/**
 * One model format. `detect` decides from the path and the first bytes whether a file is (or
 * claims to be) of the format; `read` reads its tensor table and its metadata in one pass over
 * the header, since every format keeps both there. A damaged file makes `read` throw a
 * LayoutError with one line saying what is wrong; it never reads more than the file holds.
 */
export interface ModelFormat {
  readonly name: ModelFormatName;
  /** Extensions (lowercase, with the dot) that make a file worth a look at its first bytes. */
  readonly extensions: readonly string[];
  detect(path: string, head: Uint8Array): boolean;
  read(source: ByteSource, context: FileContext): Promise<ModelLayout>;
}

export class LayoutError extends Error {
  override name = 'LayoutError';
}

/** Most header bytes a reader may read from one file, whatever the header says. */
export const MAX_HEADER_BYTES = 256 * 1024 * 1024;

/**
 * Most values (metadata items, tensors, protobuf fields, pickle objects) a reader builds from one
 * file: about three times the largest real headers (a 262,144-token vocabulary with its scores,
 * types and merges holds ~1.3 million), so memory stays bounded whatever the counts say.
 */
export const MAX_VALUES = 4_000_000;

export const hasExtension = (path: string, extensions: readonly string[]) => {
  const lower = path.toLowerCase();
  return extensions.some((e) => lower.endsWith(e));
};

export const startsWith = (bytes: Uint8Array, prefix: readonly number[]) =>
  bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);

/** A count for messages: 1000000000 reads as 1e9, 1500000 as 1.5e6, small ones as they are. */
export function count(n: number | bigint): string {
  const value = Number(n);
  if (value < 1e6) return String(n);
  const [mantissa, exponent] = value.toExponential(2).split('e+');
  return `${Number(mantissa)}e${exponent}`;
}
