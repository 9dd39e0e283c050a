import { createHash } from 'node:crypto';
import { ENCODING_NONE } from './encodings';

/**
 * The byte layouts of packs and index objects (docs/format.md, format 3), and the format 2 pack
 * index (.idx) still read. All integers are big-endian.
 *
 *   data/<n[0:2]>/<n>   a pack: "TVPK" 2, 3 reserved; the objects' stored bytes back to back;
 *                       the trailer: count x record; the footer (48 bytes): count u32, 4
 *                       reserved, sha256(records ‖ count), "TVPT" 1, 3 reserved
 *   index/<t>-<r>       an index object: "TVIX" 1, 3 reserved; sections (tag u8, 3 reserved,
 *                       body length u32, body); sha256 of everything before it
 *   record (52 bytes)   hash 32, offset u64, stored length u32, length u32, encoding u8,
 *                       3 reserved
 */

export const DATA_PREFIX = 'data/';
export const INDEX_PREFIX = 'index/';
/** Format 2 packs and their .idx files (folders), still read. */
export const LEGACY_PREFIX = 'packs/';

export const RECORD_BYTES = 52;
export const FOOTER_BYTES = 48;
const PACK_HEADER = Buffer.from('TVPK\x02\0\0\0', 'latin1');
const LEGACY_PACK_HEADER = Buffer.from('TVPK\x01\0\0\0', 'latin1');
const FOOTER_MAGIC = Buffer.from('TVPT\x01\0\0\0', 'latin1');
const INDEX_HEADER = Buffer.from('TVIX\x01\0\0\0', 'latin1');
const LEGACY_INDEX_HEADER = Buffer.from('TVPX\x01\0\0\0', 'latin1');
const LEGACY_RECORD_BYTES = 44;

/** The bytes before a pack's first object (both pack layouts have 8). */
export const PACK_HEADER_BYTES = 8;

/** How an object's bytes are stored in its pack (0 = as they are): see encoding.ts. */
export { ENCODING_NONE, KNOWN_ENCODINGS } from './encodings';

