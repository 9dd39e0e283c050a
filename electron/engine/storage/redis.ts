import { Cluster, Redis, type ClusterOptions } from 'ioredis';
import type { Logger } from '../log';
import {
  parseRedisSetting,
  redactRedisSetting,
  redisTargetAddress,
  type RedisTarget,
} from './redis-url';

/**
 * What a breaker guards (see RedisBreaker): a whole Redis (one server, or a cluster reached through
 * any of its masters), or one master of a cluster.
 */
export interface BreakerTarget {
  /** host:port, or the seed nodes of a cluster. */
  readonly address: string;
  readonly ready: boolean;
  waitReady(ms: number): Promise<boolean>;
  notReadyReason(waitedMs: number): string;
  describe(err: unknown): string;
  ping(): Promise<unknown>;
}

/** A slot-map change that moved slots from one master to another (a failover or a resharding). */
export interface TopologyChange {
  at: string;
  /** The master that served the slots before, and the one that serves them now. */
  from: string;
  to: string;
  slots: number;
}

const FAILOVERS_KEPT = 10;
/** A connection that was up and went away, with no error of its own to say why. */
const DROPPED = 'closed the connection: the server stopped, restarted or dropped this client';

/**
 * One connection to Redis for an existence cache, to one server or to a Redis Cluster: connects
 * only when first asked (a command that needs no cache never touches Redis), fails commands at
 * once while disconnected instead of queueing them, reconnects by itself, and turns what goes
 * wrong into a sentence a person can act on ("Redis at 10.0.0.5:6379 refused the connection"),
 * without credentials.
 *
 * On a cluster the client learns the slot map from any reachable seed node, follows MOVED, ASK and
 * TRYAGAIN replies itself, and keeps a connection to each master; `masters()` names them.
 */
export class RedisConnection implements BreakerTarget {
  readonly client: Redis | Cluster;
  readonly kind: 'standalone' | 'cluster';
  /** host:port, or the seed nodes of a cluster. */
  readonly address: string;
  /** The setting with any user name and password replaced. */
  readonly display: string;
  /** Slot-map changes seen since this connection started, most recent last. */
  readonly failovers: TopologyChange[] = [];
  private lastConnectionError: unknown;
  /** Whether the connection was ready once: a command that finds none then finds it dropped. */
  private wasReady = false;
  /** Whether the connection is made over TLS (rediss://, rediss+cluster://). */
  private readonly tls: boolean;
  private connecting: Promise<void> | undefined;
  private slotOwners: readonly string[] = [];

  /** Stops taking ioredis' console notices for this connection (see ioredisNotices). */
  private readonly unwatch: (() => void) | undefined;

  constructor(
    setting: string,
    options: { source?: string; connectTimeoutMs?: number; logger?: Logger } = {},
  ) {
    const target = parseRedisSetting(setting, options.source);
    this.kind = target.kind;
    this.address = redisTargetAddress(target);
    this.display = redactRedisSetting(setting);
    this.tls = target.kind === 'cluster' ? target.tls : target.url.protocol === 'rediss:';
    const connectTimeout = options.connectTimeoutMs ?? 2_000;
    this.client =
      target.kind === 'standalone'
        ? new Redis(target.url.toString(), {
            lazyConnect: true,
            connectTimeout,
            // While disconnected, commands fail at once (the cache falls back) instead of queueing.
            enableOfflineQueue: false,
            maxRetriesPerRequest: 0,
            retryStrategy: (times) => Math.min(100 * times, 2_000),
            // Single commands sent together (a `has` per chunk) share a write; the cache's own
            // batches (MGET of 1,000 keys, pipelines) are written as they are: joining them
            // into one string cost more CPU than the writes it saved.
            enableAutoPipelining: true,
            autoPipeliningIgnoredCommands: ['mget'],
            // How long a disconnect waits for the socket to close before destroying it. ioredis
            // leaves this timer running when the socket is already gone (a refused connection),
            // which kept a command that had finished waiting for it: 2 s by default.
            disconnectTimeout: 20,
          })
        : new Cluster(
            target.nodes.map((n) => ({ host: n.host, port: n.port })),
            clusterOptions(target, connectTimeout),
          );
    // A password given to a Redis that has none works (Redis ignores it), but ioredis says so
    // with a console line of its own: said here instead, once, as what to do, through the logger.
    const password = target.kind === 'cluster' ? target.password : target.url.password;
    if (password) {
      let told = false;
      this.unwatch = ioredisNotices((notice) => {
        if (told || !UNNEEDED_PASSWORD.test(notice)) return;
        told = true;
        options.logger?.warn(
          `${this.kind === 'cluster' ? 'the Redis Cluster' : 'Redis'} at ${this.address} has no password, but ${options.source ?? 'the Redis URL'} gives one: the cache works; remove the password from it to stop this warning`,
        );
      });
    }
    this.client.on('error', (err: unknown) => (this.lastConnectionError = err));
    this.client.on('ready', () => {
      this.lastConnectionError = undefined;
      this.wasReady = true;
    });
    if (this.client instanceof Cluster) {
      const cluster = this.client;
      cluster.on('refresh', () => this.noteSlotOwners(cluster));
      // A master's own connection errors are its breaker's business; listened to so that none
      // goes unhandled.
      cluster.on('node error', () => {});
    }
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
    const what =
      this.kind === 'cluster' ? `The Redis Cluster at ${this.address}` : `Redis at ${this.address}`;
    return this.client.status === 'connect'
      ? `${what} accepted the connection but did not answer within ${waitedMs} ms`
      : `${what} did not answer within ${waitedMs} ms`;
  }

