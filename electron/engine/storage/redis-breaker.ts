import type { Logger } from '../log';
import type { BreakerTarget } from './redis';

export type CacheState = 'up' | 'degraded' | 'down' | 'disabled';

/** What a guarded command returns when Redis did not answer (the caller asks the backend). */
export const NO_ANSWER = Symbol('no answer from Redis');
export type Answer<T> = T | typeof NO_ANSWER;

export interface BreakerOptions {
  logger: Logger;
  /** How often to probe Redis (default 1 s): to close the circuit, or to notice a Redis gone idle. */
  probeIntervalMs?: number;
  /** How long the state stays "degraded" after a timeout or a recovery (default 30 s). */
  degradedWindowMs?: number;
  /**
   * The lowest command timeout (default 500 ms). The timeout is ten times the 99th percentile of
   * recent round trips, never below this floor (a loaded two-core box delays replies by 100 ms
   * and more) nor above 5 s.
   */
  timeoutFloorMs?: number;
  /** How long the first command waits for the connection before the cache is skipped (default 250 ms). */
  startupMs?: number;
  /**
   * What this breaker guards when it is one part of the cache: "master 10.0.0.5:6379" of a
   * cluster, whose keys alone go to the backend while it is open. Unset: the whole cache.
   */
  part?: string;
  /** Told whenever the state changes. */
  onStateChange?: () => void;
}

const LATENCY_SAMPLES = 256;
const TIMEOUT_CAP_MS = 5_000;
const TIMED_OUT = Symbol('timed out');

/**
 * Guards every Redis command of the cache: a command that fails or times out returns NO_ANSWER
 * (never throws), and the circuit opens, so that later commands skip Redis at once, when the
 * connection fails or Redis stops answering: a timeout followed by a PING that times out too. One
 * slow reply costs that command its answer only. While open, a PING per interval closes the
 * circuit when Redis answers again. Connects on first use, giving up within `startupMs`.
 */
export class RedisBreaker {
  private open = false;
  private started: Promise<void> | undefined;
  private recoveredAt = 0;
  private lastTimeoutAt = 0;
  private lastCommandAt = 0;
  /** Commands under way. */
  private running = 0;
  private probing = false;
  private quiet = false;
  private reported: CacheState = 'up';
  private changedAt = new Date();
  private probeTimer: NodeJS.Timeout | undefined;
  private windowTimer: NodeJS.Timeout | undefined;
  private confirming: Promise<void> | undefined;
  private readonly latencies: number[] = [];
  private timeout: number;
  private readonly floor: number;
  private readonly window: number;
  private readonly startupMs: number;
  readonly counters = { fallbacks: 0, errors: 0, timeouts: 0 };
  lastError: string | null = null;
  /** When lastError was set (ms since the epoch). */
  lastErrorAt = 0;

  constructor(
    readonly connection: BreakerTarget,
    private readonly options: BreakerOptions,
  ) {
    this.floor = options.timeoutFloorMs ?? 500;
    this.timeout = this.floor;
    this.window = options.degradedWindowMs ?? 30_000;
    this.startupMs = options.startupMs ?? 250;
  }

  /**
   * Starts connecting now (a command that will need the cache soon); resolves once the connection
   * is ready, or after `startupMs` (the first call's), when the circuit opens until Redis answers.
   */
  start(startupMs = this.startupMs, options: { quiet?: boolean } = {}): Promise<void> {
    // Quiet: the caller reports the state itself (`tv cache status`), so no warning is logged.
    if (!this.started) this.quiet = options.quiet ?? false;
    this.started ??= this.connection.waitReady(startupMs).then((ready) => {
      if (!ready) this.trip(this.connection.notReadyReason(startupMs));
      this.probeTimer = setInterval(() => void this.probe(), this.options.probeIntervalMs ?? 1000);
      this.probeTimer.unref();
    });
    return this.started;
  }

  /** Whether the caller reports the state itself, so that no warning is logged (see start). */
  get silent(): boolean {
    return this.quiet;
  }

  /** Whether the cache was ever asked for (a command that needs no cache never connects). */
  get used(): boolean {
    return this.started !== undefined;
  }

  /** Runs a Redis command unless the circuit is open; a failure or timeout answers NO_ANSWER. */
  async run<T>(command: () => Promise<T>): Promise<Answer<T>> {
    await this.start();
    if (this.open) {
      this.counters.fallbacks++;
      return NO_ANSWER;
    }
    this.lastCommandAt = Date.now();
    const ms = this.timeout;
    const started = performance.now();
    this.running++;
    try {
      const result = await withTimeout(command(), ms);
      if (result === TIMED_OUT) {
        this.counters.fallbacks++;
        this.timedOut(ms);
        return NO_ANSWER;
      }
      this.recordLatency(performance.now() - started);
      return result.value;
    } catch (err) {
      this.counters.fallbacks++;
      this.failed(err);
      return NO_ANSWER;
    } finally {
      this.running--;
    }
  }

  get state(): CacheState {
    if (this.open) return 'down';
    const now = Date.now();
    return now - this.recoveredAt < this.window || now - this.lastTimeoutAt < this.window
      ? 'degraded'
      : 'up';
  }

  /** When the state last changed. */
  get since(): Date {
    return this.changedAt;
  }

  /** The timeout the next command gets, in milliseconds. */
  get timeoutMs(): number {
    return this.timeout;
  }

  /** Recent round trips in milliseconds, oldest first. */
  get recentLatencies(): readonly number[] {
    return this.latencies;
  }