export class PackFormatError extends Error {
  override name = 'PackFormatError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Where an object's bytes are, as a record of a pack's trailer or an index object says. */
export interface ObjectRecord {
  hash: Buffer;
  offset: number;
  storedLength: number;
  length: number;
  encoding: number;
}

/** The index record of a loose object (stored whole under `objects/`, not in a pack). */
export function looseRecord(hash: string, length: number): ObjectRecord {
  return {
    hash: Buffer.from(hash, 'hex'),
    offset: 0,
    storedLength: length,
    length,
    encoding: ENCODING_NONE,
  };
}

// --- names and keys ---------------------------------------------------------------------------

/** A pack's name: 32 hex characters (16 random bytes); its key shards by the first two. */
export function packKey(name: string): string {
  return `${DATA_PREFIX}${name.slice(0, 2)}/${name}`;
}

export function packNameOfKey(key: string): string | undefined {
  const match = /^data\/([0-9a-f]{2})\/([0-9a-f]{32})$/.exec(key);
  return match && (match[2] as string).startsWith(match[1] as string) ? match[2] : undefined;
}

/** An index object's name: its time (13-digit ms, the store's clock), "-", 16 random hex. */
export function indexName(timeMs: number, random: string): string {
  return `${String(Math.max(0, Math.floor(timeMs))).padStart(13, '0')}-${random}`;
}

export const INDEX_NAME = /^\d{13}-[0-9a-f]{16}$/;

export function indexTime(name: string): number {
  return Number(name.slice(0, 13));
}

export function indexKey(name: string): string {
  return `${INDEX_PREFIX}${name}`;
}

export function legacyPackKey(name: string): string {
  return `${LEGACY_PREFIX}${name}.pack`;
}

// --- records ----------------------------------------------------------------------------------

export function writeRecord(out: Buffer, at: number, r: ObjectRecord): void {
  out.set(r.hash.subarray(0, 32), at);
  out.writeBigUInt64BE(BigInt(r.offset), at + 32);
  out.writeUInt32BE(r.storedLength, at + 40);
  out.writeUInt32BE(r.length, at + 44);
  out.writeUInt8(r.encoding, at + 48);
  out.fill(0, at + 49, at + RECORD_BYTES);
}

/** The records of a trailer or an index section: record i starts at `first + i * RECORD_BYTES`. */
export interface Records {
  bytes: Buffer;
  first: number;
  count: number;
}

export function readRecord(records: Records, i: number): ObjectRecord {
  const { hashAt, offset, storedLength, length, encoding } = readRecordInto(
    records,
    i,
    recordFields(),
  );
  return {
    hash: records.bytes.subarray(hashAt, hashAt + 32),
    offset,
    storedLength,
    length,
    encoding,
  };
}

/** A record's fields, read in place: the hash is `records.bytes` from `hashAt`, 32 bytes. */
export interface RecordFields {
  hashAt: number;
  offset: number;
  storedLength: number;
  length: number;
  encoding: number;
}

/**
 * Record i into `out` (reused from record to record): loading an index reads tens of thousands
 * of records once each, before the JIT has compiled anything, and an object and a Buffer view
 * per record were most of that time.
 */
export function readRecordInto(records: Records, i: number, out: RecordFields): RecordFields {
  const at = records.first + i * RECORD_BYTES;
  const b = records.bytes;
  out.hashAt = at;
  out.offset = readU64(b, at + 32);
  out.storedLength = b.readUInt32BE(at + 40);
  out.length = b.readUInt32BE(at + 44);
  out.encoding = b[at + 48] as number;
  return out;
}

/** A RecordFields to fill with readRecordInto. */
export function recordFields(): RecordFields {
  return { hashAt: 0, offset: 0, storedLength: 0, length: 0, encoding: 0 };
}

function readU64(b: Buffer, at: number): number {
  // Offsets are u64 on disk; a pack is far below 2^53 bytes.
  return b.readUInt32BE(at) * 2 ** 32 + b.readUInt32BE(at + 4);
}

function encodeRecords(records: readonly ObjectRecord[]): Buffer {
  const out = Buffer.alloc(records.length * RECORD_BYTES);
  records.forEach((r, i) => writeRecord(out, i * RECORD_BYTES, r));
  return out;
}

// --- packs ------------------------------------------------------------------------------------

export function packHeader(): Buffer {
  return Buffer.from(PACK_HEADER);
}

/** A pack's trailer and footer: what lets a pack be indexed again from its own bytes. */
export function encodeTrailer(records: readonly ObjectRecord[]): Buffer {
  const body = encodeRecords(records);
  const footer = Buffer.alloc(FOOTER_BYTES);
  footer.writeUInt32BE(records.length, 0);
  trailerDigest(body, records.length).copy(footer, 8);
  FOOTER_MAGIC.copy(footer, 40);
  return Buffer.concat([body, footer]);
}

function trailerDigest(records: Buffer, count: number): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(count);
  return createHash('sha256').update(records).update(n).digest();
}

/** How many bytes of trailer (records and footer) a pack's footer announces. */
export function trailerLength(footer: Buffer, where: string): number {
  if (
    footer.length !== FOOTER_BYTES ||
    !footer.subarray(40, 44).equals(FOOTER_MAGIC.subarray(0, 4))
  )
    throw new PackFormatError(
      `${where} has no pack trailer (an unfinished or damaged pack)`,
      'BAD_TRAILER',
    );
  if (footer[44] !== FOOTER_MAGIC[4])
    throw new PackFormatError(
      `${where} has a trailer of version ${footer[44]}, which this version of TensorVault does not know: upgrade TensorVault`,
      'UNKNOWN_VERSION',
    );
  return footer.readUInt32BE(0) * RECORD_BYTES + FOOTER_BYTES;
}

