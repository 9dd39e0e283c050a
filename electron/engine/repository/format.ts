import { randomBytes } from 'node:crypto';
// zod's tree-shakable build: the full one is ~750 KB of code that every `tv` command would load
// and compile (~80 ms of CPU) for the three schemas below. English messages, as the full build has.
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { HASH_ALGORITHMS, type HashAlgorithm } from '../hashing';
import { validateParams } from '../chunking/params';
import { COMPRESSION_SCHEMES, type CompressionScheme } from '../storage/packs/encodings';
import { modelNameProblem } from '../../../shared/names';

/**
 * Repository formats (docs/format.md). 1: every object in a file (or S3 object) of its own.
 * 2: a folder repository whose objects may be in pack files (read, not written). 3: chunks in
 * packs described by index objects, on every backend. New repositories are created at 3.
 */
export const FORMAT = 3;
export const READABLE_FORMATS: readonly number[] = [1, 2, 3];
/** Formats this version writes objects to (format 2 is read until `tv upgrade`). */
export const WRITABLE_FORMATS: readonly number[] = [1, 3];
/** Format of manifests and version records (unchanged since format 1). */
export const OBJECT_FORMAT = 1;
/** Pack sizes a repository may choose (`tv init --pack-size`). */
export const MIN_PACK_SIZE = 64 << 10;
export const MAX_PACK_SIZE = 1 << 30;
export const CHUNKING_ALGORITHM = 'tv-fastcdc-1';
export const CONFIG_KEY = 'config';
export const REFS_PREFIX = 'refs/';

z.config(en());

export class FormatError extends Error {
  override name = 'FormatError';
}

// --- repository config ------------------------------------------------------------------------

const int = () => z.number().check(z.int());

const ConfigSchema = z.object({
  format: int(),
  repositoryId: z.string().check(z.regex(/^[0-9a-f]{16,64}$/)),
  hash: z.enum(HASH_ALGORITHMS),
  chunking: z.object({
    algorithm: z.string(),
    minSize: int(),
    avgSize: int(),
    maxSize: int(),
  }),
  /** Bytes at which a pack is sealed (format 3); every client of the repository uses it. */
  packSize: z.optional(z.number().check(z.int(), z.gte(MIN_PACK_SIZE), z.lte(MAX_PACK_SIZE))),
  /**
   * How this version's clients write chunks to packs (format 3; absent: none). Readers decode
   * whatever encoding a record names, so a client that writes otherwise (or an older one) mixes in.
   */
  compression: z.optional(z.enum(COMPRESSION_SCHEMES)),
  createdAt: z.string(),
});
export type RepositoryConfig = z.infer<typeof ConfigSchema>;

export function newConfig(
  hash: HashAlgorithm,
  chunking: { minSize: number; avgSize: number; maxSize: number },
  format = FORMAT,
  packSize?: number,
  compression?: CompressionScheme,
): RepositoryConfig {
  validateParams(chunking);
  if (packSize !== undefined) validatePackSize(packSize);
  return {
    format,
    repositoryId: randomBytes(8).toString('hex'),
    hash,
    chunking: { algorithm: CHUNKING_ALGORITHM, ...chunking },
    ...(format >= 3 && packSize !== undefined ? { packSize } : {}),
    ...(format >= 3 && compression !== undefined && compression !== 'none' ? { compression } : {}),
    createdAt: new Date().toISOString(),
  };
}

export function validatePackSize(bytes: number): number {
  if (!Number.isInteger(bytes) || bytes < MIN_PACK_SIZE || bytes > MAX_PACK_SIZE)
    throw new FormatError(
      `a pack size of ${bytes} bytes is out of range: choose from 64 KiB to 1 GiB (16 MiB to 64 MiB suits most repositories)`,
    );
  return bytes;
}

/** Reads the config object, refusing formats and chunkers this client does not know. */
export function parseConfig(bytes: Uint8Array, location: string): RepositoryConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new FormatError(
      `the repository config at ${location} is not valid JSON: is this a TensorVault repository?`,
    );
  }
  const format = (raw as { format?: unknown })?.format;
  if (typeof format === 'number' && !READABLE_FORMATS.includes(format)) {
    throw new FormatError(
      `the repository at ${location} uses format ${format}, which this version of TensorVault does not know (it reads formats ${READABLE_FORMATS.join(', ')}): upgrade TensorVault`,
    );
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new FormatError(
      `the repository config at ${location} is damaged (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`,
    );
  }
  if (parsed.data.chunking.algorithm !== CHUNKING_ALGORITHM) {
    throw new FormatError(
      `the repository at ${location} chunks with "${parsed.data.chunking.algorithm}", which this version does not know: upgrade TensorVault`,
    );
  }
  validateParams(parsed.data.chunking);
  return parsed.data;
}

