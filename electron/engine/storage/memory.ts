import { Readable } from 'node:stream';
import { ObjectNotFoundError, validateKey, type ListEntry, type Store } from './store';

/** A Store in a Map: for tests of the code above the storage layer. */
export class MemoryStore implements Store {
  readonly location = 'memory';
  private readonly objects = new Map<string, { data: Buffer; modified: Date }>();

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
    const entry = this.objects.get(validateKey(key));
    if (!entry) throw new ObjectNotFoundError(key, this.location);
    return Readable.from([entry.data]);
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(validateKey(key));
  }

  async *list(prefix: string): AsyncIterable<ListEntry> {
    for (const [key, entry] of [...this.objects]) {
      if (key.startsWith(prefix)) yield { key, size: entry.data.length, modified: entry.modified };
    }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
