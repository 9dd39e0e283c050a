import type { HashFn } from '../hashing';
import type { Catalog, PackEntry } from '../storage/packs/catalog';
import { codecFor } from '../storage/packs/codec';
import { decode, refuseUnknownEncoding } from '../storage/packs/packed-store';
import { ObjectNotFoundError, StoreError, type BlobStore } from '../storage/store';

/**
 * The copies of objects in packs, read back as the index places them and checked against their
 * hashes: what `tv verify --full` and `tv repair packs` use to tell a corrupt copy from an intact
 * one. A copy is corrupt when its stored bytes do not decode to the object's length, or decode to
 * bytes of another hash. An encoding this version does not know is never taken for damage: it
 * stops the check with a message to upgrade.
 */

/** Bytes per ranged read when a pack's copies are read back: a 64 MiB pack comes in four. */
const RUN_BYTES = 16 << 20;

/** Records of a pack entry read together, in pack order: [start, end) of the pack. */
interface Run {
  start: number;
  end: number;
  records: number[];
}

/**
 * The records of this pack entry whose bytes are not their object's. Reads the pack in ranged
 * reads of up to 16 MiB (an ObjectNotFoundError when the pack is gone from the store).
 */
export async function corruptCopies(
  blobs: BlobStore,
  catalog: Catalog,
  entry: PackEntry,
  hash: HashFn,
): Promise<number[]> {
  const corrupt: number[] = [];
  for (const run of runsOf(catalog, entry)) {
    const bytes = await blobs.getRange(entry.key, run.start, run.end - run.start);
    for (const record of run.records) {
      const at = catalog.location(record).offset - run.start;
      if (!(await intact(catalog, record, bytes, at, hash))) corrupt.push(record);
    }
  }
  return corrupt;
}

/** Whether one copy (a record of the catalog) reads back as its object. */
async function copyIsIntact(
  blobs: BlobStore,
  catalog: Catalog,
  record: number,
  hash: HashFn,
): Promise<boolean> {
  const loc = catalog.location(record);
  const bytes = await blobs.getRange(catalog.keyOf(record), loc.offset, loc.storedLength);
  return intact(catalog, record, bytes, 0, hash);
}

/**
 * Every copy of an object the index places in a pack (`skip` left out), read back: those intact
 * and those corrupt. A copy whose pack is gone from the store is neither (`tv repair index`
 * drops it from the index).
 */
export async function checkCopies(
  blobs: BlobStore,
  catalog: Catalog,
  object: Buffer,
  hash: HashFn,
  skip: (record: number) => boolean = () => false,
): Promise<{ intact: number[]; corrupt: number[] }> {
  const intact: number[] = [];
  const corrupt: number[] = [];
  for (const r of [...catalog.objects.matches(object)]) {
    if (skip(r) || catalog.pack(r).layout === 'loose') continue;
    const good = await copyIsIntact(blobs, catalog, r, hash).catch((err: unknown) => {
      if (err instanceof ObjectNotFoundError) return undefined;
      throw err;
    });
    if (good) intact.push(r);
    else if (good === false) corrupt.push(r);
  }
  return { intact, corrupt };
}

/** The live records of a pack entry by offset, grouped into ranged reads of up to RUN_BYTES. */
function runsOf(catalog: Catalog, entry: PackEntry): Run[] {
  const records: number[] = [];
  for (let r = entry.first; r < entry.first + entry.count; r++)
    if (catalog.objects.isLive(r)) records.push(r);
  records.sort((a, b) => catalog.location(a).offset - catalog.location(b).offset);
  const runs: Run[] = [];
  for (const record of records) {
    const { offset, storedLength } = catalog.location(record);
    const last = runs.at(-1);
    if (last && offset + storedLength - last.start <= RUN_BYTES) {
      last.end = Math.max(last.end, offset + storedLength);
      last.records.push(record);
    } else runs.push({ start: offset, end: offset + storedLength, records: [record] });
  }
  return runs;
}

async function intact(
  catalog: Catalog,
  record: number,
  bytes: Buffer,
  at: number,
  hash: HashFn,
): Promise<boolean> {
  const { offset, storedLength, length, encoding } = catalog.location(record);
  const expected = catalog.objects.hashHex(record);
  const key = catalog.keyOf(record);
  refuseUnknownEncoding(expected, key, encoding);
  await codecFor(encoding);
  const where = { key, offset, storedLength, length, encoding };
  try {
    return hash(decode(bytes.subarray(at, at + storedLength), where, expected)) === expected;
  } catch (err) {
    if (err instanceof StoreError && err.code === 'BAD_OBJECT') return false;
    throw err;
  }
}