// --- model names and refs ---------------------------------------------------------------------

export function validateModelName(name: string): string {
  const problem = modelNameProblem(name);
  if (problem) throw new FormatError(problem);
  return name;
}

/** A ref: `refs/<model>/<13-digit ms time>-<version id>`, written once, never overwritten. */
export function refKey(model: string, createdAtMs: number, versionId: string): string {
  return `${REFS_PREFIX}${model}/${String(createdAtMs).padStart(13, '0')}-${versionId}`;
}

export const TOMBSTONE_SUFFIX = '.removed';

/** Who removed a version and when, as its tombstone records it (null where it does not). */
export interface Removal {
  removedAt: string | null;
  removedBy: string | null;
}

const TombstoneSchema = z.object({
  version: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
  removedAt: z.string(),
  removedBy: z.string(),
});

/** A tombstone's body: the version id, when and by whom (JSON). */
export function encodeTombstone(versionId: string, removedAt: Date, removedBy: string): Buffer {
  return Buffer.from(
    JSON.stringify({ version: versionId, removedAt: removedAt.toISOString(), removedBy }),
  );
}

/**
 * Reads a tombstone's body: JSON as encodeTombstone writes it, or (before who and when were
 * recorded) the bare version id. A body that is neither still removes the version.
 */
export function parseTombstone(bytes: Uint8Array): Removal {
  const text = Buffer.from(bytes).toString('utf8').trim();
  if (!text.startsWith('{')) return { removedAt: null, removedBy: null };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { removedAt: null, removedBy: null };
  }
  const parsed = TombstoneSchema.safeParse(raw);
  return parsed.success
    ? { removedAt: parsed.data.removedAt, removedBy: parsed.data.removedBy }
    : { removedAt: null, removedBy: null };
}

export interface ParsedRef {
  model: string;
  key: string;
  /** The ref key without any tombstone suffix: sorts in creation order. */
  base: string;
  createdAtMs: number;
  versionId: string;
  tombstone: boolean;
}

export function parseRefKey(key: string): ParsedRef | undefined {
  const match = /^refs\/([^/]+)\/(\d{13})-([0-9a-f]{64})(\.removed)?$/.exec(key);
  if (!match) return undefined;
  return {
    model: match[1] as string,
    key,
    base: key.replace(/\.removed$/, ''),
    createdAtMs: Number(match[2]),
    versionId: match[3] as string,
    tombstone: match[4] !== undefined,
  };
}

// --- version records --------------------------------------------------------------------------

const VersionSchema = z.object({
  format: z.literal(OBJECT_FORMAT),
  kind: z.literal('version'),
  model: z.string(),
  parent: z.nullable(z.string()),
  createdAt: z.string(),
  author: z.string(),
  message: z.string(),
  files: z.array(
    z.object({ path: z.string(), size: int().check(z.nonnegative()), manifest: z.string() }),
  ),
  stats: z.object({
    logicalBytes: z.number(),
    /** Bytes the new chunks take in the repository (compressed); absent before compression. */
    storedBytes: z.optional(z.number()),
    newBytes: z.number(),
    reusedBytes: z.number(),
    reusedFromParentBytes: z.number(),
    chunks: z.number(),
    newChunks: z.number(),
    metadataBytes: z.number(),
    seconds: z.number(),
  }),
});
export type VersionRecord = z.infer<typeof VersionSchema>;

export function encodeVersion(record: VersionRecord): Buffer {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

export function parseVersion(bytes: Uint8Array, id: string): VersionRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new FormatError(`version record ${id} is not valid JSON (damaged object)`);
  }
  const parsed = VersionSchema.safeParse(raw);
  if (!parsed.success)
    throw new FormatError(`version record ${id} is damaged (${parsed.error.issues[0]?.message})`);
  return parsed.data;
}

// --- file manifests ---------------------------------------------------------------------------

/**
 * Binary, 36 bytes per chunk: "TVMF", format u8, hash algorithm u8, 2 reserved bytes; file size
 * u64 LE; file hash (32 bytes); chunk count u32 LE; then per chunk its digest (32 bytes) and
 * length (u32 LE).
 */
export interface Manifest {
  size: number;
  /** The file's tree hash: the hash of its chunks' digests, concatenated. */
  fileHash: string;
  chunks: { hash: string; length: number }[];
}

/** Where each chunk of a manifest starts in its file. */
export function chunkOffsets(manifest: Manifest): number[] {
  const starts = new Array<number>(manifest.chunks.length);
  let at = 0;
  manifest.chunks.forEach((chunk, i) => {
    starts[i] = at;
    at += chunk.length;
  });
  return starts;
}

const MAGIC = Buffer.from('TVMF');
const HEADER = 4 + 1 + 1 + 2 + 8 + 32 + 4;
/** Bytes per chunk in a manifest: its digest (32) and length (u32 LE). */
export const CHUNK_ENTRY = 36;
const ALGORITHM_CODE: Record<HashAlgorithm, number> = { sha256: 0, blake3: 1 };