  /**
   * One PING with the current timeout: its round trip in milliseconds, or the reason it failed.
   * A failure counts as the breaker's own commands do (a connection error opens the circuit).
   */
  async ping(): Promise<{ ms: number } | { error: string }> {
    await this.start();
    const ms = this.timeout;
    const started = performance.now();
    try {
      const result = await withTimeout(this.connection.ping(), ms);
      if (result === TIMED_OUT) {
        this.timedOut(ms);
        return { error: this.lastError as string };
      }
      const took = performance.now() - started;
      this.recordLatency(took);
      return { ms: took };
    } catch (err) {
      this.failed(err);
      return { error: this.connection.describe(err) };
    }
  }

  /**
   * With the circuit open, probes now instead of at the next interval (a connection that was
   * slow to start may be ready): resolves once the probe has settled.
   */
  async recheck(): Promise<void> {
    if (this.open && this.started) await this.probe();
  }

  close(): void {
    clearInterval(this.probeTimer);
    clearTimeout(this.windowTimer);
  }

  // --- internals ------------------------------------------------------------------------------

  private timedOut(ms: number): void {
    this.counters.errors++;
    this.counters.timeouts++;
    this.lastTimeoutAt = Date.now();
    this.setError(`Redis at ${this.connection.address} did not answer within ${ms} ms`);
    this.report();
    // One slow reply is not an outage: the circuit opens only when a PING sent after it goes
    // unanswered too (commands that timed out together, behind one stall, send one PING).
    this.confirming ??= withTimeout(this.connection.ping(), ms)
      .then(
        (result) => {
          if (result === TIMED_OUT) this.trip(this.lastError as string);
        },
        (err: unknown) => this.failed(err),
      )
      .finally(() => (this.confirming = undefined));
  }

  private failed(err: unknown): void {
    this.counters.errors++;
    const reason = this.connection.describe(err);
    this.setError(reason);
    // A reply error about one command (out of memory for a write, say) leaves the others working;
    // a refused password or a Redis still loading leaves none.
    const e = err as { name?: string; message?: string };
    const whole =
      !(e.name === 'ReplyError') ||
      /^(NOAUTH|WRONGPASS|LOADING|MASTERDOWN|CLUSTERDOWN)/.test(e.message ?? '');
    if (whole) this.trip(reason);
  }

  private trip(reason: string): void {
    this.setError(reason);
    if (this.open) return;
    this.open = true;
    const part = this.options.part;
    if (!this.quiet)
      this.options.logger.warn(
        part
          ? `Redis cache: ${part} unavailable (${reason}): the storage backend answers for its keys until it is back`
          : `Redis cache unavailable (${reason}): using the storage backend directly until it is back`,
      );
    this.report();
  }

  private setError(reason: string): void {
    this.lastError = reason;
    this.lastErrorAt = Date.now();
  }

  /**
   * Runs every probe interval. With the circuit open, a PING that answers closes it. With it
   * closed and no command lately, a PING keeps the state current: a Redis that died while idle
   * shows as down at once, not at the next push.
   */
  private async probe(): Promise<void> {
    if (this.probing) return; // the last probe is still waiting for its answer
    this.probing = true;
    try {
      await this.probeOnce();
    } finally {
      this.probing = false;
    }
  }

  private async probeOnce(): Promise<void> {
    if (!this.open) {
      const idle = Date.now() - this.lastCommandAt >= (this.options.probeIntervalMs ?? 1000);
      if (idle && this.running === 0 && !this.confirming) await this.ping();
      return;
    }
    if (!this.connection.ready) {
      this.lastError = this.connection.notReadyReason(this.startupMs);
      return;
    }
    try {
      const started = performance.now();
      if ((await withTimeout(this.connection.ping(), this.timeout)) === TIMED_OUT) return;
      this.recordLatency(performance.now() - started);
    } catch (err) {
      this.lastError = this.connection.describe(err);
      return;
    }
    this.open = false;
    this.recoveredAt = Date.now();
    if (!this.quiet)
      this.options.logger.warn(
        this.options.part
          ? `Redis cache: ${this.options.part} answers again: caching of its keys resumes`
          : 'Redis cache answers again: caching resumes',
      );
    this.report();
  }

  private report(): void {
    const state = this.state;
    // "degraded" ends by itself once its window passes: report that change too.
    if (state === 'degraded') {
      clearTimeout(this.windowTimer);
      this.windowTimer = setTimeout(() => this.report(), this.window + 10);
      this.windowTimer.unref();
    }
    if (state === this.reported) return;
    this.reported = state;
    this.changedAt = new Date();
    this.options.onStateChange?.();
  }

  private recordLatency(ms: number): void {
    this.latencies.push(ms);
    if (this.latencies.length > LATENCY_SAMPLES) this.latencies.shift();
    // The timeout follows the measured round trips (resized every 32 samples).
    if (this.latencies.length % 32 === 0) {
      const p99 = percentile(this.latencies, 0.99);
      this.timeout = Math.round(Math.min(TIMEOUT_CAP_MS, Math.max(this.floor, 10 * p99)));
    }
  }
}

/** The value at quantile q (0..1) of the samples. */
export function percentile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/**
 * The promise's value, or TIMED_OUT after `ms`. When the timer fires, the check waits for the
 * event loop's next poll for I/O: a reply that arrived while the loop was blocked (a loaded box,
 * a long synchronous task) is read then, and is not mistaken for a timeout.
 */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<{ value: T } | typeof TIMED_OUT> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(
      () =>
        setImmediate(() => {
          if (settled) return;
          settled = true;
          resolve(TIMED_OUT);
        }),
      ms,
    );
    promise.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ value });
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
