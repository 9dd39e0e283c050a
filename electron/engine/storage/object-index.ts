/**
 * Where each packed object of a folder repository is: hash → (pack, offset, length). An open
 * addressing hash table over typed arrays, 48 bytes a record plus two 4-byte slots, outside the
 * JavaScript heap: 1.4 million objects (100 GiB of unique 64 KiB chunks) take about 80 MB, where a
 * Map of hex strings would take three times that and load the garbage collector.
 */

const RECORD = 48; // hash 32, pack u32, length u32, offset f64
const DEAD = 0xffffffff;

export interface PackedLocation {
  pack: number;
  offset: number;
  length: number;
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

  /** The live record of this hash (32 bytes), or -1. */
  find(hash: Uint8Array): number {
    const mask = this.slots.length - 1;
    let slot = slotOf(hash) & mask;
    for (;;) {
      const entry = this.slots[slot] as number;
      if (entry === 0) return -1;
      const at = (entry - 1) * RECORD;
      if (
        this.records.readUInt32LE(at + 32) !== DEAD &&
        this.records.compare(hash, 0, 32, at, at + 32) === 0
      )
        return entry - 1;
      slot = (slot + 1) & mask;
    }
  }

  /**
   * Adds a record and returns its number. A hash may have several (two processes packed the same
   * object; a pack rewritten by another process is loaded before the old one is gone): lookups
   * find a live one, so forgetting one pack never hides an object another pack holds.
   */
  add(hash: Uint8Array, location: PackedLocation, hashAt = 0): number {
    this.reserve(1);
    const record = this.count++;
    const at = record * RECORD;
    const records = this.records;
    // The hash may sit inside a bigger buffer (a pack index's records): copied without a view.
    for (let i = 0; i < 32; i++) records[at + i] = hash[hashAt + i] as number;
    records.writeUInt32LE(location.pack, at + 32);
    records.writeUInt32LE(location.length, at + 36);
    records.writeDoubleLE(location.offset, at + 40);
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

  location(record: number): PackedLocation {
    const at = record * RECORD;
    return {
      pack: this.records.readUInt32LE(at + 32),
      length: this.records.readUInt32LE(at + 36),
      offset: this.records.readDoubleLE(at + 40),
    };
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

  /** Forgets one record: lookups pass over it from now on. */
  kill(record: number): void {
    if (!this.isLive(record)) return;
    this.records.writeUInt32LE(DEAD, record * RECORD + 32);
    this.live--;
  }

  /** Forgets every record of a pack. */
  killPack(pack: number): void {
    for (const record of this.recordsOf(pack)) this.kill(record);
  }

  /** The live records of one pack, or of all. */
  *recordsOf(pack?: number): Generator<number> {
    for (let record = 0; record < this.count; record++) {
      const owner = this.records.readUInt32LE(record * RECORD + 32);
      if (owner !== DEAD && (pack === undefined || owner === pack)) yield record;
    }
  }

  private place(record: number): void {
    const mask = this.slots.length - 1;
    const at = record * RECORD;
    const r = this.records;
    let slot =
      (((r[at] as number) | ((r[at + 1] as number) << 8) | ((r[at + 2] as number) << 16)) ^
        ((r[at + 3] as number) << 24)) &
      mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = record + 1;
  }

  /** Rebuilds the table, leaving dead records out of it (they stay in the record array). */
  private rehash(size: number): void {
    this.slots = new Int32Array(size);
    for (let record = 0; record < this.count; record++) if (this.isLive(record)) this.place(record);
  }
}

function slotOf(hash: Uint8Array): number {
  return (
    ((hash[0] as number) | ((hash[1] as number) << 8) | ((hash[2] as number) << 16)) ^
    ((hash[3] as number) << 24)
  );
}
