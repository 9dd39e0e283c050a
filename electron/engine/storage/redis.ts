import { Redis } from 'ioredis';
import { redactUrl } from '../log';
import { parseRedisUrl, redisAddress } from './redis-url';

/**
 * One connection to Redis for an existence cache: connects only when first asked (a command that
 * needs no cache never touches Redis), fails commands at once while disconnected instead of
 * queueing them, reconnects by itself, and turns what goes wrong into a sentence a person can act
 * on ("Redis at 10.0.0.5:6379 refused the connection"), without credentials.
 */
export class RedisConnection {
  readonly client: Redis;
  /** host:port */
  readonly address: string;
  /** The URL with any user name and password replaced. */
  readonly display: string;
  private lastConnectionError: unknown;
  private connecting: Promise<void> | undefined;

  constructor(url: string, options: { source?: string; connectTimeoutMs?: number } = {}) {
    const parsed = parseRedisUrl(url, options.source);
    this.address = redisAddress(parsed);
    this.display = redactUrl(url);
    this.client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 2_000,
      // While disconnected, commands fail at once (the cache falls back) instead of queueing.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(100 * times, 2_000),
      enableAutoPipelining: true,
      // How long a disconnect waits for the socket to close before destroying it. ioredis leaves
      // this timer running when the socket is already gone (a refused connection), which kept a
      // command that had finished waiting for it: 2 s by default.
      disconnectTimeout: 20,
    });
    this.client.on('error', (err: unknown) => (this.lastConnectionError = err));
    this.client.on('ready', () => (this.lastConnectionError = undefined));
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /** Starts connecting (once; the client reconnects by itself afterwards). */
  connect(): void {
    this.connecting ??= this.client.connect().catch(() => {});
  }

  /**
   * Connects if need be and waits until the connection is ready, up to `ms`: true when it is;
   * false at once when the connection fails (refused, no such host, a refused password).
   */
  waitReady(ms: number): Promise<boolean> {
    this.connect();
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), ms);
      const onReady = () => finish(true);
      const onError = () => finish(false);
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.client.off('error', onError);
        resolve(ok);
      };
      this.client.on('ready', onReady);
      this.client.on('error', onError);
    });
  }

  /** Why the connection is not ready, after `waitedMs` of waiting for it. */
  notReadyReason(waitedMs: number): string {
    if (this.lastConnectionError) return this.describe(this.lastConnectionError);
    return this.client.status === 'connect'
      ? `Redis at ${this.address} accepted the connection but did not answer within ${waitedMs} ms`
      : `Redis at ${this.address} did not answer within ${waitedMs} ms`;
  }

  /** One sentence for a failed command or connection. */
  describe(err: unknown): string {
    const e = err as { code?: string; message?: string };
    const message = e.message ?? String(err);
    const at = `Redis at ${this.address}`;
    if (/Stream isn't writeable|Connection is closed|enableOfflineQueue/i.test(message)) {
      // The command found no connection: say why the connection is not there.
      return this.lastConnectionError && this.lastConnectionError !== err
        ? this.describe(this.lastConnectionError)
        : `${at} is not connected`;
    }
    switch (e.code) {
      case 'ECONNREFUSED':
        return `${at} refused the connection`;
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return `${at}: no such host (${e.code}): check the host name`;
      case 'ETIMEDOUT':
        return `${at} did not accept the connection in time (ETIMEDOUT): check the address and the network`;
      case 'ECONNRESET':
      case 'EPIPE':
        return `${at} closed the connection (${e.code})`;
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return `${at} cannot be reached (${e.code}): check the network`;
    }
    if (/^NOAUTH/.test(message))
      return `${at} needs a password: give it in the URL (redis://:PASSWORD@host:port) or in Settings`;
    if (/^WRONGPASS|invalid password|invalid username-password/i.test(message))
      return `${at} refused the password${/WRONGPASS/.test(message) ? ' (or user name)' : ''}: check it`;
    if (/^LOADING/.test(message)) return `${at} is loading its data set`;
    return `${at}: ${message.replace(/redis(s?):\/\/[^@\s/]*@/g, 'redis$1://***@')}`;
  }

  disconnect(): void {
    this.client.disconnect();
  }
}