/**
 * A pack's trailer, checked: `tail` holds the pack's last bytes (at least the whole trailer),
 * `packLength` its size. Every record must lie inside the pack, between header and trailer.
 */
export function decodeTrailer(tail: Buffer, packLength: number, where: string): Records {
  const footer = tail.subarray(tail.length - FOOTER_BYTES);
  const length = trailerLength(footer, where);
  if (length > tail.length || length > packLength - PACK_HEADER_BYTES)
    throw new PackFormatError(`${where}: its trailer is longer than the pack`, 'BAD_TRAILER');
  const count = footer.readUInt32BE(0);
  const first = tail.length - length;
  const body = tail.subarray(first, tail.length - FOOTER_BYTES);
  if (!trailerDigest(body, count).equals(footer.subarray(8, 40)))
    throw new PackFormatError(`${where}: its trailer fails its checksum`, 'BAD_TRAILER');
  const records: Records = { bytes: tail, first, count };
  checkRecords(records, PACK_HEADER_BYTES, packLength - length, where);
  return records;
}

function checkRecords(records: Records, start: number, end: number, where: string): void {
  const r = recordFields();
  for (let i = 0; i < records.count; i++) {
    readRecordInto(records, i, r);
    if (r.offset < start || r.offset + r.storedLength > end)
      throw new PackFormatError(
        `${where}: object ${records.bytes.toString('hex', r.hashAt, r.hashAt + 32)} lies outside the pack's objects (bytes ${r.offset}-${r.offset + r.storedLength})`,
        'BAD_RECORD',
      );
  }
}

/** The header a pack of this layout starts with, checked against the bytes read. */
export function checkPackHeader(bytes: Buffer, legacy: boolean, where: string): void {
  const want = legacy ? LEGACY_PACK_HEADER : PACK_HEADER;
  if (!bytes.subarray(0, 4).equals(want.subarray(0, 4)))
    throw new PackFormatError(`${where} is not a pack`, 'BAD_PACK');
  if (bytes[4] !== want[4])
    throw new PackFormatError(
      `${where} is a pack of version ${bytes[4]}, which this version of TensorVault does not know: upgrade TensorVault`,
      'UNKNOWN_VERSION',
    );
}

// --- index objects ----------------------------------------------------------------------------

const TAG_PACK = 1;
const TAG_LOOSE = 2;
const TAG_SUPERSEDES = 3;
const TAG_CONDEMNED = 4;
const SECTION_HEAD = 8;
const INDEX_NAME_BYTES = 30;

export interface PackSection {
  /** 32 hex characters. */
  name: string;
  length: number;
  records: Records;
}

export interface Condemned {
  /** Hashes (32 bytes each, back to back) and since when each was unreachable (ms). */
  hashes: Buffer;
  since: number[];
}

/** What one index object says. */
export interface IndexContent {
  packs: PackSection[];
  /** Objects stored as blobs of their own (objects/<h[0:2]>/<h>): offset 0, stored whole. */
  loose: Records | undefined;
  /** Index objects whose content this one replaces (gc): readers forget what those said. */
  supersedes: string[];
  /** gc's unreachable objects and since when: a push stores them again rather than rely on them. */
  condemned: Condemned | undefined;
}

export interface IndexInput {
  packs?: { name: string; length: number; records: readonly ObjectRecord[] }[];
  loose?: readonly ObjectRecord[];
  supersedes?: readonly string[];
  condemned?: { hash: Buffer; since: number }[];
}

