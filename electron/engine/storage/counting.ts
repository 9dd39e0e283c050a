import type { Readable } from 'node:stream';
import type { ListEntry, PutOptions, RetryStats, Store } from './store';

export type StoreOperation = 'has' | 'hasMany' | 'put' | 'get' | 'delete' | 'list';

/**
 * Counts the calls that reach the store it wraps (and, for hasMany, the keys asked). Placed
 * under a cache it shows which calls the cache saved; used by tests and the benchmark.
 */
export class CountingStore implements Store {
  readonly calls: Record<StoreOperation, number> = {
    has: 0,
    hasMany: 0,
    put: 0,
    get: 0,
    delete: 0,
    list: 0,
  };
  /** Keys asked about, through has and hasMany together. */
  keysChecked = 0;

  constructor(private readonly inner: Store) {}

  get location(): string {
    return this.inner.location;
  }

  get durableOnPut(): boolean | undefined {
    return this.inner.durableOnPut;
  }

  get total(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  reset(): void {
    for (const op of Object.keys(this.calls) as StoreOperation[]) this.calls[op] = 0;
    this.keysChecked = 0;
  }

  has(key: string): Promise<boolean> {
    this.calls.has++;
    this.keysChecked++;
    return this.inner.has(key);
  }

  hasMany(keys: readonly string[]): Promise<boolean[]> {
    this.calls.hasMany++;
    this.keysChecked += keys.length;
    return this.inner.hasMany(keys);
  }

  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    this.calls.put++;
    return this.inner.put(key, data, options);
  }

  get(key: string): Promise<Readable> {
    this.calls.get++;
    return this.inner.get(key);
  }

  delete(key: string): Promise<void> {
    this.calls.delete++;
    return this.inner.delete(key);
  }

  list(prefix: string): AsyncIterable<ListEntry> {
    this.calls.list++;
    return this.inner.list(prefix);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  retries(): RetryStats | undefined {
    return this.inner.retries?.();
  }
}