  /**
   * PING: the server; on a cluster, every master at once, answered when any of them answers (the
   * cluster is down only when none does).
   */
  ping(): Promise<unknown> {
    if (!(this.client instanceof Cluster)) return this.client.ping();
    const masters = this.client.nodes('master');
    if (masters.length === 0) return this.client.ping();
    return Promise.any(masters.map((m) => m.ping())).catch((err: AggregateError) => {
      throw err.errors[0];
    });
  }

  /** The masters' addresses (host:port), in the order of the slots they serve; [] before connecting. */
  masters(): string[] {
    if (!(this.client instanceof Cluster)) return [this.address];
    return [...new Set(this.client.slots.map((owners) => owners[0]).filter(Boolean))] as string[];
  }

  /** The master that serves a hash slot (host:port); undefined before the slot map is known. */
  masterOf(slot: number): string | undefined {
    if (!(this.client instanceof Cluster)) return this.address;
    return this.client.slots[slot]?.[0];
  }

  /** The direct connection to one master (the server itself when not a cluster). */
  node(address: string): Redis | undefined {
    if (!(this.client instanceof Cluster)) return this.client;
    return this.client
      .nodes('master')
      .find((n) => `${n.options.host}:${n.options.port}` === address);
  }

  /** One sentence for a failed command or connection; `address` names the master it went to. */
  describe(err: unknown, address = this.address): string {
    const e = err as { code?: string; name?: string; message?: string };
    const message = e.message ?? String(err);
    const at = `Redis at ${address}`;
    if (
      /Stream isn't writeable|Connection is closed|enableOfflineQueue|isn't ready/i.test(message)
    ) {
      // The command found no connection: say why the connection is not there.
      if (this.lastConnectionError && this.lastConnectionError !== err)
        return this.describe(this.lastConnectionError, address);
      return this.wasReady ? `${at} ${DROPPED}` : `${at} is not connected`;
    }
    // A command that was waiting for its answer when the connection went away: ioredis words it
    // as its retry option.
    if (e.name === 'MaxRetriesPerRequestError' || /max retries per request/i.test(message)) {
      return this.lastConnectionError && this.lastConnectionError !== err
        ? this.describe(this.lastConnectionError, address)
        : `${at} ${DROPPED}`;
    }
    // ioredis does not pass on why a cluster's nodes could not be reached over TLS (a
    // certificate not trusted shows as a closed connection): name what to check.
    if (this.tls && /Failed to refresh slots cache|None of startup nodes/i.test(message))
      return `no node of the Redis Cluster at ${address} answered over TLS: check that the servers run with TLS on these ports and that this machine trusts their certificate (NODE_EXTRA_CA_CERTS names a PEM file of its CA)`;
    if (/Failed to refresh slots cache/i.test(message)) {
      // A node that answered but refused the slot map (not a cluster, a password) says why.
      const cause = (err as { lastNodeError?: { message?: string } }).lastNodeError;
      if (cause?.message && !/Connection is closed|isn't writeable|timeout/i.test(cause.message))
        return this.describe(cause, address);
    }
    if (/None of startup nodes is available|Failed to refresh slots cache/i.test(message))
      return `no node of the Redis Cluster at ${address} answered: check the addresses and that the servers run`;
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
      case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      case 'SELF_SIGNED_CERT_IN_CHAIN':
      case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
        return `${at} presented a TLS certificate this machine does not trust (${e.code}): add its CA certificate to NODE_EXTRA_CA_CERTS (a PEM file)`;
      case 'CERT_HAS_EXPIRED':
        return `${at} presented an expired TLS certificate: renew it on the server`;
      case 'ERR_TLS_CERT_ALTNAME_INVALID':
        return `${at} presented a TLS certificate for another host name: connect by a name the certificate lists`;
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return `${at} cannot be reached (${e.code}): check the network`;
    }
    if (/^NOAUTH/.test(message))
      return `${at} needs a password: give it in the URL (redis://:PASSWORD@host:port) or in Settings`;
    if (/^WRONGPASS|invalid password|invalid username-password/i.test(message))
      return `${at} refused the password${/WRONGPASS/.test(message) ? ' (or user name)' : ''}: check it`;
    if (/^LOADING/.test(message)) return `${at} is loading its data set`;
    if (/^CLUSTERDOWN/.test(message))
      return `${at}: the cluster is down (${message.replace(/^CLUSTERDOWN\s*/, '')})`;
    if (/ERR This instance has cluster support disabled/.test(message))
      return `${at} is not a Redis Cluster: use redis://host:port for one server`;
    return `${at}: ${message.replace(/redis(s?)(\+cluster)?:\/\/[^@\s/]*@/g, 'redis$1$2://***@')}`;
  }