/** The length of an encoded manifest of `chunks` chunks. */
export function manifestLength(chunks: number): number {
  return HEADER + CHUNK_ENTRY * chunks;
}

/**
 * Chunks as a manifest stores them: CHUNK_ENTRY bytes each, digest then u32 LE length; written
 * into `out` from `at` (a buffer of their own by default), which is returned.
 */
export function encodeChunkEntries(
  chunks: readonly { hash: string; length: number }[],
  out: Buffer = Buffer.allocUnsafe(CHUNK_ENTRY * chunks.length),
  at = 0,
): Buffer {
  chunks.forEach((chunk, i) => {
    out.write(chunk.hash, at + i * CHUNK_ENTRY, 'hex');
    out.writeUInt32LE(chunk.length, at + i * CHUNK_ENTRY + 32);
  });
  return out;
}

export function encodeManifest(manifest: Manifest, algorithm: HashAlgorithm): Buffer {
  const out = Buffer.alloc(HEADER + CHUNK_ENTRY * manifest.chunks.length);
  MAGIC.copy(out, 0);
  out.writeUInt8(OBJECT_FORMAT, 4);
  out.writeUInt8(ALGORITHM_CODE[algorithm], 5);
  out.writeBigUInt64LE(BigInt(manifest.size), 8);
  out.write(manifest.fileHash, 16, 'hex');
  out.writeUInt32LE(manifest.chunks.length, 48);
  return encodeChunkEntries(manifest.chunks, out, HEADER);
}

/**
 * A manifest read from its bytes. Its chunk list is made on first use: a push that reuses a file's
 * manifest as it is (the files cache vouched for the file) or reads its chunks as entries
 * (chunkEntries, DigestSet) never turns tens of thousands of digests into strings. The bytes are
 * copied: the manifest keeps them, whatever becomes of the caller's buffer.
 */
export function decodeManifest(bytes: Uint8Array, hash: string): Manifest {
  const buf = Buffer.from(bytes);
  const damaged = (why: string) => new FormatError(`file manifest ${hash} is damaged: ${why}`);
  if (buf.length < HEADER || !buf.subarray(0, 4).equals(MAGIC)) throw damaged('not a manifest');
  if (buf.readUInt8(4) !== OBJECT_FORMAT)
    throw damaged(`unknown manifest format ${buf.readUInt8(4)}`);
  const count = buf.readUInt32LE(48);
  if (buf.length !== HEADER + CHUNK_ENTRY * count) throw damaged('wrong length');
  let total = 0;
  for (let at = HEADER + 32; at < buf.length; at += CHUNK_ENTRY) total += buf.readUInt32LE(at);
  const size = Number(buf.readBigUInt64LE(8));
  if (size !== total) throw damaged(`chunk lengths add up to ${total}, not ${size}`);
  let list: Manifest['chunks'] | undefined;
  const manifest: Manifest = {
    size,
    fileHash: buf.toString('hex', 16, 48),
    // Read only: the bytes it was read from stand for it (encodedManifest).
    get chunks() {
      return (list ??= chunkList(buf, count));
    },
  };
  encodedManifests.set(manifest, { hash, bytes: buf });
  return manifest;
}

function chunkList(buf: Buffer, count: number): Manifest['chunks'] {
  const chunks = new Array<{ hash: string; length: number }>(count);
  for (let i = 0, at = HEADER; i < count; i++, at += CHUNK_ENTRY)
    chunks[i] = { hash: buf.toString('hex', at, at + 32), length: buf.readUInt32LE(at + 32) };
  return chunks;
}

/** The bytes each manifest read from the repository was decoded from, and its hash. */
const encodedManifests = new WeakMap<Manifest, { hash: string; bytes: Buffer }>();

/** A manifest's bytes and hash when it was read from them (see decodeManifest): no encoding. */
export function encodedManifest(manifest: Manifest): { hash: string; bytes: Buffer } | undefined {
  return encodedManifests.get(manifest);
}

/** How many chunks a manifest names (without making its chunk list). */
export function chunkCount(manifest: Manifest): number {
  const encoded = encodedManifests.get(manifest);
  return encoded ? (encoded.bytes.length - HEADER) / CHUNK_ENTRY : manifest.chunks.length;
}

/**
 * A manifest's chunks as 36-byte entries (digest, little-endian u32 length), as it stores them:
 * a view of the bytes it was read from, else encoded now.
 */
export function chunkEntries(manifest: Manifest): Buffer {
  const encoded = encodedManifests.get(manifest);
  return encoded ? encoded.bytes.subarray(HEADER) : encodeChunkEntries(manifest.chunks);
}
