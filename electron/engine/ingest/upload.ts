/**
 * The files of a browser-mode push, arriving one request each. The push reads file i through
 * stream(i), which waits for its request; accept(i, body) hands the request's body over and
 * resolves once the push has read it all.
 */
export class UploadSession {
  private readonly waiting = new Map<number, (body: AsyncIterable<Uint8Array>) => void>();
  private readonly arrived = new Map<number, AsyncIterable<Uint8Array>>();
  private readonly done = new Map<number, () => void>();
  private closed = false;

  constructor(private readonly count: number) {}

  accept(index: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.closed) return Promise.reject(new Error('this upload is over'));
    if (!Number.isInteger(index) || index < 0 || index >= this.count)
      return Promise.reject(new Error(`no file ${index} in this upload`));
    if (this.arrived.has(index) || this.done.has(index))
      return Promise.reject(new Error(`file ${index} was sent already`));
    return new Promise<void>((resolve) => {
      this.done.set(index, resolve);
      const reader = this.waiting.get(index);
      if (reader) reader(body);
      else this.arrived.set(index, body);
    });
  }

  async *stream(index: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const body =
      this.arrived.get(index) ??
      (await new Promise<AsyncIterable<Uint8Array>>((resolve, reject) => {
        this.waiting.set(index, resolve);
        signal.addEventListener('abort', () => reject(new Error('push cancelled')), { once: true });
      }));
    try {
      yield* body;
    } finally {
      this.done.get(index)?.();
    }
  }

  close(): void {
    this.closed = true;
    for (const finish of this.done.values()) finish();
  }
}
