/**
 * A set of 32-byte chunk digests kept as bytes: an open addressing table over manifests' chunk
 * entries (see chunkEntries), copied side by side once, without a string or an object per digest.
 * The parent version of a 4 GiB model names ~57,000 chunks: as a Set of hex strings they cost a
 * push ~100 ms of decoding and garbage before its first lookup; here, a copy and a pass.
 */
export class DigestSet {
  /** Slots hold entry number + 1 (0 = empty); a digest's first word picks its slot. */
  private readonly slots: Int32Array;
  private count = 0;
  private readonly probe = new Uint32Array(8);
  private readonly probeBytes = Buffer.from(this.probe.buffer);

  private constructor(
    /** The entries, `step` words each, the digest first. */
    private readonly words: Uint32Array,
    private readonly step: number,
  ) {
    const entries = words.length / step;
    let slots = 16;
    while (slots < entries * 2) slots *= 2;
    this.slots = new Int32Array(slots);
    for (let entry = 0; entry < entries; entry++) this.add(entry);
  }

  /** The digests of these runs of entries (`stride` bytes each, a multiple of 4, digest first). */
  static ofEntries(runs: readonly Uint8Array[], stride: number): DigestSet {
    if (stride % 4 !== 0 || stride < 32) throw new Error(`bad digest entry stride ${stride}`);
    const lengths = runs.map((run) => run.length - (run.length % stride));
    const bytes = new Uint8Array(lengths.reduce((n, length) => n + length, 0));
    let at = 0;
    runs.forEach((run, i) => {
      bytes.set(run.subarray(0, lengths[i]), at);
      at += lengths[i] as number;
    });
    return new DigestSet(new Uint32Array(bytes.buffer), stride / 4);
  }

  /** How many different digests it holds. */
  get size(): number {
    return this.count;
  }

  /** Whether the set holds this digest (64 hex digits). */
  has(hex: string): boolean {
    if (hex.length !== 64 || this.probeBytes.write(hex, 'hex') !== 32) return false;
    return this.find(this.probe, 0) >= 0;
  }

  private add(entry: number): void {
    const word = entry * this.step;
    if (this.find(this.words, word) >= 0) return;
    const mask = this.slots.length - 1;
    let slot = (this.words[word] as number) & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = entry + 1;
    this.count++;
  }

  /** The entry holding the digest at `words[at]` (8 words), or -1. */
  private find(words: Uint32Array, at: number): number {
    const mask = this.slots.length - 1;
    for (let slot = (words[at] as number) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot] as number;
      if (entry === 0) return -1;
      if (this.holds(entry - 1, words, at)) return entry - 1;
    }
  }

  private holds(entry: number, words: Uint32Array, at: number): boolean {
    const from = entry * this.step;
    for (let i = 0; i < 8; i++) if (this.words[from + i] !== words[at + i]) return false;
    return true;
  }
}