export function encodeIndexObject(input: IndexInput): Buffer {
  const parts: Buffer[] = [INDEX_HEADER];
  const section = (tag: number, body: Buffer) => {
    const head = Buffer.alloc(SECTION_HEAD);
    head.writeUInt8(tag, 0);
    head.writeUInt32BE(body.length, 4);
    parts.push(head, body);
  };
  const counted = (count: number, body: Buffer) => {
    const n = Buffer.alloc(4);
    n.writeUInt32BE(count);
    return Buffer.concat([n, body]);
  };
  for (const pack of input.packs ?? []) {
    const head = Buffer.alloc(16 + 8 + 4);
    head.write(pack.name, 0, 16, 'hex');
    head.writeBigUInt64BE(BigInt(pack.length), 16);
    head.writeUInt32BE(pack.records.length, 24);
    section(TAG_PACK, Buffer.concat([head, encodeRecords(pack.records)]));
  }
  if (input.loose && input.loose.length > 0)
    section(TAG_LOOSE, counted(input.loose.length, encodeRecords(input.loose)));
  if (input.supersedes && input.supersedes.length > 0)
    section(
      TAG_SUPERSEDES,
      counted(
        input.supersedes.length,
        Buffer.from(input.supersedes.map((n) => n.padEnd(INDEX_NAME_BYTES)).join(''), 'latin1'),
      ),
    );
  if (input.condemned) {
    const body = Buffer.alloc(input.condemned.length * 40);
    input.condemned.forEach((c, i) => {
      body.set(c.hash.subarray(0, 32), i * 40);
      body.writeBigUInt64BE(BigInt(Math.floor(c.since)), i * 40 + 32);
    });
    section(TAG_CONDEMNED, counted(input.condemned.length, body));
  }
  const all = Buffer.concat(parts);
  return Buffer.concat([all, createHash('sha256').update(all).digest()]);
}

/** Whether an object's last 32 bytes are the sha256 of everything before them. */
function trailingChecksumMatches(bytes: Buffer): boolean {
  const end = bytes.length - 32;
  return createHash('sha256').update(bytes.subarray(0, end)).digest().equals(bytes.subarray(end));
}

/** An index object's content, checked; a damaged or unknown one is refused, never guessed at. */
export function decodeIndexObject(bytes: Buffer, where: string): IndexContent {
  const damaged = (why: string) =>
    new PackFormatError(
      `the index object ${where} is damaged (${why}): run \`tv repair index\` (it rebuilds the index from the packs)`,
      'BAD_INDEX',
    );
  if (bytes.length < INDEX_HEADER.length + 32) throw damaged('too short');
  if (!bytes.subarray(0, 4).equals(INDEX_HEADER.subarray(0, 4))) throw damaged('not an index');
  if (!trailingChecksumMatches(bytes)) throw damaged('checksum mismatch');
  const body = bytes.subarray(0, bytes.length - 32);
  if (bytes[4] !== INDEX_HEADER[4])
    throw new PackFormatError(
      `the index object ${where} has version ${bytes[4]}, which this version of TensorVault does not know: upgrade TensorVault`,
      'UNKNOWN_VERSION',
    );
  const content: IndexContent = {
    packs: [],
    loose: undefined,
    supersedes: [],
    condemned: undefined,
  };
  let at = INDEX_HEADER.length;
  while (at < body.length) {
    if (at + SECTION_HEAD > body.length) throw damaged('a section runs past the end');
    const tag = body.readUInt8(at);
    const length = body.readUInt32BE(at + 4);
    const start = at + SECTION_HEAD;
    const end = start + length;
    if (end > body.length) throw damaged('a section runs past the end');
    const count = (fixed: number, per: number) => {
      if (length < fixed + 4) throw damaged('a section is too short');
      const n = body.readUInt32BE(start + fixed);
      if (length !== fixed + 4 + n * per) throw damaged('a section has the wrong length');
      return n;
    };
    if (tag === TAG_PACK) {
      const n = count(24, RECORD_BYTES);
      content.packs.push({
        name: body.toString('hex', start, start + 16),
        length: readU64(body, start + 16),
        records: { bytes: body, first: start + 28, count: n },
      });
    } else if (tag === TAG_LOOSE) {
      content.loose = { bytes: body, first: start + 4, count: count(0, RECORD_BYTES) };
    } else if (tag === TAG_SUPERSEDES) {
      const n = count(0, INDEX_NAME_BYTES);
      for (let i = 0; i < n; i++) {
        const from = start + 4 + i * INDEX_NAME_BYTES;
        content.supersedes.push(body.toString('latin1', from, from + INDEX_NAME_BYTES).trim());
      }
    } else if (tag === TAG_CONDEMNED) {
      const n = count(0, 40);
      const hashes = Buffer.alloc(n * 32);
      const since: number[] = new Array<number>(n);
      for (let i = 0; i < n; i++) {
        const from = start + 4 + i * 40;
        body.copy(hashes, i * 32, from, from + 32);
        since[i] = readU64(body, from + 32);
      }
      content.condemned = { hashes, since };
    } else {
      throw new PackFormatError(
        `the index object ${where} has a section of kind ${tag}, which this version of TensorVault does not know: upgrade TensorVault`,
        'UNKNOWN_SECTION',
      );
    }
    at = end;
  }
  for (const pack of content.packs) {
    if (!/^[0-9a-f]{32}$/.test(pack.name)) throw damaged('a pack name is malformed');
    checkRecords(pack.records, PACK_HEADER_BYTES, pack.length, `${where} (pack ${pack.name})`);
  }
  return content;
}

