/**
 * Where each object of a repository is: hash → (pack, offset, stored length, length, encoding).
 * An open addressing hash table over typed arrays, 56 bytes a record plus two 4-byte slots,
 * outside the JavaScript heap: 1.4 million objects (100 GiB of unique 64 KiB chunks) take about
 * 90 MB, where a Map of hex strings would take three times that and load the garbage collector.
 */

const RECORD = 56; // hash 32, pack u32, stored length u32, offset f64, length u32, encoding u8, 3 spare
const DEAD = 0xffffffff;

/** An ObjectIndex as it is in memory: its records and its table (see Catalog.state). */
export interface ObjectIndexState {
  /** `count` records of RECORD bytes. */
  records: Buffer<ArrayBuffer>;
  slots: Int32Array<ArrayBuffer>;
  count: number;
  live: number;
}

export const OBJECT_RECORD_BYTES = RECORD;

export interface Location {
  pack: number;
  offset: number;
  storedLength: number;
  length: number;
  encoding: number;
}

export class ObjectIndex {
  private records = Buffer.alloc(RECORD * 1024);
  private count = 0;
  private live = 0;
  /** Slots hold record number + 1 (0 = empty); the first 4 bytes of a hash pick the slot. */
  private slots = new Int32Array(2048);

  get size(): number {
    return this.live;
  }

  /** Its records and table, shared, not copied (a snapshot writes them out as they are). */
  state(): ObjectIndexState {
    return {
      records: this.records.subarray(0, this.count * RECORD),
      slots: this.slots,
      count: this.count,
      live: this.live,
    };
  }

  /**
   * Takes a state back (an empty index only; the state's buffers become this index's). The
   * table must be the one these records were placed in: a snapshot's checksum vouches for that.
   */
  restore(state: ObjectIndexState): void {
    if (this.count > 0) throw new Error('an object index is restored only while empty');
    const slots = state.slots.length;
    if (
      state.records.length !== state.count * RECORD ||
      slots < state.count * 2 ||
      slots < 16 ||
      (slots & (slots - 1)) !== 0
    )
      throw new Error('an object index state whose sizes disagree');
    if (state.count === 0) return;
    this.records = state.records;
    this.slots = state.slots;
    this.count = state.count;
    this.live = state.live;
  }

  /** Records ever added (live or not): record numbers run from 0 to this. */
  get length(): number {
    return this.count;
  }

  /** The first live record of this hash that `accept` takes (32-byte hash), or -1. */
  find(hash: Uint8Array, accept?: (record: number) => boolean): number {
    const mask = this.slots.length - 1;
    let slot = slotOf(hash, 0) & mask;
    for (;;) {
      const entry = this.slots[slot] as number;
      if (entry === 0) return -1;
      const at = (entry - 1) * RECORD;
      if (
        this.records.readUInt32LE(at + 32) !== DEAD &&
        this.records.compare(hash, 0, 32, at, at + 32) === 0 &&
        (!accept || accept(entry - 1))
      )
        return entry - 1;
      slot = (slot + 1) & mask;
    }
  }

  /** Every live record of this hash (an object may be in several packs). */
  *matches(hash: Uint8Array): Generator<number> {
    const mask = this.slots.length - 1;
    let slot = slotOf(hash, 0) & mask;
    for (;;) {
      const entry = this.slots[slot] as number;
      if (entry === 0) return;
      const at = (entry - 1) * RECORD;
      if (
        this.records.readUInt32LE(at + 32) !== DEAD &&
        this.records.compare(hash, 0, 32, at, at + 32) === 0
      )
        yield entry - 1;
      slot = (slot + 1) & mask;
    }
  }

  /**
   * Adds a record and returns its number. A hash may have several (two clients packed the same
   * object; gc repacked it): lookups find a live one, so forgetting one pack never hides an object
   * another pack holds. The hash may sit inside a bigger buffer, at `hashAt`.
   */
  add(hash: Uint8Array, location: Location, hashAt = 0): number {
    const { pack, offset, storedLength, length, encoding } = location;
    return this.addFields(hash, hashAt, pack, offset, storedLength, length, encoding);
  }

  /** As `add`, the location given field by field (an index load adds tens of thousands). */
  addFields(
    hash: Uint8Array,
    hashAt: number,
    pack: number,
    offset: number,
    storedLength: number,
    length: number,
    encoding: number,
  ): number {
    this.reserve(1);
    const record = this.count++;
    const at = record * RECORD;
    const records = this.records;
    for (let i = 0; i < 32; i++) records[at + i] = hash[hashAt + i] as number;
    records.writeUInt32LE(pack, at + 32);
    records.writeUInt32LE(storedLength, at + 36);
    records.writeDoubleLE(offset, at + 40);
    records.writeUInt32LE(length, at + 48);
    records[at + 52] = encoding;
    this.live++;
    this.place(record);
    return record;
  }

  /** Makes room for this many more records, growing the arrays once rather than step by step. */
  reserve(more: number): void {
    const needed = this.count + more;
    if (needed * RECORD > this.records.length) {
      let size = this.records.length * 2;
      while (needed * RECORD > size) size *= 2;
      const grown = Buffer.alloc(size);
      this.records.copy(grown, 0, 0, this.count * RECORD);
      this.records = grown;
    }
    if (needed * 2 > this.slots.length) {
      let size = this.slots.length * 2;
      while (needed * 2 > size) size *= 2;
      this.rehash(size);
    }
  }

  location(record: number): Location {
    const at = record * RECORD;
    const r = this.records;
    return {
      pack: r.readUInt32LE(at + 32),
      storedLength: r.readUInt32LE(at + 36),
      offset: r.readDoubleLE(at + 40),
      length: r.readUInt32LE(at + 48),
      encoding: r.readUInt8(at + 52),
    };
  }

  pack(record: number): number {
    return this.records.readUInt32LE(record * RECORD + 32);
  }

  objectLength(record: number): number {
    return this.records.readUInt32LE(record * RECORD + 48);
  }

  hashHex(record: number): string {
    const at = record * RECORD;
    return this.records.toString('hex', at, at + 32);
  }

  hash(record: number): Buffer {
    const at = record * RECORD;
    return this.records.subarray(at, at + 32);
  }

  isLive(record: number): boolean {
    return this.records.readUInt32LE(record * RECORD + 32) !== DEAD;
  }

  /** Forgets records [first, first + count): lookups pass over them from now on. */
  kill(first: number, count = 1): void {
    for (let record = first; record < first + count; record++) {
      if (!this.isLive(record)) continue;
      this.records.writeUInt32LE(DEAD, record * RECORD + 32);
      this.live--;
    }
  }

  private place(record: number): void {
    const mask = this.slots.length - 1;
    let slot = slotOf(this.records, record * RECORD) & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = record + 1;
  }

  /** Rebuilds the table, leaving dead records out of it (they stay in the record array). */
  private rehash(size: number): void {
    this.slots = new Int32Array(size);
    for (let record = 0; record < this.count; record++) if (this.isLive(record)) this.place(record);
  }
}

function slotOf(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16)) ^
    ((bytes[at + 3] as number) << 24)
  );
}
