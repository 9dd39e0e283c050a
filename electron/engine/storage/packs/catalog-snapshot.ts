import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as z from 'zod/mini';
import type { CatalogState, PackEntry } from './catalog';
import { OBJECT_RECORD_BYTES } from './object-index';

/**
 * The catalog as this client last held it, in one file of the user's cache folder, so that a new
 * process starts from it instead of applying every index object again: a repository of 57,000
 * objects took ~100-250 ms of a push to load record by record, one of a million seconds. It is the
 * catalog after applying the index objects (and format 2 .idx files) it names: the sync that
 * follows applies those it does not name and forgets those no longer listed, as it would for a
 * catalog built in this process. A missing, damaged or foreign file only costs that time.
 *
 * Layout (little-endian): "TVCS", version u8, 3 reserved; header length u32; record count u32;
 * table slots u32; the header (JSON); zero padding to a multiple of 8; the records (56 bytes
 * each, as the object index holds them); the table (i32 per slot); sha256 of all that.
 */
const MAGIC = Buffer.from('TVCS');
const VERSION = 1;
const FIXED = 20;

const Header = z.object({
  repositoryId: z.string(),
  location: z.string(),
  live: z.number().check(z.int(), z.nonnegative()),
  packs: z.array(
    z.tuple([
      z.string(), // name
      z.enum(['pack', 'legacy', 'loose']),
      z.string(), // key
      z.number(), // length
      z.string(), // source
      z.number(), // indexedAt
      z.number().check(z.int(), z.nonnegative()), // first
      z.number().check(z.int(), z.nonnegative()), // count
      z.boolean(), // gone
    ]),
  ),
  sources: z.array(z.tuple([z.string(), z.array(z.number().check(z.int(), z.nonnegative()))])),
  superseded: z.array(z.string()),
  condemned: z.array(z.tuple([z.string(), z.number()])),
  condemnedAt: z.number(),
});

/** Which repository a snapshot belongs to: one of another is never used. */
export interface SnapshotOwner {
  repositoryId: string;
  location: string;
}

/** A snapshot's bytes, in pieces (written one after another; the records and table unmoved). */
export function encodeCatalog(state: CatalogState, owner: SnapshotOwner): Buffer[] {
  const header = Buffer.from(
    JSON.stringify({
      ...owner,
      live: state.objects.live,
      packs: state.packs.map((p) => [
        p.name,
        p.layout,
        p.key,
        p.length,
        p.source,
        p.indexedAt,
        p.first,
        p.count,
        p.gone,
      ]),
      sources: state.sources,
      superseded: state.superseded,
      condemned: state.condemned,
      condemnedAt: state.condemnedAt,
    } satisfies z.infer<typeof Header>),
  );
  const fixed = Buffer.alloc(FIXED);
  MAGIC.copy(fixed, 0);
  fixed.writeUInt8(VERSION, 4);
  fixed.writeUInt32LE(header.length, 8);
  fixed.writeUInt32LE(state.objects.count, 12);
  fixed.writeUInt32LE(state.objects.slots.length, 16);
  const pad = Buffer.alloc((8 - ((FIXED + header.length) % 8)) % 8);
  const slots = state.objects.slots;
  const parts = [
    fixed,
    header,
    pad,
    state.objects.records,
    Buffer.from(slots.buffer, slots.byteOffset, slots.byteLength),
  ];
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part);
  return [...parts, digest.digest()];
}

/** The state a snapshot holds, or undefined when it is damaged, of another version or owner. */
export function decodeCatalog(bytes: Buffer, owner: SnapshotOwner): CatalogState | undefined {
  if (bytes.length < FIXED + 32 || !bytes.subarray(0, 4).equals(MAGIC)) return undefined;
  if (bytes.readUInt8(4) !== VERSION) return undefined;
  const headerLength = bytes.readUInt32LE(8);
  const count = bytes.readUInt32LE(12);
  const slotCount = bytes.readUInt32LE(16);
  const recordsAt = FIXED + headerLength + ((8 - ((FIXED + headerLength) % 8)) % 8);
  const slotsAt = recordsAt + count * OBJECT_RECORD_BYTES;
  const end = slotsAt + slotCount * 4;
  if (bytes.length !== end + 32) return undefined;
  const digest = createHash('sha256').update(bytes.subarray(0, end)).digest();
  if (!digest.equals(bytes.subarray(end))) return undefined;
  let header: z.infer<typeof Header>;
  try {
    const parsed = Header.safeParse(
      JSON.parse(bytes.toString('utf8', FIXED, FIXED + headerLength)),
    );
    if (!parsed.success) return undefined;
    header = parsed.data;
  } catch {
    return undefined;
  }
  if (header.repositoryId !== owner.repositoryId || header.location !== owner.location)
    return undefined;
  // The records and the table stay where they were read (the file's buffer is the catalog's
  // now); the table is copied only when it lies unaligned for an Int32Array.
  const buffer = bytes.buffer as ArrayBuffer; // a file's bytes: never shared memory
  const records = Buffer.from(buffer, bytes.byteOffset + recordsAt, slotsAt - recordsAt);
  const slots =
    (bytes.byteOffset + slotsAt) % 4 === 0
      ? new Int32Array(buffer, bytes.byteOffset + slotsAt, slotCount)
      : new Int32Array(new Uint8Array(bytes.subarray(slotsAt, end)).buffer);
  const packs: PackEntry[] = header.packs.map(
    ([name, layout, key, length, source, indexedAt, first, packCount, gone], no) => ({
      no,
      name,
      layout,
      key,
      length,
      source,
      indexedAt,
      first,
      count: packCount,
      gone,
    }),
  );
  return {
    packs,
    sources: header.sources,
    superseded: header.superseded,
    condemned: header.condemned,
    condemnedAt: header.condemnedAt,
    objects: { records, slots, count, live: header.live },
  };
}

/** Where a repository's snapshot is kept: read and written whole (temp file, rename). */
export class CatalogSnapshotFile {
  constructor(
    readonly path: string,
    private readonly owner: SnapshotOwner,
  ) {}

  async read(): Promise<CatalogState | undefined> {
    const bytes = await readFile(this.path).catch(() => undefined);
    return bytes && decodeCatalog(bytes, this.owner);
  }

  /** Writes it; a cache that cannot be written only costs the next process time. */
  async write(state: CatalogState): Promise<void> {
    const temp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFile(temp, encodeCatalog(state, this.owner));
      await rename(temp, this.path);
    } catch {
      await rm(temp, { force: true }).catch(() => {});
    }
  }

  async remove(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
