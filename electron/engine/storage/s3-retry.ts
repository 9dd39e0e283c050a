import { DefaultRateLimiter, MAXIMUM_RETRY_DELAY, StandardRetryStrategy } from '@smithy/core/retry';
import type { RetryErrorInfo, RetryStrategyV2, StandardRetryToken } from '@smithy/types';
import type { RetryStats } from './store';

export interface S3RetryOptions {
  /** Tries per request for failures that may pass: 5xx, timeouts, reset connections. */
  maxAttempts: number;
  /** How long one request keeps being retried while S3 throttles it (503 SlowDown). */
  retryForMs: number;
}

/**
 * The adaptive limiter never slows this client below this many requests a second. Its cubic
 * search for the rate S3 accepts would otherwise collapse to about 2 requests a second under a
 * steady share of SlowDown answers (its first throttle, before it has measured any rate, sets the
 * rate to its floor): measured at 20% SlowDown, 100 uploads took a minute. S3 accepts 3,500
 * writes a second per prefix; below this floor the backoff of each throttled request slows it.
 */
const MIN_REQUESTS_PER_SECOND = 50;

/** First backoff after a throttling answer; it doubles each time, up to 20 s (full jitter). */
const THROTTLE_BASE_MS = 500;

/**
 * S3 says "slow down" with 503: SlowDown in the body, or no body at all for a HEAD, whose 503 the
 * SDK classifies as a transient server error.
 */
function isThrottling(errorInfo: RetryErrorInfo): boolean {
  return errorInfo.errorType === 'THROTTLING' || errorInfo.error?.$metadata?.httpStatusCode === 503;
}

/** A request's retry state: the SDK's own token for other failures, and when the request began. */
class Token implements StandardRetryToken {
  constructor(
    readonly inner: StandardRetryToken,
    readonly startedAt: number,
    /** Retries so far, of either kind. */
    readonly count: number,
    /** Of which after throttling. */
    readonly throttles: number,
    /** How long to wait before the next try, in milliseconds. */
    readonly delay = 0,
  ) {}
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delay;
  }
  getRetryCost(): number | undefined {
    return this.inner.getRetryCost();
  }
}

/**
 * The SDK's adaptive retry mode, bounded by time where it is bounded by tries: the client-side
 * rate limiter slows every request of this client down when S3 throttles (and speeds it up again
 * as requests succeed), and a throttled request is retried with growing, jittered backoff until
 * `retryForMs` has passed since it began, however many tries that takes. Other failures that may
 * pass (5xx, timeouts, resets) get the SDK's standard retries: `maxAttempts` tries, drawing on its
 * retry quota, also within `retryForMs`.
 */
export class S3RetryStrategy implements RetryStrategyV2 {
  readonly mode = 'adaptive';
  private readonly rateLimiter = new DefaultRateLimiter({
    minFillRate: MIN_REQUESTS_PER_SECOND,
    minCapacity: 10,
  });
  private readonly standard: StandardRetryStrategy;
  readonly stats: RetryStats = { throttled: 0, lastThrottledAt: null };

  constructor(private readonly options: S3RetryOptions) {
    this.standard = new StandardRetryStrategy(options.maxAttempts);
  }

  async acquireInitialRetryToken(scope: string): Promise<Token> {
    const inner = (await this.standard.acquireInitialRetryToken(scope)) as StandardRetryToken;
    await this.rateLimiter.getSendToken();
    return new Token(inner, Date.now(), 0, 0);
  }

  async refreshRetryTokenForRetry(token: Token, errorInfo: RetryErrorInfo): Promise<Token> {
    const throttled = isThrottling(errorInfo);
    this.rateLimiter.updateClientSendingRate(
      throttled ? { ...errorInfo, errorType: 'THROTTLING' } : errorInfo,
    );
    const elapsed = Date.now() - token.startedAt;
    let next: Token;
    if (throttled) {
      this.stats.throttled++;
      this.stats.lastThrottledAt = Date.now();
      const ceiling = Math.min(MAXIMUM_RETRY_DELAY, THROTTLE_BASE_MS * 2 ** token.throttles);
      let delay = Math.floor(Math.random() * ceiling);
      if (errorInfo.retryAfterHint)
        delay = Math.max(delay, errorInfo.retryAfterHint.getTime() - Date.now());
      if (elapsed + delay > this.options.retryForMs)
        throw new Error(`still throttled after ${elapsed} ms: the retry time is up`);
      next = new Token(token.inner, token.startedAt, token.count + 1, token.throttles + 1, delay);
    } else {
      if (elapsed > this.options.retryForMs)
        throw new Error(`still failing after ${elapsed} ms: the retry time is up`);
      // Throws when the error is not worth retrying, or the tries or the quota are spent.
      const inner = (await this.standard.refreshRetryTokenForRetry(
        token.inner,
        errorInfo,
      )) as StandardRetryToken;
      next = new Token(inner, token.startedAt, token.count + 1, token.throttles);
    }
    await this.rateLimiter.getSendToken();
    return next;
  }

  recordSuccess(token: Token): void {
    this.rateLimiter.updateClientSendingRate({});
    this.standard.recordSuccess(token.inner);
  }
}
