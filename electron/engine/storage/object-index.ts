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
  add(hash: Uint8Array, location: PackedLocation): number {
    if ((this.count + 1) * RECORD > this.records.length) {
      const grown = Buffer.alloc(this.records.length * 2);
      this.records.copy(grown);
      this.records = grown;
    }
    const record = this.count++;
    const at = record * RECORD;
    this.records.set(hash.subarray(0, 32), at);
    this.records.writeUInt32LE(location.pack, at + 32);
    this.records.writeUInt32LE(location.length, at + 36);
    this.records.writeDoubleLE(location.offset, at + 40);
    this.live++;
    if (this.count * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    else this.place(record);
    return record;
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
    let slot = slotOf(this.records.subarray(record * RECORD)) & mask;
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