  disconnect(): void {
    this.unwatch?.();
    this.client.disconnect();
  }

  /** After the client read the slot map again: notes slots whose master changed. */
  private noteSlotOwners(cluster: Cluster): void {
    const owners = cluster.slots.map((o) => o[0] ?? '');
    const moved = new Map<string, number>();
    owners.forEach((owner, slot) => {
      const before = this.slotOwners[slot];
      if (before && owner && before !== owner) {
        const key = `${before}\n${owner}`;
        moved.set(key, (moved.get(key) ?? 0) + 1);
      }
    });
    this.slotOwners = owners;
    for (const [key, slots] of moved) {
      const [from, to] = key.split('\n') as [string, string];
      this.failovers.push({ at: new Date().toISOString(), from, to, slots });
    }
    this.failovers.splice(0, Math.max(0, this.failovers.length - FAILOVERS_KEPT));
  }
}

/**
 * ioredis' console line for a password a Redis without one was given (it sends AUTH, not HELLO,
 * to a Redis older than 6 or one that disabled HELLO).
 */
const UNNEEDED_PASSWORD =
  /^\[WARN\] (Redis server|This Redis server's `default` user) does not require a password/;

const noticeListeners = new Set<(notice: string) => void>();
let restoreConsole: (() => void) | undefined;

/**
 * Takes the "[WARN] ..." lines ioredis writes with console.warn itself (it has no other way to
 * tell) while a connection listens: each goes to the listeners instead of the console; any other
 * console output passes through. Returns the function that stops listening.
 */
function ioredisNotices(listener: (notice: string) => void): () => void {
  if (noticeListeners.size === 0) {
    const original = console.warn;
    console.warn = (...args: unknown[]) => {
      const [first] = args;
      if (typeof first === 'string' && first.startsWith('[WARN] ')) {
        for (const listen of noticeListeners) listen(first);
        return;
      }
      original.apply(console, args);
    };
    restoreConsole = () => (console.warn = original);
  }
  noticeListeners.add(listener);
  return () => {
    noticeListeners.delete(listener);
    if (noticeListeners.size === 0) restoreConsole?.();
  };
}

function clusterOptions(
  target: Extract<RedisTarget, { kind: 'cluster' }>,
  connectTimeout: number,
): ClusterOptions {
  return {
    lazyConnect: true,
    // While the cluster is not reachable, commands fail at once instead of queueing.
    enableOfflineQueue: false,
    // The cache batches per master itself (one pipeline per master, see RedisClaims).
    enableAutoPipelining: false,
    clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
    // Redirects and "try again" are followed a few times, briefly: the breaker bounds the wait.
    maxRedirections: 6,
    retryDelayOnMoved: 0,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 1_000,
    slotsRefreshInterval: 2_000,
    redisOptions: {
      connectTimeout,
      maxRetriesPerRequest: 0,
      disconnectTimeout: 20,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      // A rediss:// seed does not turn TLS on by itself: it is asked for here.
      ...(target.tls ? { tls: {} } : {}),
    },
  };
}

/** One master of a cluster, as its breaker sees it. */
export class MasterTarget implements BreakerTarget {
  constructor(
    private readonly connection: RedisConnection,
    readonly address: string,
  ) {}

  get ready(): boolean {
    return this.connection.node(this.address) !== undefined;
  }

  /** The cluster's connection is made by the cluster's own breaker; a master has nothing to wait for. */
  waitReady(): Promise<boolean> {
    return Promise.resolve(true);
  }

  notReadyReason(): string {
    return `Redis at ${this.address} is not connected`;
  }

  describe(err: unknown): string {
    return this.connection.describe(err, this.address);
  }

  ping(): Promise<unknown> {
    const node = this.connection.node(this.address);
    return node ? node.ping() : Promise.reject(new Error('Connection is closed.'));
  }
}