// --- format 2 pack indexes (.idx), still read -------------------------------------------------

/**
 * A format 2 pack index: "TVPX" 1, 3 reserved, count u32; count x (hash 32, offset u64, length
 * u32) sorted by hash; sha256 of everything before it. As records of the format 3 shape.
 */
export function decodeLegacyIndex(bytes: Buffer, where: string): ObjectRecord[] {
  const damaged = (why: string) =>
    new PackFormatError(
      `the pack index ${where} is damaged (${why}): restore it from a backup, or remove it and its objects count as missing (\`tv verify\` then names the versions that need them)`,
      'BAD_PACK_INDEX',
    );
  const head = LEGACY_INDEX_HEADER.length + 4;
  if (bytes.length < head + 32) throw damaged('too short');
  if (!bytes.subarray(0, 4).equals(LEGACY_INDEX_HEADER.subarray(0, 4)))
    throw damaged('not a pack index');
  if (bytes[4] !== LEGACY_INDEX_HEADER[4])
    throw damaged(`unknown version ${bytes[4]}: upgrade TensorVault`);
  const count = bytes.readUInt32BE(LEGACY_INDEX_HEADER.length);
  if (bytes.length !== head + count * LEGACY_RECORD_BYTES + 32) throw damaged('wrong length');
  if (!trailingChecksumMatches(bytes)) throw damaged('checksum mismatch');
  const records: ObjectRecord[] = new Array<ObjectRecord>(count);
  for (let i = 0, at = head; i < count; i++, at += LEGACY_RECORD_BYTES) {
    const length = bytes.readUInt32BE(at + 40);
    records[i] = {
      hash: bytes.subarray(at, at + 32),
      offset: readU64(bytes, at + 32),
      storedLength: length,
      length,
      encoding: ENCODING_NONE,
    };
  }
  return records;
}

/** A format 2 pack index's bytes (tests build format 2 folders with it). */
export function encodeLegacyIndex(
  records: readonly { hash: Uint8Array; offset: number; length: number }[],
): Buffer {
  const sorted = [...records].sort((a, b) => Buffer.compare(a.hash, b.hash));
  const body = Buffer.alloc(LEGACY_INDEX_HEADER.length + 4 + sorted.length * LEGACY_RECORD_BYTES);
  LEGACY_INDEX_HEADER.copy(body, 0);
  body.writeUInt32BE(sorted.length, LEGACY_INDEX_HEADER.length);
  let at = LEGACY_INDEX_HEADER.length + 4;
  for (const r of sorted) {
    body.set(r.hash.subarray(0, 32), at);
    body.writeBigUInt64BE(BigInt(r.offset), at + 32);
    body.writeUInt32BE(r.length, at + 40);
    at += LEGACY_RECORD_BYTES;
  }
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

export function legacyPackHeader(): Buffer {
  return Buffer.from(LEGACY_PACK_HEADER);
}
