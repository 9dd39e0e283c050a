import { type ByteSource, count, LayoutError, MAX_HEADER_BYTES, MAX_VALUES } from './model-format';

/** Bytes fetched at once when the cursor runs out: a header is read in a few ranged reads. */
export const HEADER_WINDOW = 1024 * 1024;
/** For headers whose fields lie between large stretches skipped unread (ONNX tensor data). */
export const SPARSE_WINDOW = 16 * 1024;

/**
 * Reads a header front to back from a byte source, a window at a time. Every read is checked
 * against the end of the file (or of the enclosing field) before anything is allocated, and the
 * bytes read from one file are capped at MAX_HEADER_BYTES, so no count or length in a hostile
 * header can make it allocate more than the file holds or loop past its end.
 */
export class Cursor {
  private buffer: Buffer = Buffer.alloc(0);
  private bufferStart = 0;
  private bytesRead = 0;
  private values = 0;

  constructor(
    private readonly source: ByteSource,
    /** The format, for messages: "GGUF header runs past the end of the file". */
    private readonly what: string,
    public pos = 0,
    readonly littleEndian = true,
    /** Bytes fetched at once from the position: a contiguous header wants many. */
    private readonly window = HEADER_WINDOW,
  ) {}

  get size(): number {
    return this.source.size;
  }

  /** Counts `n` values about to be built; throws past MAX_VALUES for the file. */
  countValues(n: number | bigint): void {
    this.values += Number(n);
    if (this.values > MAX_VALUES)
      throw new LayoutError(
        `${this.what} header holds more than ${count(MAX_VALUES)} values: not read further`,
      );
  }

  /** Bytes from the position already in memory. */
  available(): number {
    return Math.max(0, this.bufferStart + this.buffer.length - this.pos);
  }

  /** True when `n` bytes from the position are in memory already (no await needed). */
  has(n: number): boolean {
    return this.pos >= this.bufferStart && this.pos + n <= this.bufferStart + this.buffer.length;
  }

  /** Makes `n` bytes from the position available; throws when they would run past `end`. */
  async need(n: number, end = this.source.size): Promise<void> {
    this.check(n, end);
    if (this.has(n)) return;
    const to = Math.min(this.source.size, Math.max(this.pos + n, this.pos + this.window));
    this.charge(to - this.pos);
    this.buffer = Buffer.from(await this.source.read(this.pos, to));
    this.bufferStart = this.pos;
  }

  private check(n: number, end: number): void {
    if (Number.isSafeInteger(n) && n >= 0 && this.pos + n <= end) return;
    const where = end === this.source.size ? 'file' : 'field holding it';
    throw new LayoutError(
      `${this.what} header runs past the end of the ${where} (${n} bytes wanted at byte ${this.pos}, ${Math.max(0, end - this.pos)} left)`,
    );
  }

  private charge(n: number): void {
    this.bytesRead += n;
    if (this.bytesRead > MAX_HEADER_BYTES)
      throw new LayoutError(
        `${this.what} header is over ${MAX_HEADER_BYTES / 2 ** 20} MiB: not read further`,
      );
  }

  private at(n: number): number {
    const offset = this.pos - this.bufferStart;
    this.pos += n;
    return offset;
  }

  /** The next u64 as a number, without moving (after has(8)); past 2^53 it is inexact. */
  peekU64(): number {
    const o = this.pos - this.bufferStart;
    const b = this.buffer;
    return this.littleEndian
      ? b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 2 ** 32
      : b.readUInt32BE(o + 4) + b.readUInt32BE(o) * 2 ** 32;
  }
  u8(): number {
    return this.buffer.readUInt8(this.at(1));
  }
  i8(): number {
    return this.buffer.readInt8(this.at(1));
  }
  u16(): number {
    const o = this.at(2);
    return this.littleEndian ? this.buffer.readUInt16LE(o) : this.buffer.readUInt16BE(o);
  }
  i16(): number {
    const o = this.at(2);
    return this.littleEndian ? this.buffer.readInt16LE(o) : this.buffer.readInt16BE(o);
  }
  u32(): number {
    const o = this.at(4);
    return this.littleEndian ? this.buffer.readUInt32LE(o) : this.buffer.readUInt32BE(o);
  }
  i32(): number {
    const o = this.at(4);
    return this.littleEndian ? this.buffer.readInt32LE(o) : this.buffer.readInt32BE(o);
  }
  u64(): bigint {
    const o = this.at(8);
    return this.littleEndian ? this.buffer.readBigUInt64LE(o) : this.buffer.readBigUInt64BE(o);
  }
  i64(): bigint {
    const o = this.at(8);
    return this.littleEndian ? this.buffer.readBigInt64LE(o) : this.buffer.readBigInt64BE(o);
  }
  f32(): number {
    const o = this.at(4);
    return this.littleEndian ? this.buffer.readFloatLE(o) : this.buffer.readFloatBE(o);
  }
  f64(): number {
    const o = this.at(8);
    return this.littleEndian ? this.buffer.readDoubleLE(o) : this.buffer.readDoubleBE(o);
  }
  /** `n` bytes (after need(n)): a view, valid until the next need. */
  bytes(n: number): Buffer {
    const o = this.at(n);
    return this.buffer.subarray(o, o + n);
  }

  /** `n` bytes of UTF-8 text (after need(n)), decoded without a view in between. */
  text(n: number): string {
    const o = this.at(n);
    return this.buffer.toString('utf8', o, o + n);
  }

  /** `n` bytes, fetched as needed: a copy when they span windows. */
  async take(n: number, end = this.source.size): Promise<Buffer> {
    if (n <= this.window) {
      await this.need(n, end);
      return this.bytes(n);
    }
    this.check(n, end);
    this.charge(n);
    const data = Buffer.from(await this.source.read(this.pos, this.pos + n));
    this.pos += n;
    return data;
  }

  /** Moves past `n` bytes without reading them (tensor data inside a protobuf field). */
  skip(n: number, end = this.source.size): void {
    this.check(n, end);
    this.pos += n;
  }
}
