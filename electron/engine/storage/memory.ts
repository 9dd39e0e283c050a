import { Readable } from 'node:stream';
import {
  ObjectNotFoundError,
  StoreError,
  validateKey,
  type BlobStore,
  type BlobWriter,
  type ListEntry,
  type ListOptions,
  type RangeSink,
} from './store';

/** A blob store in a Map: for tests of the code above the storage layer. */
export class MemoryStore implements BlobStore {
  readonly location = 'memory';
  readonly remote: boolean;
  private readonly objects = new Map<string, { data: Buffer; modified: Date }>();

  /** `remote`: behave as a store across a network (the pack layer keeps a local index copy). */
  constructor(options: { remote?: boolean } = {}) {
    this.remote = options.remote ?? false;
  }

  async has(key: string): Promise<boolean> {
    return this.objects.has(validateKey(key));
  }

  async hasMany(keys: readonly string[]): Promise<boolean[]> {
    return keys.map((key) => this.objects.has(validateKey(key)));
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    this.objects.set(validateKey(key), { data: Buffer.from(data), modified: new Date() });
  }

  async get(key: string): Promise<Readable> {
    // A copy: a reader may keep (or change) what it read; the stored bytes stay as they were.
    return Readable.from([Buffer.from(this.bytes(key))]);
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const data = this.bytes(key);
    if (offset + length > data.length)
      throw new StoreError(`${key} ends before byte ${offset + length}`, 'SHORT_READ');
    return Buffer.from(data.subarray(offset, offset + length));
  }

  async readRange(key: string, offset: number, length: number, sink: RangeSink): Promise<void> {
    sink(await this.getRange(key, offset, length), 0);
  }

  private bytes(key: string): Buffer {
    const entry = this.objects.get(validateKey(key));
    if (!entry) throw new ObjectNotFoundError(key, this.location);
    return entry.data;
  }

  createWriter(key: string): BlobWriter {
    validateKey(key);
    const parts: Buffer[] = [];
    let size = 0;
    return {
      get size() {
        return size;
      },
      append: async (data) => {
        parts.push(Buffer.from(data));
        size += data.length;
      },
      read: async (offset, length) => Buffer.concat(parts).subarray(offset, offset + length),
      finish: () => this.put(key, Buffer.concat(parts)),
      abort: async () => {},
    };
  }

  now(): number {
    return Date.now();
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(validateKey(key));
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    for (const [key, entry] of [...this.objects]) {
      if (!key.startsWith(prefix)) continue;
      if (options.startAfter !== undefined && key <= options.startAfter) continue;
      yield { key, size: entry.data.length, modified: entry.modified };
    }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
