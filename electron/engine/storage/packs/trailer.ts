import type { BlobStore } from '../store';
import {
  checkPackHeader,
  decodeTrailer,
  FOOTER_BYTES,
  PACK_HEADER_BYTES,
  readRecord,
  trailerLength,
  type ObjectRecord,
} from './format';

/** Bytes read from a pack's end at first: the footer and, for most packs, the whole trailer. */
const TAIL_BYTES = 64 << 10;

/**
 * What a pack says it holds, from its own bytes: its trailer, checked (one ranged read of its
 * tail for packs of up to ~1,200 objects, two for bigger ones), and its header.
 */
export async function readTrailer(
  blobs: BlobStore,
  key: string,
  packLength: number,
): Promise<ObjectRecord[]> {
  const where = `the pack ${key} in ${blobs.location}`;
  const [head, first] = await Promise.all([
    blobs.getRange(key, 0, Math.min(PACK_HEADER_BYTES, packLength)),
    blobs.getRange(key, Math.max(0, packLength - TAIL_BYTES), Math.min(TAIL_BYTES, packLength)),
  ]);
  checkPackHeader(head, false, where);
  let tail = first;
  const needed = trailerLength(tail.subarray(tail.length - FOOTER_BYTES), where);
  if (needed > tail.length && needed <= packLength)
    tail = await blobs.getRange(key, packLength - needed, needed);
  const records = decodeTrailer(tail, packLength, where);
  return Array.from({ length: records.count }, (_, i) => {
    const r = readRecord(records, i);
    return { ...r, hash: Buffer.from(r.hash) };
  });
}
